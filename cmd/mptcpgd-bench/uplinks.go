package main

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/jsimonetti/rtnetlink/v2"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// uplinkLab is a client namespace whose devices eth1, eth2, ... are veth
// pairs to a peer namespace (p1, p2, ...), which gives them carrier.
type uplinkLab struct {
	client, peer *lab.NS
	links        []uplink
	// peerRT is an rtnetlink socket in the peer namespace, for cable
	// pulls.
	peerRT *rtnetlink.Conn
}

type uplink struct {
	dev, peerDev       string
	ifindex, peerIndex int
	// addr is the client's address on the link (invalid: none), gw the
	// gateway of its default route.
	addr netip.Prefix
	gw   netip.Addr
}

func newUplinkLab(s *lab.Scope, n int) *uplinkLab {
	l := &uplinkLab{client: lab.New(s, "client"), peer: lab.New(s, "peer")}
	l.peerRT = routeConn(s, l.peer)
	padIfindex(l.peer)
	for i := 1; i <= n; i++ {
		u := uplink{dev: fmt.Sprintf("eth%d", i), peerDev: fmt.Sprintf("p%d", i)}
		lab.Veth(l.client, u.dev, l.peer, u.peerDev)
		u.ifindex = ifindex(s, l.client, u.dev)
		u.peerIndex = ifindex(s, l.peer, u.peerDev)
		l.links = append(l.links, u)
	}
	return l
}

// newReactionLab is one uplink, eth1, that has its gateway: a default
// route via 192.0.2.1. Its only address, 192.0.2.2/24, has scope host,
// which both daemons skip (as loopback): it keeps IPv4, and with it the
// gateway's routes, on eth1 when the last measured address goes, while the
// endpoint table holds only the addresses the bench adds (8 fit). So every
// address the bench adds appears on an interface that already has its
// gateway: mptcpgd's fast path, with no wait for a route.
func newReactionLab(s *lab.Scope) *uplinkLab {
	l := newUplinkLab(s, 1)
	l.links[0].gw = netip.MustParseAddr("192.0.2.1")
	l.peer.IP("addr", "add", "192.0.2.1/24", "dev", "p1")
	l.client.IP("addr", "add", "192.0.2.2/24", "dev", "eth1", "scope", "host")
	l.client.IP("route", "add", "default", "via", "192.0.2.1", "dev", "eth1", "proto", "static")
	return l
}

// newCarrierLab is n uplinks, each with an address 198.18.(100+i).2/24 and
// a default route via .1 at metric 100+i, as DHCP would set them up.
func newCarrierLab(s *lab.Scope, n int) *uplinkLab {
	l := newUplinkLab(s, n)
	for i := range l.links {
		u := &l.links[i]
		net := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(101 + i), 0}), 24)
		u.addr = netip.PrefixFrom(lab.HostIn(net, 2), 24)
		u.gw = lab.HostIn(net, 1)
		l.peer.IP("addr", "add", netip.PrefixFrom(u.gw, 24).String(), "dev", u.peerDev)
		l.client.IP("addr", "add", u.addr.String(), "dev", u.dev)
		l.client.IP("route", "add", "default", "via", u.gw.String(), "dev", u.dev, "proto", "dhcp", "metric", strconv.Itoa(101+i))
	}
	return l
}

// padIfindex adds two spare devices to a namespace that will hold the peer
// ends of veth pairs, so that no peer end has its client end's ifindex.
// The kernel reports a veth's carrier change at once ("urgent") when the
// peer's ifindex differs from its own; when they are equal it batches it
// in linkwatch, at most one batch a second host-wide, which would spread
// a few carrier changes over seconds. A physical NIC's carrier-on is
// urgent too (its qdisc waits for it); the bench measures the daemons, not
// that rate limit.
func padIfindex(ns *lab.NS) {
	ns.IP("link", "add", "pad0", "type", "veth", "peer", "name", "pad1")
}

// linkOf is the uplink whose address is p.
func (l *uplinkLab) linkOf(p netip.Prefix) uplink {
	for _, u := range l.links {
		if u.addr == p {
			return u
		}
	}
	return uplink{}
}
