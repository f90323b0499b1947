package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/nlerr"
	"github.com/mptcpgd/mptcpgd/pkg/rtnl"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
)

// ourProto is mptcpgd's default route and rule protocol; the floor's
// writes carry it too, so that the same watcher sees both.
const ourProto = 177

// routing is mptcpgd's default [routing] section, which the floor copies.
var routing = srcroute.Settings{TableBase: 10000, RulePriority: 10000, Protocol: ourProto}

// mptcpClient opens a generic-netlink socket for mptcp_pm in ns, closed
// with s.
func mptcpClient(s *lab.Scope, ns *lab.NS) *netlinkmptcp.Client {
	c, err := netlinkmptcp.Dial(&netlinkmptcp.Config{NetNS: ns.FD()})
	if err != nil {
		s.Fatalf("mptcp_pm socket in %s: %v", ns.Name, err)
	}
	s.Cleanup(func() { c.Close() })
	return c
}

// routeConn opens an rtnetlink socket in ns for addresses and links.
func routeConn(s *lab.Scope, ns *lab.NS) *rtnetlink.Conn {
	c, err := rtnetlink.Dial(&netlink.Config{NetNS: ns.FD()})
	if err != nil {
		s.Fatalf("rtnetlink socket in %s: %v", ns.Name, err)
	}
	s.Cleanup(func() { c.Close() })
	return c
}

// routingConn opens pkg/rtnl's socket in ns for rule and route writes.
func routingConn(s *lab.Scope, ns *lab.NS) *rtnl.Conn {
	c, err := rtnl.Dial(rtnl.Config{NetNS: ns.FD(), Filter: rtnl.Filter{Protocols: []uint8{ourProto}}})
	if err != nil {
		s.Fatalf("rtnl socket in %s: %v", ns.Name, err)
	}
	s.Cleanup(func() { c.Close() })
	return c
}

// ifindex looks up a device of ns by name.
func ifindex(s *lab.Scope, ns *lab.NS, dev string) int {
	var idx int
	if err := ns.Do(func() error {
		i, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		idx = i.Index
		return nil
	}); err != nil {
		s.Fatalf("ifindex of %s in %s: %v", dev, ns.Name, err)
	}
	return idx
}

// addrMessage is an RTM_NEWADDR/DELADDR body for p on ifindex; IPv6
// addresses skip duplicate address detection.
func addrMessage(ifindex int, p netip.Prefix) *rtnetlink.AddressMessage {
	ip := net.IP(p.Addr().AsSlice())
	m := &rtnetlink.AddressMessage{
		Family:       unix.AF_INET,
		PrefixLength: uint8(p.Bits()),
		Index:        uint32(ifindex),
		Attributes:   &rtnetlink.AddressAttributes{Address: ip, Local: ip},
	}
	if p.Addr().Is6() {
		m.Family = unix.AF_INET6
		m.Attributes.Local = nil
		m.Attributes.Flags = unix.IFA_F_NODAD
	}
	return m
}

func addAddr(c *rtnetlink.Conn, ifindex int, p netip.Prefix) error {
	if err := c.Address.New(addrMessage(ifindex, p)); err != nil {
		return fmt.Errorf("add address %s on ifindex %d: %w", p, ifindex, err)
	}
	return nil
}

func delAddr(c *rtnetlink.Conn, ifindex int, p netip.Prefix) error {
	if err := c.Address.Delete(addrMessage(ifindex, p)); err != nil {
		return fmt.Errorf("delete address %s on ifindex %d: %w", p, ifindex, err)
	}
	return nil
}

// setLinkUp sets a device administratively up or down, as `ip link set`.
func setLinkUp(c *rtnetlink.Conn, ifindex int, up bool) error {
	var flags uint32
	if up {
		flags = unix.IFF_UP
	}
	if err := c.Link.Set(&rtnetlink.LinkMessage{Index: uint32(ifindex), Flags: flags, Change: unix.IFF_UP}); err != nil {
		return fmt.Errorf("set ifindex %d up=%t: %w", ifindex, up, err)
	}
	return nil
}

// poller watches the endpoint table with GET_ADDR dumps in a tight loop:
// the kernel has no endpoint notifications. It keeps what its dumps took.
type poller struct {
	c     *netlinkmptcp.Client
	dumps sample
}

// until dumps until cond holds and returns when the dump that showed it
// returned: the detection is late by at most one dump. Between dumps it
// yields its thread, so that the bench's other goroutines (the floor's
// writers) are not held up behind it.
func (p *poller) until(timeout time.Duration, what string, cond func([]netlinkmptcp.Endpoint) bool) (time.Time, []netlinkmptcp.Endpoint, error) {
	deadline := time.Now().Add(timeout)
	for {
		start := time.Now()
		eps, err := p.c.Endpoints()
		now := time.Now()
		p.dumps = append(p.dumps, now.Sub(start))
		if err != nil {
			return now, nil, fmt.Errorf("%s: %w", what, err)
		}
		if cond(eps) {
			return now, eps, nil
		}
		if now.After(deadline) {
			return now, eps, fmt.Errorf("%s: not true after %v; endpoints: %v", what, timeout, eps)
		}
		runtime.Gosched()
	}
}

// hasAddrs says whether every address in want has an endpoint.
func hasAddrs(want ...netip.Addr) func([]netlinkmptcp.Endpoint) bool {
	return func(eps []netlinkmptcp.Endpoint) bool {
		n := 0
		for _, e := range eps {
			for _, a := range want {
				if e.Addr == a {
					n++
				}
			}
		}
		return n == len(want)
	}
}

// lacksAddrs says whether no address in gone has an endpoint.
func lacksAddrs(gone ...netip.Addr) func([]netlinkmptcp.Endpoint) bool {
	return func(eps []netlinkmptcp.Endpoint) bool {
		for _, e := range eps {
			for _, a := range gone {
				if e.Addr == a {
					return false
				}
			}
		}
		return true
	}
}

// change is one rtnetlink notification the watcher kept, stamped when it
// was read.
type change struct {
	at time.Time
	u  netstate.Update
}

// watcher reads rtnetlink notifications of one namespace on a goroutine
// and hands rule and link changes to channels.
type watcher struct {
	rules chan change
	links chan change
}

// watch starts a watcher in ns until s closes. Rules are kept only with
// mptcpgd's protocol (the floor writes it too).
func watch(s *lab.Scope, ns *lab.NS) *watcher {
	w, err := rtnl.Watch(rtnl.Config{NetNS: ns.FD(), Filter: rtnl.Filter{Protocols: []uint8{ourProto}}}, 0)
	if err != nil {
		s.Fatalf("watch rtnetlink in %s: %v", ns.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.Cleanup(func() {
		cancel()
		<-done
		w.Close()
	})
	out := &watcher{rules: make(chan change, 4096), links: make(chan change, 4096)}
	go func() {
		defer close(done)
		for {
			updates, _, err := w.Receive(ctx)
			now := time.Now()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: watching %s: %v\n", ns.Name, err)
				if !errors.Is(err, rtnl.ErrOverflow) {
					return
				}
				continue
			}
			for _, u := range updates {
				switch u.Kind {
				case netstate.RuleUpdate:
					select {
					case out.rules <- change{now, u}:
					case <-ctx.Done():
						return
					}
				case netstate.LinkUpdate:
					select {
					case out.links <- change{now, u}:
					default: // nobody follows links in this measurement
					}
				}
			}
		}
	}()
	return out
}

// drain forgets the rule changes seen so far.
func (w *watcher) drain() {
	for {
		select {
		case <-w.rules:
		default:
			return
		}
	}
}

// waitRules waits until a rule from every address in addrs was added (or
// deleted) and returns when the last of them was seen.
func (w *watcher) waitRules(addrs []netip.Addr, deleted bool, timeout time.Duration) (time.Time, error) {
	pending := map[netip.Addr]bool{}
	for _, a := range addrs {
		pending[a] = true
	}
	var last time.Time
	deadline := time.After(timeout)
	for len(pending) > 0 {
		select {
		case c := <-w.rules:
			a := c.u.Rule.Src.Addr()
			if c.u.Deleted == deleted && pending[a] {
				delete(pending, a)
				last = c.at
			}
		case <-deadline:
			verb := "added"
			if deleted {
				verb = "deleted"
			}
			return last, fmt.Errorf("rules from %d of %d addresses not %s after %v", len(pending), len(addrs), verb, timeout)
		}
	}
	return last, nil
}

// routesFor are the rule and routes mptcpgd writes for address p on
// ifindex with gateway gw: what the floor writes.
func routesFor(ifindex int, p netip.Prefix, gw netip.Addr) (netstate.Rule, []netstate.Route) {
	table := routing.Table(ifindex)
	a := p.Addr()
	rule := netstate.Rule{Priority: routing.RulePriority, Src: netip.PrefixFrom(a, a.BitLen()), Table: table, Protocol: ourProto}
	def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if a.Is6() {
		def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	routes := []netstate.Route{
		{Table: table, Protocol: ourProto, Type: netstate.RouteTypeUnicast, Scope: netstate.ScopeLink,
			Dst: p.Masked(), Priority: srcroute.RouteMetric, NextHops: []netstate.NextHop{{IfIndex: ifindex}}},
		{Table: table, Protocol: ourProto, Type: netstate.RouteTypeUnicast,
			Dst: def, Priority: srcroute.RouteMetric, NextHops: []netstate.NextHop{{Gateway: gw, IfIndex: ifindex}}},
	}
	return rule, routes
}

// writeRouting adds (or deletes) a rule and its routes as mptcpgd would:
// the rule last on the way in, first on the way out. Missing objects on the
// way out are fine (the kernel drops routes with their address).
func writeRouting(c *rtnl.Conn, rule netstate.Rule, routes []netstate.Route, add bool) error {
	if add {
		for _, r := range routes {
			if err := c.AddRoute(r); err != nil && !errors.Is(err, nlerr.ErrExists) {
				return err
			}
		}
		return c.AddRule(rule)
	}
	if err := c.DeleteRule(rule); err != nil && !errors.Is(err, nlerr.ErrNotFound) {
		return err
	}
	for _, r := range routes {
		if err := c.DeleteRoute(r); err != nil && !errors.Is(err, nlerr.ErrNotFound) {
			return err
		}
	}
	return nil
}
