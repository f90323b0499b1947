package connview

import (
	"net/netip"
	"slices"

	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

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
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, sc := range conns {
		if sc.Fallback || sc.ServerSide {
			continue
		}
		c := fromDiag(sc, v.events)
		c.Since = now
		fresh[sc.Token] = c
	}
	defer v.notify()
	v.conns = fresh
	v.complete = true
	v.reason = ""
	v.rebuilds++
	v.notifyJoins()
}

// fromDiag is a connection as the socket diagnostics list it, read when
// the view had applied seq events.
func fromDiag(sc sockdiag.Connection, seq uint64) *connection {
	c := &connection{Connection: Connection{
		Token:       sc.Token,
		Local:       unmap(sc.Local),
		Remote:      unmap(sc.Remote),
		ServerSide:  sc.ServerSide,
		Established: slices.Contains(pastHandshake, sc.State),
	}}
	for _, s := range sc.Subflows {
		sf := Subflow{Local: unmap(s.Local), Remote: unmap(s.Remote), LocalID: s.LocalID, RemoteID: s.RemoteID,
			Initial: s.Initial, Backup: s.Backup, IfIndex: s.IfIndex}
		t, _ := c.subflowSlot(sf.key())
		t.Subflow, t.added = sf, seq
	}
	c.seq = seq
	return c
}

// Seq is the number of events the view has applied: what Prune compares.
func (v *View) Seq() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.events
}

// Prune drops what the view holds but the kernel no longer has: the
// subflows, and connections, that came into the view by the time it had
// applied seq events (Seq, read before conns were listed) and that conns,
// the socket diagnostics, do not list. The kernel closes subflows without
// an event when their connection is no longer established (a program that
// keeps a finished connection's socket open): such a subflow would look
// like a working one for ever. What came later is kept: conns may predate
// it. It returns how many subflows and connections it dropped.
func (v *View) Prune(conns []sockdiag.Connection, seq uint64) int {
	listed := make(map[uint32]map[subflowKey]bool, len(conns))
	for _, sc := range conns {
		sfs := map[subflowKey]bool{}
		for _, s := range sc.Subflows {
			sfs[subflowKey{unmap(s.Local), unmap(s.Remote)}] = true
		}
		listed[sc.Token] = sfs
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	dropped := 0
	for token, c := range v.conns {
		sfs, ok := listed[token]
		if !ok {
			if c.seq <= seq {
				delete(v.conns, token)
				dropped++
			}
			continue
		}
		before := len(c.subflows)
		c.subflows = slices.DeleteFunc(c.subflows, func(t trackedSubflow) bool { return !sfs[t.key()] && t.added <= seq })
		dropped += before - len(c.subflows)
	}
	if dropped > 0 {
		v.notify()
		v.notifyJoins()
	}
	return dropped
}

// pastHandshake are the states of an MPTCP socket that has been
// established.
var pastHandshake = []sockdiag.State{
	sockdiag.StateEstablished, sockdiag.StateFinWait1, sockdiag.StateFinWait2,
	sockdiag.StateCloseWait, sockdiag.StateClosing, sockdiag.StateLastAck,
}

// unmap turns an IPv4-mapped address into the IPv4 one; IPv6 sockets report
// IPv4 peers that way.
func unmap(ap netip.AddrPort) netip.AddrPort {
	if !ap.Addr().IsValid() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
