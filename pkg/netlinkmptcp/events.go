package netlinkmptcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// EventType is the kind of an event (MPTCP_EVENT_*).
type EventType uint8

// The kernel's events. Listener events exist since Linux 6.2.
const (
	EventCreated         EventType = 1  // a connection's first subflow is opening
	EventEstablished     EventType = 2  // the connection is fully established
	EventClosed          EventType = 3  // the connection is closed
	EventAnnounced       EventType = 6  // the peer announced an address
	EventRemoved         EventType = 7  // the peer withdrew an address
	EventSubEstablished  EventType = 10 // an additional subflow is established
	EventSubClosed       EventType = 11 // a subflow is closed
	EventSubPriority     EventType = 13 // a subflow's backup priority changed
	EventListenerCreated EventType = 15 // an MPTCP listening socket is bound
	EventListenerClosed  EventType = 16 // an MPTCP listening socket is closed
)

var eventNames = map[EventType]string{
	EventCreated:         "created",
	EventEstablished:     "established",
	EventClosed:          "closed",
	EventAnnounced:       "announced",
	EventRemoved:         "removed",
	EventSubEstablished:  "sub_established",
	EventSubClosed:       "sub_closed",
	EventSubPriority:     "sub_priority",
	EventListenerCreated: "listener_created",
	EventListenerClosed:  "listener_closed",
}

// String is the event's name as `ip mptcp monitor` spells it in lower case
// ("created", "sub_established"), "event(N)" for an unknown one.
func (t EventType) String() string {
	if name, ok := eventNames[t]; ok {
		return name
	}
	return fmt.Sprintf("event(%d)", uint8(t))
}

// EventFlags are the FLAGS attribute's bits (Linux 6.18).
type EventFlags uint16

// Event flags.
const (
	// EventFlagDenyJoinID0: the peer refuses joins to its initial address.
	EventFlagDenyJoinID0 EventFlags = 0x1
	// EventFlagServerSide: this host accepted the connection.
	EventFlagServerSide EventFlags = 0x2
)

// Event is one path-manager event. Which fields are set depends on Type;
// fields the kernel did not send are zero.
type Event struct {
	Type EventType
	// Token names the connection on this host (both ends have their own).
	Token uint32
	// Family is the subflow's or listener's family; for EventAnnounced,
	// which carries none, it is inferred from the address.
	Family Family
	// Local is this host's address and port of the subflow or listener.
	// Sockets of family IPv6 report IPv4 peers as IPv4-mapped addresses.
	Local netip.AddrPort
	// Remote is the peer's address and port; for EventAnnounced, the
	// announced address and port.
	Remote netip.AddrPort
	// LocalID and RemoteID are the address ids at both ends; 0 is the
	// initial subflow's address.
	LocalID, RemoteID uint8
	// ServerSide: this host accepted the connection. Read from the
	// SERVER_SIDE attribute (Linux 5.19 to 6.17) or the FLAGS bit (6.18).
	ServerSide bool
	// Flags are the FLAGS attribute (6.18).
	Flags EventFlags
	// Backup: the subflow is a backup.
	Backup bool
	// Error is the subflow socket's pending error, 0 if none.
	Error syscall.Errno
	// IfIndex is the device the subflow is bound to, 0 if none.
	IfIndex int32
	// ResetReason and ResetFlags come with a subflow closed by a TCP reset
	// (MPTCP_RST_* reason codes; flag 1 means transient).
	ResetReason, ResetFlags uint32
	// Timeout is the TIMEOUT attribute, which no kernel sends yet.
	Timeout uint32
}

// String summarises the event for logs.
func (e Event) String() string {
	var b strings.Builder
	b.WriteString(e.Type.String())
	if e.Token != 0 {
		fmt.Fprintf(&b, " token %08x", e.Token)
	}
	if e.Local.Addr().IsValid() {
		fmt.Fprintf(&b, " local %s", e.Local)
	}
	if e.Remote.Addr().IsValid() {
		fmt.Fprintf(&b, " remote %s", e.Remote)
	}
	if e.LocalID != 0 || e.RemoteID != 0 {
		fmt.Fprintf(&b, " ids %d/%d", e.LocalID, e.RemoteID)
	}
	if e.ServerSide {
		b.WriteString(" server-side")
	}
	if e.Backup {
		b.WriteString(" backup")
	}
	if e.IfIndex != 0 {
		fmt.Fprintf(&b, " ifindex %d", e.IfIndex)
	}
	if e.Error != 0 {
		fmt.Fprintf(&b, " error %q", e.Error.Error())
	}
	if e.ResetReason != 0 || e.ResetFlags != 0 {
		fmt.Fprintf(&b, " reset reason %d flags %#x", e.ResetReason, e.ResetFlags)
	}
	return b.String()
}

// parseEvent decodes one event message. Unknown attributes are skipped;
// attributes of the wrong size are an error.
func parseEvent(m genetlink.Message) (Event, error) {
	e := Event{Type: EventType(m.Header.Command)}
	ad, err := netlink.NewAttributeDecoder(m.Data)
	if err != nil {
		return Event{}, fmt.Errorf("decode %s event: %w", e.Type, err)
	}
	var (
		saddr4, saddr6, daddr4, daddr6 netip.Addr
		sport, dport                   uint16
		serverSide                     bool
	)
	for ad.Next() {
		switch ad.Type() {
		case evAttrToken:
			e.Token = ad.Uint32()
		case evAttrFamily:
			e.Family = Family(ad.Uint16())
		case evAttrLocID:
			e.LocalID = ad.Uint8()
		case evAttrRemID:
			e.RemoteID = ad.Uint8()
		case evAttrSaddr4:
			ad.Do(decodeAddr(&saddr4, 4))
		case evAttrSaddr6:
			ad.Do(decodeAddr(&saddr6, 16))
		case evAttrDaddr4:
			ad.Do(decodeAddr(&daddr4, 4))
		case evAttrDaddr6:
			ad.Do(decodeAddr(&daddr6, 16))
		case evAttrSport:
			ad.Do(decodePort(&sport))
		case evAttrDport:
			ad.Do(decodePort(&dport))
		case evAttrBackup:
			e.Backup = ad.Uint8() != 0
		case evAttrError:
			e.Error = syscall.Errno(ad.Uint8())
		case evAttrFlags:
			e.Flags = EventFlags(ad.Uint16())
		case evAttrTimeout:
			e.Timeout = ad.Uint32()
		case evAttrIfIdx:
			e.IfIndex = ad.Int32()
		case evAttrResetReason:
			e.ResetReason = ad.Uint32()
		case evAttrResetFlags:
			e.ResetFlags = ad.Uint32()
		case evAttrServerSide:
			serverSide = ad.Uint8() != 0
		}
	}
	if err := ad.Err(); err != nil {
		return Event{}, fmt.Errorf("decode %s event: %w", e.Type, err)
	}
	if e.Family == 0 {
		switch {
		case saddr4.IsValid() || daddr4.IsValid():
			e.Family = FamilyIPv4
		case saddr6.IsValid() || daddr6.IsValid():
			e.Family = FamilyIPv6
		}
	}
	if local := pickAddr(e.Family, saddr4, saddr6); local.IsValid() || sport != 0 {
		e.Local = netip.AddrPortFrom(local, sport)
	}
	if remote := pickAddr(e.Family, daddr4, daddr6); remote.IsValid() || dport != 0 {
		e.Remote = netip.AddrPortFrom(remote, dport)
	}
	e.ServerSide = serverSide || e.Flags&EventFlagServerSide != 0
	return e, nil
}

// decodePort reads an event port: a u16 in network byte order, unlike the
// commands' host-order PORT.
func decodePort(dst *uint16) func([]byte) error {
	return func(b []byte) error {
		if len(b) != 2 {
			return fmt.Errorf("port attribute of %d bytes, want 2", len(b))
		}
		*dst = binary.BigEndian.Uint16(b)
		return nil
	}
}

// eventsReadBuffer is the events socket's receive buffer: bursts of short
// connections produce several events each, faster than a busy reader drains
// them.
const eventsReadBuffer = 4 << 20

// eventConn is what Events needs of its socket; *genetlink.Conn has it.
type eventConn interface {
	Receive() ([]genetlink.Message, []netlink.Message, error)
	SetReadDeadline(time.Time) error
	Close() error
}

// Events is a subscription to the path manager's events in one network
// namespace.
type Events struct {
	mu       sync.Mutex // one Receive at a time: deadlines are per socket
	conn     eventConn
	familyID uint16
}

// ListenEvents joins the mptcp_pm_events group on a socket of its own in
// cfg's namespace (nil: the caller's). It needs CAP_NET_ADMIN; without it
// the error matches ErrPermission. Kernels older than 5.12 have no events:
// ErrNotSupported.
func ListenEvents(cfg *Config) (*Events, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	// Events are small and come one per datagram: a reused buffer saves
	// the peek that sizes each read, half the system calls per event.
	conn, err := dialConnBuffered(cfg, eventBufferSize)
	if err != nil {
		return nil, err
	}
	ev, err := listenOn(conn, cfg)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return ev, nil
}

// eventBufferSize holds any event (a few hundred bytes) and the family's
// description read when listening starts.
const eventBufferSize = 32 << 10

func listenOn(conn *genetlink.Conn, cfg *Config) (*Events, error) {
	f, err := resolveFamily(conn)
	if err != nil {
		return nil, err
	}
	group := f.eventsGroup()
	if group == 0 {
		return nil, &sentenceError{
			text: "the kernel's MPTCP path manager has no event group (mptcp_pm_events), " +
				"which appeared in Linux 5.12: upgrade the kernel",
			kind: ErrNotSupported,
		}
	}
	size := eventsReadBuffer
	if cfg.readBuffer != 0 {
		size = cfg.readBuffer
	}
	if err := conn.SetReadBuffer(size); err != nil {
		return nil, opError(fmt.Sprintf("set events receive buffer to %d bytes", size), err)
	}
	if err := conn.JoinGroup(group); err != nil {
		return nil, joinError(err)
	}
	return &Events{conn: conn, familyID: f.id}, nil
}

// joinError explains a refused group join.
func joinError(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return &sentenceError{
			text: "joining the MPTCP event group (mptcp_pm_events) needs CAP_NET_ADMIN: " +
				"run as root or grant the capability (systemd: AmbientCapabilities=CAP_NET_ADMIN)",
			kind:  ErrPermission,
			cause: err,
		}
	}
	return opError("join MPTCP event group "+eventsGroupName, err)
}

// Close leaves the group and closes the socket; a blocked Receive returns.
func (ev *Events) Close() error { return ev.conn.Close() }

// Receive blocks until events arrive, and returns them in the kernel's order,
// or until ctx is done (then it returns ctx's error).
//
// When the socket's buffer overflowed, the error matches ErrEventsLost:
// events were dropped and the caller should re-read the state it follows.
// The Events stays usable and the next Receive carries on. Any other error,
// including an event that cannot be decoded, also means the stream is no
// longer complete.
func (ev *Events) Receive(ctx context.Context) ([]Event, error) {
	for {
		msgs, err := ev.receiveMessages(ctx)
		if err != nil {
			return nil, err
		}
		if len(msgs) == 0 {
			continue
		}
		events := make([]Event, 0, len(msgs))
		for _, m := range msgs {
			e, err := parseEvent(m)
			if err != nil {
				return nil, &Error{Op: "receive events", Err: err}
			}
			events = append(events, e)
		}
		return events, nil
	}
}

// receiveMessages reads one batch of the family's messages from the socket.
// Cancelling ctx moves the read deadline into the past, which wakes the
// blocked read.
func (ev *Events) receiveMessages(ctx context.Context) ([]genetlink.Message, error) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := ev.conn.SetReadDeadline(time.Time{}); err != nil {
		return nil, opError("receive events", err)
	}
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(woken)
		_ = ev.conn.SetReadDeadline(time.Unix(1, 0))
	})
	msgs, nlmsgs, err := ev.conn.Receive()
	if !stop() {
		// The deadline was moved: wait until it is, so that the next call's
		// reset is not overtaken.
		<-woken
	}
	if err != nil {
		// Only the deadline that cancellation set is the context's; any other
		// error, a lost-events one above all, goes to the caller.
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, ctxErr
		}
		return nil, opError("receive events", err)
	}
	ours := msgs[:0]
	for i, m := range msgs {
		if uint16(nlmsgs[i].Header.Type) == ev.familyID {
			ours = append(ours, m)
		}
	}
	return ours, nil
}
