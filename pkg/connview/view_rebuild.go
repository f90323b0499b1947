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

// unmap turns an IPv4-mapped address into the IPv4 one; IPv6 sockets report
// IPv4 peers that way.
func unmap(ap netip.AddrPort) netip.AddrPort {
	if !ap.Addr().IsValid() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
