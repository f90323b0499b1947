package rtnl

import (
	"context"
	"encoding/binary"
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
	buf       []byte
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
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: cfg.NetNS})
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
	return &Watcher{c: c, filter: cfg.Filter, ignorePID: ignorePID, buf: make([]byte, 64<<10)}, nil
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
// updates worth keeping of every notification queued by then, so that a
// burst is decided on at once. An overflow returns ErrOverflow, with what
// was read before it; the watcher stays usable. Messages that cannot be
// decoded are counted in skipped.
func (w *Watcher) Receive(ctx context.Context) (updates []netstate.Update, skipped int, err error) {
	rc, err := w.c.SyscallConn()
	if err != nil {
		return nil, 0, fmt.Errorf("receive rtnetlink notifications: %w", err)
	}
	if err := w.c.SetReadDeadline(time.Time{}); err != nil {
		return nil, 0, fmt.Errorf("receive rtnetlink notifications: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = w.c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	read := 0
	var recvErr error
	rerr := rc.Read(func(fd uintptr) bool {
		for read < maxDrain {
			n, _, err := unix.Recvfrom(int(fd), w.buf, unix.MSG_DONTWAIT)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return read > 0
			case err != nil:
				recvErr = err
				return true
			}
			read++
			skipped += w.datagram(w.buf[:n], &updates)
		}
		return true
	})
	switch {
	case recvErr != nil:
		return updates, skipped, nlerr.New("receive rtnetlink notifications", recvErr)
	case rerr != nil && ctx.Err() != nil:
		return nil, 0, ctx.Err()
	case rerr != nil:
		return updates, skipped, nlerr.New("receive rtnetlink notifications", rerr)
	}
	return updates, skipped, nil
}

// maxDrain bounds the datagrams one Receive takes in, so that a long
// storm is decided on while it lasts.
const maxDrain = 256

// datagram appends the updates worth keeping of one datagram's messages
// and returns how many could not be decoded.
func (w *Watcher) datagram(b []byte, updates *[]netstate.Update) (skipped int) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return skipped + 1
		}
		var m netlink.Message
		if err := m.UnmarshalBinary(b[:l]); err != nil {
			skipped++
		} else if w.ignorePID == 0 || m.Header.PID != w.ignorePID || !isRouteOrRule(m.Header.Type) {
			u, ok, err := w.filter.decode(m)
			switch {
			case err != nil:
				skipped++
			case ok:
				*updates = append(*updates, u)
			}
		}
		b = b[min((l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), len(b)):]
	}
	return skipped
}

func isRouteOrRule(t netlink.HeaderType) bool {
	switch t {
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE, unix.RTM_NEWRULE, unix.RTM_DELRULE:
		return true
	}
	return false
}
