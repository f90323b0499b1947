package netlinkmptcp

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func TestEventTypeString(t *testing.T) {
	want := map[EventType]string{
		1: "created", 2: "established", 3: "closed", 6: "announced", 7: "removed",
		10: "sub_established", 11: "sub_closed", 13: "sub_priority",
		15: "listener_created", 16: "listener_closed", 4: "event(4)", 200: "event(200)",
	}
	for typ, name := range want {
		if got := typ.String(); got != name {
			t.Errorf("EventType(%d).String() = %q, want %q", uint8(typ), got, name)
		}
	}
}

// Event attributes built by hand.
var (
	evToken   = attr(evAttrToken, hostU32(0xdeadbeef))
	evFamily4 = attr(evAttrFamily, hostU16(unix.AF_INET))
	evFamily6 = attr(evAttrFamily, hostU16(unix.AF_INET6))
	evAddr    = func(typ uint16, s string) []byte { return attr(typ, netip.MustParseAddr(s).AsSlice()) }
	evPort    = func(typ uint16, v uint16) []byte { return attr(typ, netU16(v)) }
	evU8      = func(typ uint16, v uint8) []byte { return attr(typ, []byte{v}) }
	evU32     = func(typ uint16, v uint32) []byte { return attr(typ, hostU32(v)) }
)

func eventMessage(typ EventType, attrs ...[]byte) genetlink.Message {
	return genetlink.Message{Header: genetlink.Header{Command: uint8(typ), Version: familyVersion}, Data: concat(attrs...)}
}

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name string
		msg  genetlink.Message
		want Event
	}{
		{
			name: "subflow closed by a reset, IPv6, every attribute",
			msg: eventMessage(EventSubClosed, evToken, evFamily6,
				evAddr(evAttrSaddr6, "2001:db8::2"), evAddr(evAttrDaddr6, "2001:db8::1"),
				evPort(evAttrSport, 45000), evPort(evAttrDport, 443),
				evU8(evAttrLocID, 4), evU8(evAttrRemID, 9), evU8(evAttrBackup, 1), evU8(evAttrError, uint8(unix.ECONNRESET)),
				evU32(evAttrIfIdx, 42), evU32(evAttrResetReason, 5), evU32(evAttrResetFlags, 1), evU32(evAttrTimeout, 30)),
			want: Event{Type: EventSubClosed, Token: 0xdeadbeef, Family: FamilyIPv6,
				Local: netip.MustParseAddrPort("[2001:db8::2]:45000"), Remote: netip.MustParseAddrPort("[2001:db8::1]:443"),
				LocalID: 4, RemoteID: 9, Backup: true, Error: syscall.ECONNRESET, IfIndex: 42, ResetReason: 5, ResetFlags: 1, Timeout: 30},
		},
		{
			name: "server side from the FLAGS bit alone (6.18 style)",
			msg:  eventMessage(EventCreated, evToken, attr(evAttrFlags, hostU16(uint16(EventFlagServerSide|EventFlagDenyJoinID0)))),
			want: Event{Type: EventCreated, Token: 0xdeadbeef, ServerSide: true, Flags: EventFlagServerSide | EventFlagDenyJoinID0},
		},
		{
			name: "server side from SERVER_SIDE alone (5.19 to 6.17 style)",
			msg:  eventMessage(EventCreated, evToken, evU8(evAttrServerSide, 1)),
			want: Event{Type: EventCreated, Token: 0xdeadbeef, ServerSide: true},
		},
		{
			name: "client side, SERVER_SIDE sent as 0",
			msg:  eventMessage(EventEstablished, evToken, evU8(evAttrServerSide, 0)),
			want: Event{Type: EventEstablished, Token: 0xdeadbeef},
		},
		{
			name: "IPv6 announcement without FAMILY",
			msg:  eventMessage(EventAnnounced, evToken, evU8(evAttrRemID, 2), evPort(evAttrDport, 8080), evAddr(evAttrDaddr6, "2001:db8::9")),
			want: Event{Type: EventAnnounced, Token: 0xdeadbeef, Family: FamilyIPv6, RemoteID: 2, Remote: netip.MustParseAddrPort("[2001:db8::9]:8080")},
		},
		{
			name: "unknown attributes and unknown event type",
			msg:  eventMessage(200, evToken, attr(99, []byte{1, 2, 3, 4, 5}), attr(0, nil), evFamily4),
			want: Event{Type: 200, Token: 0xdeadbeef, Family: FamilyIPv4},
		},
		{
			name: "no attributes",
			msg:  eventMessage(EventClosed),
			want: Event{Type: EventClosed},
		},
	}
	for _, tt := range tests {
		got, err := parseEvent(tt.msg)
		if err != nil || got != tt.want {
			t.Errorf("%s:\n got  %+v, %v\n want %+v", tt.name, got, err, tt.want)
		}
	}
}

func TestParseEventTruncated(t *testing.T) {
	tests := map[string]genetlink.Message{
		"short token":        eventMessage(EventClosed, attr(evAttrToken, []byte{1, 2})),
		"short family":       eventMessage(EventCreated, attr(evAttrFamily, []byte{2})),
		"short source port":  eventMessage(EventCreated, attr(evAttrSport, []byte{0x1f})),
		"long source port":   eventMessage(EventCreated, attr(evAttrSport, []byte{0, 0x1f, 0x90})),
		"short IPv4 address": eventMessage(EventCreated, attr(evAttrSaddr4, []byte{192, 0, 2})),
		"short IPv6 address": eventMessage(EventCreated, attr(evAttrDaddr6, make([]byte, 12))),
		"short flags":        eventMessage(EventCreated, attr(evAttrFlags, []byte{2})),
		"short reset reason": eventMessage(EventSubClosed, attr(evAttrResetReason, []byte{1, 0})),
		"cut attribute":      {Header: genetlink.Header{Command: uint8(EventClosed)}, Data: []byte{8, 0, 1, 0, 0xef, 0xbe}},
		"cut header":         {Header: genetlink.Header{Command: uint8(EventClosed)}, Data: []byte{8, 0}},
	}
	for name, m := range tests {
		if e, err := parseEvent(m); err == nil {
			t.Errorf("%s: decoded %+v, want an error", name, e)
		} else if !strings.Contains(err.Error(), EventType(m.Header.Command).String()) {
			t.Errorf("%s: error %q does not name the event type", name, err)
		}
	}
}

func TestEventString(t *testing.T) {
	e := Event{Type: EventSubEstablished, Token: 0xabc, Local: netip.MustParseAddrPort("198.51.100.2:45000"),
		Remote: netip.MustParseAddrPort("192.0.2.1:8080"), LocalID: 2, Backup: true, IfIndex: 42}
	want := "sub_established token 00000abc local 198.51.100.2:45000 remote 192.0.2.1:8080 ids 2/0 backup ifindex 42"
	if got := e.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// fakeEvents is an eventConn that hands out prepared batches and honours read
// deadlines like a socket.
type fakeEvents struct {
	mu       sync.Mutex
	deadline time.Time
	batches  chan fakeBatch
	wake     chan struct{}
}

type fakeBatch struct {
	msgs []genetlink.Message
	nl   []netlink.Message
	err  error
}

func newFakeEvents() *fakeEvents {
	return &fakeEvents{batches: make(chan fakeBatch, 16), wake: make(chan struct{}, 1)}
}

// send queues events as messages of family id.
func (f *fakeEvents) send(id uint16, msgs ...genetlink.Message) {
	nl := make([]netlink.Message, len(msgs))
	for i := range nl {
		nl[i].Header.Type = netlink.HeaderType(id)
	}
	f.batches <- fakeBatch{msgs: msgs, nl: nl}
}

func (f *fakeEvents) Receive() ([]genetlink.Message, []netlink.Message, error) {
	for {
		f.mu.Lock()
		d := f.deadline
		f.mu.Unlock()
		if !d.IsZero() && !time.Now().Before(d) {
			return nil, nil, &netlink.OpError{Op: "receive", Err: os.NewSyscallError("recvmsg", os.ErrDeadlineExceeded)}
		}
		select {
		case b := <-f.batches:
			return b.msgs, b.nl, b.err
		case <-f.wake:
		}
	}
}

func (f *fakeEvents) SetReadDeadline(d time.Time) error {
	f.mu.Lock()
	f.deadline = d
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return nil
}

func (f *fakeEvents) Close() error { return nil }

func TestEventsReceive(t *testing.T) {
	f := newFakeEvents()
	ev := &Events{conn: f, familyID: testFamily.ID}
	ctx := context.Background()

	created := eventMessage(EventCreated, evToken)
	closed := eventMessage(EventClosed, evToken)
	f.send(testFamily.ID, created, closed)
	got, err := ev.Receive(ctx)
	if err != nil || len(got) != 2 || got[0].Type != EventCreated || got[1].Type != EventClosed {
		t.Fatalf("Receive = %v, %v; want created, closed", got, err)
	}

	// Another family's messages are skipped; Receive waits for ours.
	f.send(testFamily.ID+1, created)
	f.send(testFamily.ID, closed)
	if got, err := ev.Receive(ctx); err != nil || len(got) != 1 || got[0].Type != EventClosed {
		t.Errorf("Receive after a foreign message = %v, %v; want closed only", got, err)
	}

	// An overflow is reported, and the stream goes on.
	f.batches <- fakeBatch{err: &netlink.OpError{Op: "receive", Err: os.NewSyscallError("recvmsg", unix.ENOBUFS)}}
	f.send(testFamily.ID, created)
	if _, err := ev.Receive(ctx); !errors.Is(err, ErrEventsLost) || !errors.Is(err, unix.ENOBUFS) {
		t.Errorf("Receive on overflow: %v, want ErrEventsLost", err)
	}
	if got, err := ev.Receive(ctx); err != nil || len(got) != 1 {
		t.Errorf("Receive after the overflow = %v, %v; want the next event", got, err)
	}

	// An undecodable event is an error, not a panic.
	f.send(testFamily.ID, eventMessage(EventCreated, attr(evAttrToken, []byte{1})))
	if _, err := ev.Receive(ctx); err == nil || errors.Is(err, ErrEventsLost) {
		t.Errorf("Receive of a truncated event: %v, want a decode error", err)
	}
}

func TestEventsReceiveCancel(t *testing.T) {
	f := newFakeEvents()
	ev := &Events{conn: f, familyID: testFamily.ID}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := ev.Receive(ctx)
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Receive after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(waitTime):
		t.Fatal("Receive still blocked after cancel")
	}

	// An already cancelled context does not read at all, and the next
	// Receive is not disturbed by the old deadline.
	if _, err := ev.Receive(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Receive with a cancelled context: %v", err)
	}
	f.send(testFamily.ID, eventMessage(EventClosed, evToken))
	if got, err := ev.Receive(context.Background()); err != nil || len(got) != 1 {
		t.Errorf("Receive after a cancelled one = %v, %v; want the event", got, err)
	}
}

func TestJoinError(t *testing.T) {
	err := joinError(&netlink.OpError{Op: "join-group", Err: os.NewSyscallError("setsockopt", unix.EPERM)})
	if !errors.Is(err, ErrPermission) || !errors.Is(err, unix.EPERM) {
		t.Errorf("joinError(EPERM) = %v, want ErrPermission wrapping EPERM", err)
	}
	for _, want := range []string{"CAP_NET_ADMIN", "root"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("joinError(EPERM) = %q, does not mention %q", err, want)
		}
	}
	err = joinError(&netlink.OpError{Op: "join-group", Err: os.NewSyscallError("setsockopt", unix.EINVAL)})
	if errors.Is(err, ErrPermission) || !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), eventsGroupName) {
		t.Errorf("joinError(EINVAL) = %v", err)
	}
}
