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
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
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
	// recheck asks Follow to prune the view against the kernel (Recheck).
	recheck chan struct{}
	// following is closed by Follow after its first read (Following).
	following     chan struct{}
	followingOnce sync.Once
}

// connection is a Connection with its subflows and announced addresses
// kept for updates. A connection has a few subflows at most, so they are a
// slice searched in order: a map of them per connection, allocated for
// every connection a busy host opens, made up most of the daemon's CPU per
// connection (the allocations, and the collections and page returns that
// the small heap limit then asks for). The maps are made on first use:
// most connections never see an announcement or a failed join.
type connection struct {
	Connection
	subflows  []trackedSubflow
	peerAddrs map[uint8]netip.AddrPort
	failed    map[netip.Addr]FailedJoin
	// seq is the view's event count when the connection came into it
	// (Prune).
	seq uint64
}

// trackedSubflow is a subflow with the view's event count when it came
// into the view (Prune).
type trackedSubflow struct {
	Subflow
	added uint64
}

// subflowIndex is the index of the subflow with key in c.subflows, -1 if
// c has none.
func (c *connection) subflowIndex(key subflowKey) int {
	return slices.IndexFunc(c.subflows, func(t trackedSubflow) bool { return t.key() == key })
}

// subflowSlot returns the view's entry for the subflow with key, or a new
// zero one appended for it (known false). The pointer is good until the
// next change of c.subflows.
func (c *connection) subflowSlot(key subflowKey) (t *trackedSubflow, known bool) {
	if i := c.subflowIndex(key); i >= 0 {
		return &c.subflows[i], true
	}
	c.subflows = append(c.subflows, trackedSubflow{})
	return &c.subflows[len(c.subflows)-1], false
}

// dropSubflow removes the subflow with key and returns it, if c has it.
func (c *connection) dropSubflow(key subflowKey) (Subflow, bool) {
	i := c.subflowIndex(key)
	if i < 0 {
		return Subflow{}, false
	}
	sf := c.subflows[i].Subflow
	c.subflows = slices.Delete(c.subflows, i, i+1)
	return sf, true
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
		recheck:    make(chan struct{}, 1),
		following:  make(chan struct{}),
	}
}

// Following is closed once Follow has read the connections that already
// existed (or failed to) and applies events: a connection opened after
// that comes into the view by its events, with each of its joins
// (JoinObserver). Before it, a connection can come in by the read, its
// joins included, and those joins are not observed. The daemon tells
// systemd it is ready only after this.
func (v *View) Following() <-chan struct{} { return v.following }

func (v *View) markFollowing() { v.followingOnce.Do(func() { close(v.following) }) }

// Recheck asks Follow to check the view against the kernel's socket
// diagnostics and drop what the kernel closed without an event (Prune); a
// change is signalled like any other. It does not block: a recheck already
// asked for covers this one.
func (v *View) Recheck() {
	select {
	case v.recheck <- struct{}{}:
	default:
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
