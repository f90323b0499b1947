package connview

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

// snapshot copies the connection with its subflows, announced addresses and
// failed joins in order.
func (c *connection) snapshot() Connection {
	out := c.Connection
	out.Subflows = make([]Subflow, 0, len(c.subflows))
	for _, t := range c.subflows {
		out.Subflows = append(out.Subflows, t.Subflow)
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
		c := fromDiag(sc, 0).snapshot()
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
