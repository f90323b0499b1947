// Package rtnl is mptcpgd's rtnetlink I/O: it dumps links, addresses, routes
// and rules into a netstate.State, watches their changes, and writes the
// rules and routes of our source routing. Messages are encoded and decoded
// with github.com/jsimonetti/rtnetlink/v2 over github.com/mdlayher/netlink;
// each message is decoded on its own, so one the library cannot parse is
// skipped instead of failing a whole dump.
package rtnl

import (
	"fmt"
	"net"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/nlerr"
)

// Config says where to work and what to keep.
type Config struct {
	// NetNS is a network namespace fd to work in; 0 is the caller's.
	NetNS int
	// Filter selects the routes and rules kept.
	Filter Filter
}

// Conn makes rtnetlink requests: dumps and our route and rule writes.
type Conn struct {
	c      *netlink.Conn
	filter Filter
}

// Dial opens a request socket.
func Dial(cfg Config) (*Conn, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: cfg.NetNS, Strict: true})
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink socket: %w", err)
	}
	return &Conn{c: c, filter: cfg.Filter}, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return c.c.Close() }

// PID is the socket's netlink port id. The kernel stamps it on the
// notifications our own writes cause, so a watcher can tell them apart.
func (c *Conn) PID() uint32 { return c.c.PID() }

// Dump reads links, addresses, kept routes and kept rules. Messages that
// cannot be decoded are counted in skipped, not fatal.
func (c *Conn) Dump() (s netstate.State, skipped int, err error) {
	s = netstate.New()
	requests := []struct {
		what string
		typ  netlink.HeaderType
		msg  rtnetlink.Message
	}{
		{"links", unix.RTM_GETLINK, &rtnetlink.LinkMessage{}},
		{"addresses", unix.RTM_GETADDR, &rtnetlink.AddressMessage{}},
		{"routes", unix.RTM_GETROUTE, &rtnetlink.RouteMessage{}},
		{"rules", unix.RTM_GETRULE, &rtnetlink.RuleMessage{}},
	}
	for _, r := range requests {
		body, err := r.msg.MarshalBinary()
		if err != nil {
			return s, skipped, fmt.Errorf("dump %s: %w", r.what, err)
		}
		msgs, err := c.c.Execute(netlink.Message{
			Header: netlink.Header{Type: r.typ, Flags: netlink.Request | netlink.Dump},
			Data:   body,
		})
		if err != nil {
			return s, skipped, fmt.Errorf("dump %s: %w", r.what, err)
		}
		for _, m := range msgs {
			u, ok, err := c.filter.decode(m)
			if err != nil {
				skipped++
				continue
			}
			if ok {
				s.Apply(u)
			}
		}
	}
	return s, skipped, nil
}

func (c *Conn) write(op string, typ netlink.HeaderType, flags netlink.HeaderFlags, m rtnetlink.Message) error {
	body, err := m.MarshalBinary()
	if err != nil {
		return nlerr.New(op, err)
	}
	_, err = c.c.Execute(netlink.Message{
		Header: netlink.Header{Type: typ, Flags: netlink.Request | netlink.Acknowledge | flags},
		Data:   body,
	})
	if err != nil {
		return nlerr.New(op, err)
	}
	return nil
}

// Write errors are *nlerr.Error: errors.Is(err, nlerr.ErrExists) for an add
// of something that exists, nlerr.ErrNotFound (and os.ErrNotExist) for a
// delete of something already gone.

// AddRule adds `from SRC lookup TABLE priority P proto PROTO`. An identical
// rule is an error matching nlerr.ErrExists.
func (c *Conn) AddRule(r netstate.Rule) error {
	return c.write("add rule "+r.String(), unix.RTM_NEWRULE, netlink.Create|netlink.Excl, ruleMessage(r))
}

// DeleteRule deletes the rule; the kernel matches the protocol too, so a
// rule that is not ours is never hit. A missing rule matches
// nlerr.ErrNotFound.
func (c *Conn) DeleteRule(r netstate.Rule) error {
	return c.write("delete rule "+r.String(), unix.RTM_DELRULE, 0, ruleMessage(r))
}

// AddRoute adds a route; a route with the same table, destination and
// metric is an error matching nlerr.ErrExists, whoever owns it.
func (c *Conn) AddRoute(r netstate.Route) error {
	return c.write("add route "+r.String(), unix.RTM_NEWROUTE, netlink.Create|netlink.Excl, routeMessage(r))
}

// ReplaceRoute replaces the route with the same table, destination and
// metric in one step (a gateway change without a gap).
func (c *Conn) ReplaceRoute(r netstate.Route) error {
	return c.write("replace route "+r.String(), unix.RTM_NEWROUTE, netlink.Create|netlink.Replace, routeMessage(r))
}

// DeleteRoute deletes the route if it carries r.Protocol. A missing route
// matches nlerr.ErrNotFound.
func (c *Conn) DeleteRoute(r netstate.Route) error {
	return c.write("delete route "+r.String(), unix.RTM_DELROUTE, 0, routeMessage(r))
}

func ruleMessage(r netstate.Rule) *rtnetlink.RuleMessage {
	const actionToTable = 1 // FR_ACT_TO_TBL
	src := net.IP(r.Src.Addr().AsSlice())
	table, prio, proto := r.Table, r.Priority, r.Protocol
	return &rtnetlink.RuleMessage{
		Family:    family(r.Src.Addr()),
		SrcLength: uint8(r.Src.Bits()),
		Table:     tableByte(table),
		Action:    actionToTable,
		Attributes: &rtnetlink.RuleAttributes{
			Src:      &src,
			Table:    &table,
			Priority: &prio,
			Protocol: &proto,
		},
	}
}

func routeMessage(r netstate.Route) *rtnetlink.RouteMessage {
	m := &rtnetlink.RouteMessage{
		Family:    family(r.Dst.Addr()),
		DstLength: uint8(r.Dst.Bits()),
		Table:     tableByte(r.Table),
		Protocol:  r.Protocol,
		Scope:     r.Scope,
		Type:      r.Type,
		Attributes: rtnetlink.RouteAttributes{
			Table:    r.Table,
			Priority: r.Priority,
		},
	}
	if r.Dst.Bits() > 0 {
		m.Attributes.Dst = net.IP(r.Dst.Addr().AsSlice())
	}
	if len(r.NextHops) > 0 {
		nh := r.NextHops[0]
		m.Attributes.OutIface = uint32(nh.IfIndex)
		if nh.Gateway.IsValid() {
			m.Attributes.Gateway = net.IP(nh.Gateway.AsSlice())
		}
		if nh.OnLink {
			m.Flags |= unix.RTNH_F_ONLINK
		}
	}
	return m
}

// tableByte is the header's 8-bit table field: tables above 255 exist only
// in the 32-bit attribute, with RT_TABLE_UNSPEC in the header.
func tableByte(t uint32) uint8 {
	if t > 255 {
		return 0
	}
	return uint8(t)
}
