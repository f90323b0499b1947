package netlinkmptcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/mdlayher/genetlink"
	"golang.org/x/net/bpf"
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

// eventFilter is a socket filter that lets only the given event types
// through, and with dropServerSide not the CREATED and ESTABLISHED events
// of connections this host accepted: the kernel drops them before they
// wake the reader. It reads the generic netlink command, the byte after
// the netlink header, and for the side the attribute after the token,
// where every kernel since 5.19 puts SERVER_SIDE (6.18 only on the server
// side, 5.19 to 6.17 always, 0 or 1); an event laid out otherwise passes.
func eventFilter(keep []EventType, dropServerSide bool) []bpf.RawInstruction {
	const (
		cmdOff   = nlmsgHeaderLen
		tokenOff = nlmsgHeaderLen + genlHeaderLen // u32 attribute: 8 bytes
		sideOff  = tokenOff + 8                   // u8 attribute: 5 bytes, padded to 8
		valueOff = sideOff + 4
	)
	var sided, plain []EventType
	for _, t := range keep {
		if dropServerSide && (t == EventCreated || t == EventEstablished) {
			sided = append(sided, t)
		} else {
			plain = append(plain, t)
		}
	}
	// The program: the command's checks, then (with sided types) a jump to
	// drop and the side's checks, then drop, then accept. Every jump goes
	// forward to a label resolved at the end.
	const (
		labelSide = iota
		labelDrop
		labelAccept
	)
	var prog []bpf.Instruction
	var labels [3]int
	type jump struct{ at, label int }
	var jumps []jump
	jumpIf := func(cond bpf.JumpTest, val uint32, label int) {
		jumps = append(jumps, jump{len(prog), label})
		prog = append(prog, bpf.JumpIf{Cond: cond, Val: val})
	}
	prog = append(prog, bpf.LoadAbsolute{Off: cmdOff, Size: 1})
	for _, t := range plain {
		jumpIf(bpf.JumpEqual, uint32(t), labelAccept)
	}
	for _, t := range sided {
		jumpIf(bpf.JumpEqual, uint32(t), labelSide)
	}
	if len(sided) > 0 {
		jumpIf(bpf.JumpGreaterOrEqual, 0, labelDrop) // always true: no other type passes
		labels[labelSide] = len(prog)
		// Attribute headers are in host byte order; the filter loads
		// big-endian.
		for _, f := range []struct {
			off uint32
			val uint16
		}{{tokenOff, 8}, {tokenOff + 2, evAttrToken}, {sideOff, 5}, {sideOff + 2, evAttrServerSide}} {
			prog = append(prog, bpf.LoadAbsolute{Off: f.off, Size: 2})
			jumpIf(bpf.JumpNotEqual, uint32(loadedHalf(f.val)), labelAccept)
		}
		prog = append(prog, bpf.LoadAbsolute{Off: valueOff, Size: 1})
		jumpIf(bpf.JumpNotEqual, 1, labelAccept)
	}
	labels[labelDrop] = len(prog)
	prog = append(prog, bpf.RetConstant{Val: 0})
	labels[labelAccept] = len(prog)
	prog = append(prog, bpf.RetConstant{Val: 0xffffffff})
	for _, j := range jumps {
		ji := prog[j.at].(bpf.JumpIf)
		ji.SkipTrue = uint8(labels[j.label] - j.at - 1)
		prog[j.at] = ji
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		panic(fmt.Sprintf("netlinkmptcp: assemble the events filter: %v", err))
	}
	return raw
}

// loadedHalf is what a filter's big-endian 16-bit load reads where the
// kernel wrote v in host byte order.
func loadedHalf(v uint16) uint16 {
	return binary.BigEndian.Uint16(binary.NativeEndian.AppendUint16(nil, v))
}

// eventsReadBuffer is the events socket's receive buffer: bursts of short
// connections produce several events each, faster than a busy reader drains
// them.
const eventsReadBuffer = 4 << 20

// eventConn is what Events needs of its socket; *genetlink.Conn has it.
type eventConn interface {
	SyscallConn() (syscall.RawConn, error)
	SetReadDeadline(time.Time) error
	Close() error
}

// Events is a subscription to the path manager's events in one network
// namespace.
type Events struct {
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

// eventBufferSize holds the family's description read when listening
// starts.
const eventBufferSize = 32 << 10

// Events are read eventSlots at a time, each datagram into a slot of
// eventSlotSize bytes: the largest event is a few hundred.
const (
	eventSlots    = 32
	eventSlotSize = 1 << 10
)

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
	if len(cfg.Only) > 0 {
		if err := conn.SetBPF(eventFilter(cfg.Only, cfg.DropServerSide)); err != nil {
			return nil, opError("attach the events filter", err)
		}
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

// EventHandler takes what Run reads.
type EventHandler interface {
	// Events gets the events one wake-up brought, in the kernel's order.
	// The slice and its events are reused once it returns.
	Events([]Event)
	// Lost says that events were dropped (the socket's buffer overflowed:
	// the error matches ErrEventsLost) or one could not be decoded: the
	// stream is no longer complete, reading carries on.
	Lost(err error)
}

// maxBatch bounds the events handed over at once, so a long burst is taken
// in while it lasts.
const maxBatch = 256

// Run reads events until ctx is done, when it returns ctx's error, or until
// reading fails. It reads every datagram waiting before it hands the batch
// over, and waits in the runtime's poller, not in a thread of its own; it
// allocates nothing per event. One Run at a time.
func (ev *Events) Run(ctx context.Context, h EventHandler) error {
	batch := make([]Event, 0, maxBatch)
	deliver := func() {
		if len(batch) > 0 {
			h.Events(batch)
			batch = batch[:0]
		}
	}
	return ev.read(ctx, func(b []byte) {
		var err error
		if batch, err = decodeDatagram(b, ev.familyID, batch); err != nil {
			deliver()
			h.Lost(&Error{Op: "receive events", Err: err})
		}
		if len(batch) >= maxBatch {
			deliver()
		}
	}, deliver, func(err error) {
		deliver()
		h.Lost(err)
	})
}

// read reads datagrams into datagram until ctx is done or reading fails;
// idle runs when none is waiting, before the wait, and lost on an
// overflow.
func (ev *Events) read(ctx context.Context, datagram func([]byte), idle func(), lost func(error)) error {
	rc, err := ev.conn.SyscallConn()
	if err != nil {
		return opError("receive events", err)
	}
	if err := ev.conn.SetReadDeadline(time.Time{}); err != nil {
		return opError("receive events", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = ev.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	r := newMultiReceiver(eventSlots, eventSlotSize)
	var readErr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, errno := r.receive(fd)
			switch {
			case errno == unix.EINTR:
				continue
			case errno == unix.EAGAIN:
				idle()
				return false
			case errno == unix.ENOBUFS:
				lost(opError("receive events", errno))
				continue
			case errno != 0:
				readErr = opError("receive events", errno)
				return true
			}
			for i := range n {
				b, truncated := r.datagram(i)
				if truncated {
					lost(&Error{Op: "receive events", Err: fmt.Errorf("an event of more than %d bytes", eventSlotSize)})
					continue
				}
				datagram(b)
			}
			if n < len(r.hdrs) {
				// The queue was empty: a datagram that comes later is a
				// new readiness for the poller, so no read is needed to
				// see EAGAIN.
				idle()
				return false
			}
		}
	})
	idle()
	if ctx.Err() != nil && (err == nil || errors.Is(err, os.ErrDeadlineExceeded)) {
		return ctx.Err()
	}
	if readErr != nil {
		return readErr
	}
	return opError("receive events", err)
}
