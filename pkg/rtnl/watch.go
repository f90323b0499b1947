package rtnl

import (
	"context"
	"fmt"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/nlerr"
)

// ErrOverflow means the kernel dropped notifications because the socket's
// receive buffer was full: the watcher's view is incomplete and the caller
// must dump again.
var ErrOverflow = nlerr.ErrLost

// Watcher receives link, address, route and rule notifications.
type Watcher struct {
	c         *netlink.Conn
	filter    Filter
	ignorePID uint32
}

// groups are the rtnetlink multicast groups we listen to (RTNLGRP_*).
var groups = []uint32{
	unix.RTNLGRP_LINK,
	unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR,
	unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE,
	unix.RTNLGRP_IPV4_RULE, unix.RTNLGRP_IPV6_RULE,
}

// Watch opens a notification socket. Route and rule notifications caused by
// requests from port ignorePID (our own writer, see Conn.PID) are dropped:
// the writer already knows what it did, and a late echo of an old write
// could otherwise undo a newer one in the caller's view.
func Watch(cfg Config, ignorePID uint32) (*Watcher, error) {
	// Notifications are small: a reused buffer saves the peek that sizes
	// each read.
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: cfg.NetNS, MessageBufferSize: 64 << 10})
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink notification socket: %w", err)
	}
	// Link flaps and DHCP storms come in bursts; a roomy buffer makes
	// overflows (and the full dumps they force) rare.
	_ = c.SetReadBuffer(4 << 20)
	for _, g := range groups {
		if err := c.JoinGroup(g); err != nil {
			c.Close()
			return nil, fmt.Errorf("join rtnetlink group %d: %w", g, err)
		}
	}
	return &Watcher{c: c, filter: cfg.Filter, ignorePID: ignorePID}, nil
}

// Close closes the socket.
func (w *Watcher) Close() error { return w.c.Close() }

// WatchNeighbours joins or leaves the neighbour group: every neighbour on
// the host changes often, so we listen only while we wait for a gateway.
func (w *Watcher) WatchNeighbours(on bool) error {
	if on {
		if err := w.c.JoinGroup(unix.RTNLGRP_NEIGH); err != nil {
			return fmt.Errorf("join rtnetlink neighbour group: %w", err)
		}
		return nil
	}
	if err := w.c.LeaveGroup(unix.RTNLGRP_NEIGH); err != nil {
		return fmt.Errorf("leave rtnetlink neighbour group: %w", err)
	}
	return nil
}

// Receive blocks until notifications arrive or ctx is done, and returns the
// updates worth keeping. An overflow returns ErrOverflow; the watcher stays
// usable. Messages that cannot be decoded are counted in skipped.
func (w *Watcher) Receive(ctx context.Context) (updates []netstate.Update, skipped int, err error) {
	if err := w.c.SetReadDeadline(time.Time{}); err != nil {
		return nil, 0, fmt.Errorf("receive rtnetlink notifications: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = w.c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	msgs, err := w.c.Receive()
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		return nil, 0, nlerr.New("receive rtnetlink notifications", err)
	}
	for _, m := range msgs {
		if w.ignorePID != 0 && m.Header.PID == w.ignorePID && isRouteOrRule(m.Header.Type) {
			continue
		}
		u, ok, err := w.filter.decode(m)
		if err != nil {
			skipped++
			continue
		}
		if ok {
			updates = append(updates, u)
		}
	}
	return updates, skipped, nil
}

func isRouteOrRule(t netlink.HeaderType) bool {
	switch t {
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE, unix.RTM_NEWRULE, unix.RTM_DELRULE:
		return true
	}
	return false
}
