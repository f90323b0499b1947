package netlinkmptcp

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/net/bpf"
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

// pairEvents is an eventConn on one end of a datagram socket pair: the
// test writes netlink datagrams into the other end, as the kernel would.
type pairEvents struct {
	*os.File
	peer int
}

func newPairEvents(t testing.TB) *pairEvents {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &pairEvents{File: os.NewFile(uintptr(fds[0]), "events"), peer: fds[1]}
	t.Cleanup(func() { p.Close(); unix.Close(p.peer) })
	return p
}

// send writes one datagram holding msgs as messages of family id.
func (p *pairEvents) send(t testing.TB, id uint16, msgs ...genetlink.Message) {
	t.Helper()
	var dgram []byte
	for _, m := range msgs {
		body, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		b, err := frame(id, body)
		if err != nil {
			t.Fatal(err)
		}
		dgram = append(dgram, b...)
	}
	if err := unix.Send(p.peer, dgram, 0); err != nil {
		t.Fatal(err)
	}
}

// frame wraps a generic netlink body in a netlink header of family id, as
// the kernel sends it.
func frame(id uint16, body []byte) ([]byte, error) {
	const headerLen = 16
	return netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(id), Length: uint32(headerLen + len(body))}, Data: body}.MarshalBinary()
}

// collector is an EventHandler that copies what it is given.
type collector struct {
	events chan Event
	lost   chan error
}

func newCollector() *collector {
	return &collector{events: make(chan Event, 1024), lost: make(chan error, 16)}
}

func (c *collector) Events(evs []Event) {
	for _, e := range evs {
		c.events <- e
	}
}

func (c *collector) Lost(err error) { c.lost <- err }

func (c *collector) next(t *testing.T) Event {
	t.Helper()
	select {
	case e := <-c.events:
		return e
	case err := <-c.lost:
		t.Fatalf("lost events: %v", err)
	case <-time.After(waitTime):
		t.Fatal("no event")
	}
	return Event{}
}

func TestEventsRun(t *testing.T) {
	p := newPairEvents(t)
	ev := &Events{conn: p, familyID: testFamily.ID}
	c := newCollector()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ev.Run(ctx, c) }()

	created := eventMessage(EventCreated, evToken)
	closed := eventMessage(EventClosed, evToken)
	p.send(t, testFamily.ID, created, closed)
	if a, b := c.next(t), c.next(t); a.Type != EventCreated || b.Type != EventClosed {
		t.Fatalf("events = %v, %v; want created, closed", a, b)
	}

	// Another family's messages are skipped.
	p.send(t, testFamily.ID+1, created)
	p.send(t, testFamily.ID, closed)
	if e := c.next(t); e.Type != EventClosed {
		t.Errorf("after a foreign message: %v, want closed only", e)
	}

	// An undecodable event is a loss, not a panic, and the stream goes on.
	p.send(t, testFamily.ID, eventMessage(EventCreated, attr(evAttrToken, []byte{1})))
	select {
	case err := <-c.lost:
		if errors.Is(err, ErrEventsLost) || !strings.Contains(err.Error(), "created") {
			t.Errorf("a truncated event: %v, want a decode error naming it", err)
		}
	case <-time.After(waitTime):
		t.Fatal("a truncated event was not reported")
	}
	p.send(t, testFamily.ID, closed)
	if e := c.next(t); e.Type != EventClosed {
		t.Errorf("after a bad event: %v", e)
	}

	// More datagrams queued than one read takes: all come, in order.
	for i := range eventSlots + 8 {
		p.send(t, testFamily.ID, eventMessage(EventClosed, attr(evAttrToken, hostU32(uint32(i)))))
	}
	for i := range eventSlots + 8 {
		if e := c.next(t); e.Type != EventClosed || e.Token != uint32(i) {
			t.Fatalf("queued event %d: %v, want closed token %08x", i, e, i)
		}
	}

	// A datagram larger than a slot is cut by the kernel: a loss.
	big := eventMessage(EventClosed, evToken, attr(99, make([]byte, eventSlotSize)))
	p.send(t, testFamily.ID, big)
	select {
	case err := <-c.lost:
		if !strings.Contains(err.Error(), "more than") {
			t.Errorf("an oversized event: %v, want one naming the size", err)
		}
	case <-time.After(waitTime):
		t.Fatal("an oversized event was not reported")
	}

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(waitTime):
		t.Fatal("Run still blocked after cancel")
	}
	// The next Run is not disturbed by the old deadline.
	go func() { done <- ev.Run(context.Background(), c) }()
	p.send(t, testFamily.ID, closed)
	if e := c.next(t); e.Type != EventClosed {
		t.Errorf("after a cancelled Run: %v", e)
	}
}

// Decoding an event allocates nothing: a busy server reads thousands a
// second.
func TestDecodeDatagramAllocatesNothing(t *testing.T) {
	m := eventMessage(EventSubEstablished, evToken, evFamily4, evU8(evAttrLocID, 2), evAddr(evAttrSaddr4, "198.51.100.2"),
		evPort(evAttrSport, 45000), evAddr(evAttrDaddr4, "192.0.2.1"), evPort(evAttrDport, 8080))
	body, _ := m.MarshalBinary()
	b, err := frame(testFamily.ID, body)
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]Event, 0, 4)
	if n := testing.AllocsPerRun(100, func() {
		evs, _ = decodeDatagram(b, testFamily.ID, evs[:0])
	}); n != 0 || len(evs) != 1 || evs[0].Local.Port() != 45000 {
		t.Errorf("%v allocations per event (decoded %v), want none", n, evs)
	}
}

// The events filter, run in x/net/bpf's interpreter on events laid out as
// each kernel lays them out.
func TestEventFilter(t *testing.T) {
	client61 := []byte{evAttrServerSide, 0}
	server61 := []byte{evAttrServerSide, 1}
	subflow := concat(evFamily4, evAddr(evAttrSaddr4, "192.0.2.2"), evAddr(evAttrDaddr4, "192.0.2.1"))
	side := func(typ EventType, sideAttr []byte, rest ...[]byte) genetlink.Message {
		attrs := [][]byte{evToken}
		if sideAttr != nil {
			attrs = append(attrs, evU8(uint16(sideAttr[0]), sideAttr[1]))
		}
		return eventMessage(typ, append(attrs, rest...)...)
	}
	flags := attr(evAttrFlags, hostU16(uint16(EventFlagServerSide)))
	keep := []EventType{EventCreated, EventEstablished, EventClosed, EventSubClosed}
	tests := []struct {
		name           string
		msg            genetlink.Message
		dropServerSide bool
		want           bool
	}{
		{"closed", eventMessage(EventClosed, evToken), true, true},
		{"listener created, not kept", eventMessage(EventListenerCreated, evFamily4), true, false},
		{"sub established, not kept", eventMessage(EventSubEstablished, evToken, subflow), false, false},
		{"6.1 client created", side(EventCreated, client61, subflow), true, true},
		{"6.1 server created", side(EventCreated, server61, subflow), true, false},
		{"6.1 server established", side(EventEstablished, server61, subflow), true, false},
		{"6.1 server established, side kept", side(EventEstablished, server61, subflow), false, true},
		{"6.18 client established", side(EventEstablished, nil, subflow), true, true},
		{"6.18 client established, deny join id 0", side(EventEstablished, nil, attr(evAttrFlags, hostU16(uint16(EventFlagDenyJoinID0))), subflow), true, true},
		{"6.18 server established", side(EventEstablished, server61, flags, subflow), true, false},
		{"token not first: passes", eventMessage(EventEstablished, evU8(evAttrServerSide, 1), evToken), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := tt.msg.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			b, err := frame(testFamily.ID, body)
			if err != nil {
				t.Fatal(err)
			}
			prog, ok := bpf.Disassemble(eventFilter(keep, tt.dropServerSide))
			if !ok {
				t.Fatalf("the filter does not disassemble: %v", prog)
			}
			vm, err := bpf.NewVM(prog)
			if err != nil {
				t.Fatal(err)
			}
			n, err := vm.Run(b)
			if err != nil {
				t.Fatal(err)
			}
			if got := n > 0; got != tt.want {
				t.Errorf("passes: %t, want %t", got, tt.want)
			}
		})
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
