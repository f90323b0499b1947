// Package connview keeps a live view of the MPTCP connections a network
// namespace opened (the client side) and their subflows, fed by the path
// manager's events: join supervision decides from it. Connections the
// namespace accepted are not followed, as nothing is decided from them;
// the kernel drops their events before they wake the daemon where it can
// (ListenConfig). SnapshotWith adds them, and listeners, from the
// kernel's socket diagnostics (package sockdiag) when `mptcpgd show` asks.
//
// Events are lossy: when the event socket overflows, the view is marked
// incomplete and rebuilt from the socket diagnostics. While it is
// incomplete, events for connections it does not know add the connection
// rather than being dropped; while it is complete, such events are of
// connections this host accepted, and are ignored.
package connview

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

// Connection is one MPTCP connection in the view. Addresses are as users
// write them: IPv4-mapped IPv6 addresses are IPv4.
type Connection struct {
	// Token names the connection on this host.
	Token uint32 `json:"token"`
	// Local and Remote are the addresses and ports of the connection's
	// initial subflow; invalid if the view learnt of the connection from a
	// later event.
	Local  netip.AddrPort `json:"local"`
	Remote netip.AddrPort `json:"remote"`
	// ServerSide says this host accepted the connection.
	ServerSide bool `json:"server_side"`
	// Established says the connection is fully established: its
	// ESTABLISHED event was seen, or it was implied by a later event or by
	// the kernel's socket state when the view was rebuilt.
	Established bool `json:"established"`
	// Partial says the view learnt of the connection from an event other
	// than CREATED (after lost events, say): what happened before, the
	// initial subflow included, may be missing.
	Partial bool `json:"partial,omitempty"`
	// Subflows are the connection's subflows, the initial one first.
	Subflows []Subflow `json:"subflows"`
	// PeerAddrs are the addresses the peer announced (ADD_ADDR) and has not
	// withdrawn, by id. A rebuilt view has none: the kernel's socket
	// diagnostics do not report them.
	PeerAddrs []PeerAddr `json:"peer_addrs,omitempty"`
	// DenyJoinID0 says the peer refuses joins to its initial address.
	DenyJoinID0 bool `json:"deny_join_id0,omitempty"`
	// Since is when the view saw the connection established (or, after a
	// rebuild, when it read it).
	Since time.Time `json:"since,omitzero"`
	// FailedJoins are the latest failed join (or subflow that closed with
	// an error) from each local address, until a subflow from that address
	// is established.
	FailedJoins []FailedJoin `json:"failed_joins,omitempty"`
}

// FailedJoin is a subflow from a local address that the kernel closed with
// an error: a join refused or reset, or a working subflow that broke.
type FailedJoin struct {
	Local   netip.Addr    `json:"local"`
	LocalID uint8         `json:"local_id"`
	Errno   syscall.Errno `json:"errno"`
	At      time.Time     `json:"at"`
}

// Subflow is one subflow of a connection.
type Subflow struct {
	// Local and Remote are the subflow's addresses and ports.
	Local  netip.AddrPort `json:"local"`
	Remote netip.AddrPort `json:"remote"`
	// LocalID and RemoteID are the address ids at both ends; LocalID is the
	// id of the local endpoint a joined subflow was opened from.
	LocalID  uint8 `json:"local_id"`
	RemoteID uint8 `json:"remote_id"`
	// Initial says this is the subflow the connection started with.
	Initial bool `json:"initial"`
	// Backup says the subflow is a backup. From events it is the kernel's
	// event flag, which follows the peer's request (MP_PRIO, MP_JOIN);
	// after a rebuild it is set if either end asked.
	Backup bool `json:"backup"`
	// IfIndex is the device the subflow is bound to, 0 if none.
	IfIndex int `json:"ifindex,omitempty"`
}

// PeerAddr is an address the peer announced.
type PeerAddr struct {
	// ID is the peer's id for the address.
	ID uint8 `json:"id"`
	// Addr is the address, with the announced port or port 0.
	Addr netip.AddrPort `json:"addr"`
}

// followed are the events the view uses.
var followed = []netlinkmptcp.EventType{
	netlinkmptcp.EventEstablished, netlinkmptcp.EventClosed,
	netlinkmptcp.EventAnnounced, netlinkmptcp.EventRemoved,
	netlinkmptcp.EventSubEstablished, netlinkmptcp.EventSubClosed,
}

// ListenConfig is the subscription to the path manager's events that a
// view needs, in the network namespace netns (0: the caller's). The kernel
// drops the other events, and the ESTABLISHED events of connections this
// host accepted, before they wake the reader: on a busy server, that is
// most of them.
func ListenConfig(netns int) *netlinkmptcp.Config {
	return &netlinkmptcp.Config{NetNS: netns, Only: followed, DropServerSide: true}
}

// Snapshot is a copy of the view at one moment; changing it does not
// change the view.
type Snapshot struct {
	// Connections are ordered by token.
	Connections []Connection `json:"connections"`
	// Listeners are the MPTCP listening sockets, ordered by address; only
	// SnapshotWith has them.
	Listeners []netip.AddrPort `json:"listeners"`
	// Complete says the view has followed every event since it was last
	// read from the kernel; IncompleteReason says why not.
	Complete         bool   `json:"complete"`
	IncompleteReason string `json:"incomplete_reason,omitempty"`
	// Events counts the events applied, Losses the times the view was
	// marked incomplete, Rebuilds the times it was read from the kernel.
	Events   uint64 `json:"events"`
	Losses   uint64 `json:"losses"`
	Rebuilds uint64 `json:"rebuilds"`
}

// View is the live view. It is safe for concurrent use; it expects one
// writer (the event loop) and any number of readers.
type View struct {
	mu       sync.RWMutex
	conns    map[uint32]*connection
	complete bool
	reason   string
	events   uint64
	losses   uint64
	rebuilds uint64
	changed  chan struct{}
	// joins is signalled on changes to connections' subflows: what join
	// supervision follows. joinsArmed: Clients was called since the last
	// signal, so the next change is news.
	joins      chan struct{}
	joinsArmed bool
	now        func() time.Time
	// joinObs hears of joins (ObserveJoins); nil hears nothing.
	joinObs JoinObserver
}

// connection is a Connection with its subflows and announced addresses
// keyed for updates.
type connection struct {
	Connection
	subflows  map[subflowKey]Subflow
	peerAddrs map[uint8]netip.AddrPort
	failed    map[netip.Addr]FailedJoin
}

type subflowKey struct{ local, remote netip.AddrPort }

// notReadYet is a new view's reason for being incomplete.
const notReadYet = "connections not read from the kernel yet"

// New returns an empty view, incomplete until its first Rebuild: the
// connections that existed before events were followed are not in it.
func New() *View {
	return &View{
		conns:      map[uint32]*connection{},
		reason:     notReadYet,
		changed:    make(chan struct{}, 1),
		joins:      make(chan struct{}, 1),
		joinsArmed: true,
		now:        time.Now,
	}
}

// JoinObserver hears of the joins of the connections the view follows
// (those this host opened): each join established, and each that the
// kernel closed with an error before it was. Its methods are called with
// the view locked: they must be quick and must not call the view.
type JoinObserver interface {
	JoinEstablished(local netip.Addr, ifindex int)
	JoinFailed(local netip.Addr, ifindex int, errno syscall.Errno)
}

// ObserveJoins makes o hear of joins from now on; call it before events
// are applied.
func (v *View) ObserveJoins(o JoinObserver) {
	v.mu.Lock()
	v.joinObs = o
	v.mu.Unlock()
}

// JoinsChanged receives a value after a change that join supervision
// follows (a connection established or closed, one of its subflows
// established or closed, a rebuild), once until the next Clients: a busy
// client's connections wake the reader of Clients once per look, not once
// per event.
func (v *View) JoinsChanged() <-chan struct{} { return v.joins }

// notifyJoins signals JoinsChanged if Clients was called since the last
// signal; v.mu is held.
func (v *View) notifyJoins() {
	if !v.joinsArmed {
		return
	}
	v.joinsArmed = false
	select {
	case v.joins <- struct{}{}:
	default:
	}
}

// Clients returns a copy of the established connections: the ones whose
// joins we open. It arms JoinsChanged.
func (v *View) Clients() []Connection {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.joinsArmed = true
	var out []Connection
	for _, c := range v.conns {
		if !c.Established {
			continue
		}
		out = append(out, c.snapshot())
	}
	slices.SortFunc(out, func(a, b Connection) int { return cmp.Compare(a.Token, b.Token) })
	return out
}

// Changed receives a value after the view changed (events applied, a
// rebuild), coalesced: one value stands for any number of changes since it
// was last received. It lets a status line follow the view without polling.
func (v *View) Changed() <-chan struct{} { return v.changed }

func (v *View) notify() {
	select {
	case v.changed <- struct{}{}:
	default:
	}
}

// Apply updates the view with one event. change is a short sentence
// saying what changed, for a debug log line; ok is false when nothing did
// (an unknown event, or the end of something the view did not have), and
// change then says why.
func (v *View) Apply(ev netlinkmptcp.Event) (change string, ok bool) {
	return v.apply(&ev, true)
}

// apply is Apply; with describe false it leaves change empty and skips the
// formatting, which on a busy server would cost more than the update.
func (v *View) apply(ev *netlinkmptcp.Event, describe bool) (change string, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	defer v.notify()
	v.events++
	local, remote := unmap(ev.Local), unmap(ev.Remote)
	switch ev.Type {
	case netlinkmptcp.EventCreated, netlinkmptcp.EventEstablished:
		if ev.ServerSide {
			// Learnt from a later event while incomplete, perhaps.
			delete(v.conns, ev.Token)
			return say(describe, func() string {
				return fmt.Sprintf("ignored %s: the view does not follow connections this host accepted", ev)
			}), false
		}
		c, lazily, _ := v.lookup(ev.Token, false, describe && ev.Type != netlinkmptcp.EventCreated)
		if ev.Type == netlinkmptcp.EventCreated {
			lazily = ""
		} else {
			c.Established = true
		}
		c.Local, c.Remote, c.ServerSide = local, remote, ev.ServerSide
		c.DenyJoinID0 = ev.Flags&netlinkmptcp.EventFlagDenyJoinID0 != 0
		if ev.Type == netlinkmptcp.EventEstablished {
			c.Since = v.now()
			v.notifyJoins()
		}
		initial := Subflow{Local: local, Remote: remote, LocalID: ev.LocalID, RemoteID: ev.RemoteID, Initial: true}
		if old, ok := c.subflows[initial.key()]; ok {
			initial.Backup, initial.IfIndex = old.Backup, old.IfIndex
		}
		c.subflows[initial.key()] = initial
		what := "created"
		if ev.Type == netlinkmptcp.EventEstablished {
			what = "established"
		}
		return say(describe, func() string {
			return fmt.Sprintf("connection %08x %s: %s -> %s, %s side%s", ev.Token, what, local, remote, side(ev.ServerSide), lazily)
		}), true

	case netlinkmptcp.EventClosed:
		c, ok := v.conns[ev.Token]
		if !ok {
			return say(describe, func() string { return fmt.Sprintf("connection %08x closed; it was not in the view", ev.Token) }), false
		}
		delete(v.conns, ev.Token)
		if !c.ServerSide {
			v.notifyJoins()
		}
		return say(describe, func() string {
			return fmt.Sprintf("connection %08x closed (%s -> %s, %d subflows)", ev.Token, c.Local, c.Remote, len(c.subflows))
		}), true

	case netlinkmptcp.EventAnnounced:
		c, lazily, ok := v.lookup(ev.Token, true, describe)
		if !ok {
			return notFollowed(describe, ev), false
		}
		c.peerAddrs[ev.RemoteID] = remote
		return say(describe, func() string {
			return fmt.Sprintf("peer of connection %08x announced %s as id %d%s", ev.Token, announcedAddr(remote), ev.RemoteID, lazily)
		}), true

	case netlinkmptcp.EventRemoved:
		c, lazily, ok := v.lookup(ev.Token, true, describe)
		if !ok {
			return notFollowed(describe, ev), false
		}
		addr, ok := c.peerAddrs[ev.RemoteID]
		delete(c.peerAddrs, ev.RemoteID)
		switch {
		case ok:
			return say(describe, func() string {
				return fmt.Sprintf("peer of connection %08x withdrew address id %d (%s)", ev.Token, ev.RemoteID, announcedAddr(addr))
			}), true
		case lazily != "":
			return say(describe, func() string {
				return fmt.Sprintf("peer of connection %08x withdrew address id %d%s", ev.Token, ev.RemoteID, lazily)
			}), true
		}
		return say(describe, func() string {
			return fmt.Sprintf("peer of connection %08x withdrew address id %d, which the view did not have", ev.Token, ev.RemoteID)
		}), false

	case netlinkmptcp.EventSubEstablished, netlinkmptcp.EventSubPriority:
		c, lazily, ok := v.lookup(ev.Token, true, describe)
		if !ok {
			return notFollowed(describe, ev), false
		}
		sf := Subflow{Local: local, Remote: remote, LocalID: ev.LocalID, RemoteID: ev.RemoteID, Backup: ev.Backup, IfIndex: int(ev.IfIndex)}
		old, known := c.subflows[sf.key()]
		sf.Initial = old.Initial
		c.subflows[sf.key()] = sf
		if ev.Type == netlinkmptcp.EventSubEstablished {
			delete(c.failed, local.Addr())
			v.notifyJoins()
			if !known && v.joinObs != nil {
				v.joinObs.JoinEstablished(local.Addr(), sf.IfIndex)
			}
		}
		if ev.Type == netlinkmptcp.EventSubPriority && known {
			return say(describe, func() string {
				return fmt.Sprintf("subflow %s of connection %08x is %s%s", describeSubflow(sf), ev.Token, priority(sf.Backup), lazily)
			}), true
		}
		return say(describe, func() string {
			return fmt.Sprintf("subflow %s joined connection %08x%s%s", describeSubflow(sf), ev.Token, subflowError(*ev), lazily)
		}), true

	case netlinkmptcp.EventSubClosed:
		c, lazily, ok := v.lookup(ev.Token, true, describe)
		if !ok {
			return notFollowed(describe, ev), false
		}
		key := subflowKey{local, remote}
		sf, ok := c.subflows[key]
		if !ok {
			sf = Subflow{Local: local, Remote: remote, LocalID: ev.LocalID, RemoteID: ev.RemoteID, IfIndex: int(ev.IfIndex)}
		}
		delete(c.subflows, key)
		if ev.Error != 0 {
			c.failed[local.Addr()] = FailedJoin{Local: local.Addr(), LocalID: ev.LocalID, Errno: ev.Error, At: v.now()}
			if !ok && v.joinObs != nil {
				v.joinObs.JoinFailed(local.Addr(), sf.IfIndex, ev.Error)
			}
		}
		v.notifyJoins()
		text := say(describe, func() string {
			return fmt.Sprintf("subflow %s of connection %08x closed%s%s", describeSubflow(sf), ev.Token, closeCause(*ev), lazily)
		})
		if !ok && lazily == "" {
			return say(describe, func() string { return text + "; it was not in the view" }), false
		}
		return text, true

	}
	return say(describe, func() string { return fmt.Sprintf("ignored %s: the view does not follow it", ev) }), false
}

// say returns the text f makes, or "" without calling f when nothing is
// to be described.
func say(describe bool, f func() string) string {
	if !describe {
		return ""
	}
	return f()
}

// notFollowed is the change text of an event of a connection the view does
// not follow.
func notFollowed(describe bool, ev *netlinkmptcp.Event) string {
	return say(describe, func() string {
		return fmt.Sprintf("ignored %s: connection %08x is not in the view, which has every connection this host opened", ev, ev.Token)
	})
}

// lookup returns the connection with token. One the view does not have is
// added, and then lazily is a remark for the change text, unless it comes
// from an event after CREATED and ESTABLISHED (partial) while the view is
// complete: the view then has every connection this host opened, so this
// one was accepted, and ok is false. A partial connection is marked so,
// and established, as such events come only after the handshake.
func (v *View) lookup(token uint32, partial, describe bool) (c *connection, lazily string, ok bool) {
	if c, ok := v.conns[token]; ok {
		return c, "", true
	}
	if partial && v.complete {
		return nil, "", false
	}
	c = newConnection(Connection{Token: token, Partial: partial, Established: partial})
	v.conns[token] = c
	return c, say(describe, func() string { return fmt.Sprintf(" (connection %08x was not in the view: added)", token) }), true
}

func newConnection(c Connection) *connection {
	return &connection{Connection: c, subflows: map[subflowKey]Subflow{}, peerAddrs: map[uint8]netip.AddrPort{},
		failed: map[netip.Addr]FailedJoin{}}
}

// snapshot copies the connection with its subflows, announced addresses and
// failed joins in order.
func (c *connection) snapshot() Connection {
	out := c.Connection
	out.Subflows = make([]Subflow, 0, len(c.subflows))
	for _, sf := range c.subflows {
		out.Subflows = append(out.Subflows, sf)
	}
	slices.SortFunc(out.Subflows, compareSubflows)
	out.PeerAddrs = make([]PeerAddr, 0, len(c.peerAddrs))
	for id, addr := range c.peerAddrs {
		out.PeerAddrs = append(out.PeerAddrs, PeerAddr{ID: id, Addr: addr})
	}
	slices.SortFunc(out.PeerAddrs, func(a, b PeerAddr) int { return cmp.Compare(a.ID, b.ID) })
	out.FailedJoins = nil
	for _, f := range c.failed {
		out.FailedJoins = append(out.FailedJoins, f)
	}
	slices.SortFunc(out.FailedJoins, func(a, b FailedJoin) int { return a.Local.Compare(b.Local) })
	return out
}

// MarkIncomplete records that the view missed events, and why.
func (v *View) MarkIncomplete(reason string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.complete = false
	v.reason = reason
	v.losses++
}

// Rebuild replaces the view's connections with the client-side ones of
// conns, as read from the kernel's socket diagnostics, and marks the view
// complete. Connections that fell back to TCP are left out: the path
// manager has no events for them, so a view fed by events never has them
// either.
func (v *View) Rebuild(conns []sockdiag.Connection) {
	fresh := make(map[uint32]*connection, len(conns))
	now := v.now()
	for _, sc := range conns {
		if sc.Fallback || sc.ServerSide {
			continue
		}
		c := fromDiag(sc)
		c.Since = now
		fresh[sc.Token] = c
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	defer v.notify()
	v.conns = fresh
	v.complete = true
	v.reason = ""
	v.rebuilds++
	v.notifyJoins()
}

// fromDiag is a connection as the socket diagnostics list it.
func fromDiag(sc sockdiag.Connection) *connection {
	c := newConnection(Connection{
		Token:       sc.Token,
		Local:       unmap(sc.Local),
		Remote:      unmap(sc.Remote),
		ServerSide:  sc.ServerSide,
		Established: slices.Contains(pastHandshake, sc.State),
	})
	for _, s := range sc.Subflows {
		sf := Subflow{Local: unmap(s.Local), Remote: unmap(s.Remote), LocalID: s.LocalID, RemoteID: s.RemoteID,
			Initial: s.Initial, Backup: s.Backup, IfIndex: s.IfIndex}
		c.subflows[sf.key()] = sf
	}
	return c
}

// pastHandshake are the states of an MPTCP socket that has been
// established.
var pastHandshake = []sockdiag.State{
	sockdiag.StateEstablished, sockdiag.StateFinWait1, sockdiag.StateFinWait2,
	sockdiag.StateCloseWait, sockdiag.StateClosing, sockdiag.StateLastAck,
}

// Counts returns how many connections and subflows the view holds,
// without copying it (for a status line on a busy server).
func (v *View) Counts() (connections, subflows int) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, c := range v.conns {
		subflows += len(c.subflows)
	}
	return len(v.conns), subflows
}

// Snapshot returns a copy of the view.
func (v *View) Snapshot() Snapshot {
	v.mu.RLock()
	defer v.mu.RUnlock()
	s := Snapshot{
		Connections:      make([]Connection, 0, len(v.conns)),
		Listeners:        []netip.AddrPort{},
		Complete:         v.complete,
		IncompleteReason: v.reason,
		Events:           v.events,
		Losses:           v.losses,
		Rebuilds:         v.rebuilds,
	}
	for _, c := range v.conns {
		s.Connections = append(s.Connections, c.snapshot())
	}
	slices.SortFunc(s.Connections, func(a, b Connection) int { return cmp.Compare(a.Token, b.Token) })
	return s
}

// SnapshotWith returns the view completed with what the kernel's socket
// diagnostics list now: conns and listeners. Every connection of conns is
// in it, as listed (connections that fell back to TCP left out); those the
// view follows keep what only events tell (when established, the peer's
// announcements, failed joins, the peer's refusal of joins to its initial
// address). Connections the view has and conns does not have are gone, or
// not listed yet, and left out.
func (v *View) SnapshotWith(conns []sockdiag.Connection, listeners []netip.AddrPort) Snapshot {
	s := v.Snapshot()
	followed := make(map[uint32]Connection, len(s.Connections))
	for _, c := range s.Connections {
		followed[c.Token] = c
	}
	s.Connections = s.Connections[:0]
	for _, sc := range conns {
		if sc.Fallback {
			continue
		}
		c := fromDiag(sc).snapshot()
		if f, ok := followed[sc.Token]; ok {
			f.Local, f.Remote, f.Subflows, f.Established = c.Local, c.Remote, c.Subflows, c.Established
			c = f
		}
		s.Connections = append(s.Connections, c)
	}
	slices.SortFunc(s.Connections, func(a, b Connection) int { return cmp.Compare(a.Token, b.Token) })
	s.Listeners = slices.Clone(listeners)
	slices.SortFunc(s.Listeners, netip.AddrPort.Compare)
	return s
}

func (s Subflow) key() subflowKey { return subflowKey{s.Local, s.Remote} }

// compareSubflows orders subflows as sockdiag does.
func compareSubflows(a, b Subflow) int { return sockdiag.CompareSubflows(a.diag(), b.diag()) }

// diag is the subflow in sockdiag's terms.
func (s Subflow) diag() sockdiag.Subflow {
	return sockdiag.Subflow{Local: s.Local, Remote: s.Remote, LocalID: s.LocalID, RemoteID: s.RemoteID,
		Initial: s.Initial, Backup: s.Backup, IfIndex: s.IfIndex}
}

// unmap turns an IPv4-mapped address into the IPv4 one; IPv6 sockets report
// IPv4 peers that way.
func unmap(ap netip.AddrPort) netip.AddrPort {
	if !ap.Addr().IsValid() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func side(serverSide bool) string {
	if serverSide {
		return "server"
	}
	return "client"
}

func priority(backup bool) string {
	if backup {
		return "now a backup"
	}
	return "no longer a backup"
}

// describe is "LOCAL -> REMOTE (ids L/R, ifindex N, backup)".
func describeSubflow(sf Subflow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s -> %s (ids %d/%d", sf.Local, sf.Remote, sf.LocalID, sf.RemoteID)
	if sf.IfIndex != 0 {
		fmt.Fprintf(&b, ", ifindex %d", sf.IfIndex)
	}
	if sf.Backup {
		b.WriteString(", backup")
	}
	b.WriteString(")")
	return b.String()
}

// announcedAddr is an announced address, with its port if it has one.
func announcedAddr(ap netip.AddrPort) string {
	if ap.Port() == 0 {
		return ap.Addr().String()
	}
	return ap.String()
}

// subflowError is the socket error a subflow event carries, if any.
func subflowError(ev netlinkmptcp.Event) string {
	if ev.Error == 0 {
		return ""
	}
	return fmt.Sprintf(", socket error %q", ev.Error.Error())
}

// closeCause says why a subflow closed: the TCP reset's MPTCP reason and
// the socket error, where the event has them.
func closeCause(ev netlinkmptcp.Event) string {
	var parts []string
	if ev.ResetReason != 0 || ev.ResetFlags != 0 {
		p := fmt.Sprintf("reset, reason %d (%s)", ev.ResetReason, resetReason(ev.ResetReason))
		if ev.ResetFlags&resetTransient != 0 {
			p += ", transient"
		}
		parts = append(parts, p)
	}
	if ev.Error != 0 {
		parts = append(parts, fmt.Sprintf("socket error %q", ev.Error.Error()))
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}

// resetTransient is the RESET_FLAGS bit of a transient reset (MP_TCPRST T).
const resetTransient = 1

// resetReasons are the MP_TCPRST reason codes (RFC 8684, MPTCP_RST_*).
var resetReasons = []string{
	"unspecified",
	"MPTCP-specific error",
	"lack of resources",
	"administratively prohibited",
	"too much outstanding data",
	"unacceptable performance",
	"middlebox interference",
}

func resetReason(code uint32) string {
	if int(code) < len(resetReasons) {
		return resetReasons[code]
	}
	return "unknown"
}
