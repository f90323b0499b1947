package connview

import (
	"fmt"
	"net/netip"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

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
		t, known := c.subflowSlot(initial.key())
		if known {
			initial.Backup, initial.IfIndex = t.Backup, t.IfIndex
		}
		t.Subflow, t.added = initial, v.events
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
		if c.peerAddrs == nil {
			c.peerAddrs = map[uint8]netip.AddrPort{}
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
		t, known := c.subflowSlot(sf.key())
		sf.Initial = t.Initial
		t.Subflow = sf
		if !known {
			t.added = v.events
		}
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
		sf, ok := c.dropSubflow(key)
		if !ok {
			sf = Subflow{Local: local, Remote: remote, LocalID: ev.LocalID, RemoteID: ev.RemoteID, IfIndex: int(ev.IfIndex)}
		}
		if ev.Error != 0 {
			if c.failed == nil {
				c.failed = map[netip.Addr]FailedJoin{}
			}
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
	c = &connection{Connection: Connection{Token: token, Partial: partial, Established: partial}}
	c.seq = v.events
	v.conns[token] = c
	return c, say(describe, func() string { return fmt.Sprintf(" (connection %08x was not in the view: added)", token) }), true
}
