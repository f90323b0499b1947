package srcroute

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgd/mptcpgd/pkg/netstate"
)

var set = Settings{TableBase: 10000, RulePriority: 10000, Protocol: 177}

var (
	eth1 = netstate.Link{Index: 2, Name: "eth1", Flags: netstate.LinkUp | netstate.LinkRunning}
	eth2 = netstate.Link{Index: 3, Name: "eth2", Flags: netstate.LinkUp | netstate.LinkRunning}
	wwan = netstate.Link{Index: 4, Name: "wwan0", Flags: netstate.LinkUp | netstate.LinkRunning | netstate.LinkPointToPoint | netstate.LinkNoARP}
)

func addr(l netstate.Link, cidr string) netstate.Addr {
	p := netip.MustParsePrefix(cidr)
	return netstate.Addr{IfIndex: l.Index, Addr: p.Addr(), Prefix: p}
}

func src(l netstate.Link, cidr string) Source { return Source{Addr: addr(l, cidr), Link: l} }

func def(table uint32, proto uint8, metric uint32, gw string, l netstate.Link) netstate.Route {
	dst := netip.MustParsePrefix("0.0.0.0/0")
	if strings.Contains(gw, ":") {
		dst = netip.MustParsePrefix("::/0")
	}
	var g netip.Addr
	if gw != "" && gw != "::" && gw != "0.0.0.0" {
		g = netip.MustParseAddr(gw)
	}
	return netstate.Route{Table: table, Protocol: proto, Type: netstate.RouteTypeUnicast, Dst: dst, Priority: metric,
		NextHops: []netstate.NextHop{{Gateway: g, IfIndex: l.Index}}}
}

func network(routes ...netstate.Route) netstate.State {
	s := netstate.New()
	for _, l := range []netstate.Link{eth1, eth2, wwan} {
		s.Links[l.Index] = l
	}
	for _, r := range routes {
		s.Routes[r.Key()] = r
	}
	return s
}

func rule(a string, table uint32) netstate.Rule {
	ad := netip.MustParseAddr(a)
	return netstate.Rule{Priority: 10000, Src: netip.PrefixFrom(ad, ad.BitLen()), Table: table, Protocol: 177}
}

func connected(cidr string, l netstate.Link) netstate.Route {
	return netstate.Route{Table: set.Table(l.Index), Protocol: 177, Type: netstate.RouteTypeUnicast, Scope: netstate.ScopeLink,
		Dst: netip.MustParsePrefix(cidr), Priority: RouteMetric, NextHops: []netstate.NextHop{{IfIndex: l.Index}}}
}

func ours(gw string, l netstate.Link) netstate.Route {
	r := def(set.Table(l.Index), 177, RouteMetric, gw, l)
	if !r.NextHops[0].Gateway.IsValid() {
		r.Scope = netstate.ScopeLink
	}
	return r
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name       string
		sources    []Source
		net        netstate.State
		wantRules  []netstate.Rule
		wantRoutes []netstate.Route
		wantOrigin []GatewayOrigin
	}{
		{
			name:       "gateway learned from the interface's DHCP default route",
			sources:    []Source{src(eth2, "198.51.100.2/24")},
			net:        network(def(254, 16, 100, "192.0.2.1", eth1), def(254, 16, 200, "198.51.100.1", eth2)),
			wantRules:  []netstate.Rule{rule("198.51.100.2", 10003)},
			wantRoutes: []netstate.Route{connected("198.51.100.0/24", eth2), ours("198.51.100.1", eth2)},
			wantOrigin: []GatewayOrigin{GatewayLearned},
		},
		{
			name:       "configured gateway beats a learned one",
			sources:    []Source{{Addr: addr(eth2, "198.51.100.2/24"), Link: eth2, Gateway4: netip.MustParseAddr("198.51.100.254")}},
			net:        network(def(254, 16, 200, "198.51.100.1", eth2)),
			wantRules:  []netstate.Rule{rule("198.51.100.2", 10003)},
			wantRoutes: []netstate.Route{connected("198.51.100.0/24", eth2), ours("198.51.100.254", eth2)},
			wantOrigin: []GatewayOrigin{GatewayConfigured},
		},
		{
			name:    "main table preferred, then lower metric, any other table used",
			sources: []Source{src(eth2, "198.51.100.2/24")},
			net: network(def(100, 3, 1, "198.51.100.7", eth2), def(254, 16, 300, "198.51.100.3", eth2),
				def(254, 16, 200, "198.51.100.1", eth2)),
			wantRules:  []netstate.Rule{rule("198.51.100.2", 10003)},
			wantRoutes: []netstate.Route{connected("198.51.100.0/24", eth2), ours("198.51.100.1", eth2)},
			wantOrigin: []GatewayOrigin{GatewayLearned},
		},
		{
			name:       "our own default routes are never learned from",
			sources:    []Source{src(eth2, "198.51.100.2/24")},
			net:        network(def(10003, 177, RouteMetric, "198.51.100.9", eth2)),
			wantRules:  []netstate.Rule{rule("198.51.100.2", 10003)},
			wantRoutes: []netstate.Route{connected("198.51.100.0/24", eth2)},
			wantOrigin: []GatewayOrigin{GatewayNone},
		},
		{
			name:    "two NICs on one LAN share the other's gateway",
			sources: []Source{src(eth1, "192.0.2.2/24"), src(eth2, "192.0.2.3/24")},
			net:     network(def(254, 4, 0, "192.0.2.1", eth1)),
			wantRules: []netstate.Rule{
				rule("192.0.2.2", 10002), rule("192.0.2.3", 10003),
			},
			wantRoutes: []netstate.Route{
				connected("192.0.2.0/24", eth1), ours("192.0.2.1", eth1),
				connected("192.0.2.0/24", eth2), ours("192.0.2.1", eth2),
			},
			wantOrigin: []GatewayOrigin{GatewayLearned, GatewayShared},
		},
		{
			name:       "a gateway outside the prefix is not shared",
			sources:    []Source{src(eth2, "198.51.100.2/24")},
			net:        network(def(254, 4, 0, "192.0.2.1", eth1)),
			wantRules:  []netstate.Rule{rule("198.51.100.2", 10003)},
			wantRoutes: []netstate.Route{connected("198.51.100.0/24", eth2)},
			wantOrigin: []GatewayOrigin{GatewayNone},
		},
		{
			name:       "point-to-point link gets default dev",
			sources:    []Source{src(wwan, "203.0.113.5/32")},
			net:        network(),
			wantRules:  []netstate.Rule{rule("203.0.113.5", 10004)},
			wantRoutes: []netstate.Route{ours("", wwan)},
			wantOrigin: []GatewayOrigin{GatewayOnLink},
		},
		{
			name:       "on-link default route learned without gateway",
			sources:    []Source{src(eth2, "198.51.100.2/24")},
			net:        network(def(254, 4, 0, "", eth2)),
			wantRules:  []netstate.Rule{rule("198.51.100.2", 10003)},
			wantRoutes: []netstate.Route{connected("198.51.100.0/24", eth2), ours("", eth2)},
			wantOrigin: []GatewayOrigin{GatewayOnLink},
		},
		{
			name:    "unreachable default routes are not gateways",
			sources: []Source{src(eth2, "198.51.100.2/24")},
			net: func() netstate.State {
				r := def(254, 4, 0, "198.51.100.1", eth2)
				r.Type = 7 // RTN_UNREACHABLE
				return network(r)
			}(),
			wantRules:  []netstate.Rule{rule("198.51.100.2", 10003)},
			wantRoutes: []netstate.Route{connected("198.51.100.0/24", eth2)},
			wantOrigin: []GatewayOrigin{GatewayNone},
		},
		{
			name:       "two addresses in one prefix: one connected route, two rules",
			sources:    []Source{src(eth2, "198.51.100.2/24"), src(eth2, "198.51.100.3/24")},
			net:        network(def(254, 16, 200, "198.51.100.1", eth2)),
			wantRules:  []netstate.Rule{rule("198.51.100.2", 10003), rule("198.51.100.3", 10003)},
			wantRoutes: []netstate.Route{connected("198.51.100.0/24", eth2), ours("198.51.100.1", eth2)},
			wantOrigin: []GatewayOrigin{GatewayLearned},
		},
		{
			name:    "IPv6 with a link-local gateway from a router advertisement, beside IPv4",
			sources: []Source{src(eth2, "2001:db8:2::2/64"), src(eth2, "198.51.100.2/24")},
			net:     network(def(254, 9, 1024, "fe80::1", eth2), def(254, 16, 200, "198.51.100.1", eth2)),
			wantRules: []netstate.Rule{
				rule("198.51.100.2", 10003), rule("2001:db8:2::2", 10003),
			},
			wantRoutes: []netstate.Route{
				connected("198.51.100.0/24", eth2), ours("198.51.100.1", eth2),
				connected("2001:db8:2::/64", eth2), ours("fe80::1", eth2),
			},
			wantOrigin: []GatewayOrigin{GatewayLearned, GatewayLearned},
		},
		{
			name:       "IPv6 link-local gateways are never shared across links",
			sources:    []Source{src(eth2, "2001:db8:1::3/64")},
			net:        network(def(254, 9, 1024, "fe80::1", eth1)),
			wantRules:  []netstate.Rule{rule("2001:db8:1::3", 10003)},
			wantRoutes: []netstate.Route{connected("2001:db8:1::/64", eth2)},
			wantOrigin: []GatewayOrigin{GatewayNone},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Decide(set, tt.sources, tt.net)
			if diff := cmp.Diff(tt.wantRules, p.Rules, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRoutes, p.Routes, cmp.Comparer(func(a, b netstate.Route) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			var origins []GatewayOrigin
			for _, g := range p.Gateways {
				origins = append(origins, g.Origin)
			}
			if diff := cmp.Diff(tt.wantOrigin, origins); diff != "" {
				t.Errorf("gateway origins (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNoGatewaySaysWhichKeyToSet(t *testing.T) {
	p := Decide(set, []Source{src(eth2, "2001:db8:2::2/64")}, network())
	if len(p.Gateways) != 1 || !strings.Contains(p.Gateways[0].Detail, "gateway6") || !strings.Contains(p.Gateways[0].Detail, "eth2") {
		t.Errorf("gateway = %+v, want a detail naming eth2 and gateway6", p.Gateways)
	}
}

func TestHasDefaultRoute(t *testing.T) {
	n := network(def(254, 16, 100, "192.0.2.1", eth1), def(10002, 177, RouteMetric, "198.51.100.1", eth2))
	if !NewDefaults(set, n).HasDefaultRoute(eth1.Index, false) {
		t.Error("eth1 has a DHCP default route, HasDefaultRoute says no")
	}
	if NewDefaults(set, n).HasDefaultRoute(eth2.Index, false) {
		t.Error("eth2's only default route is ours; HasDefaultRoute must not count it")
	}
	if NewDefaults(set, n).HasDefaultRoute(eth1.Index, true) {
		t.Error("eth1 has no IPv6 default route")
	}
}

func TestSharedSubnets(t *testing.T) {
	got := SharedSubnets([]Source{
		src(eth1, "192.0.2.2/24"), src(eth2, "192.0.2.3/24"), src(eth2, "198.51.100.2/24"),
		src(eth1, "2001:db8:1::2/64"), src(eth2, "2001:db8:1::3/64"),
	})
	want := []SharedSubnet{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Links: []string{"eth1", "eth2"}}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("SharedSubnets (-want +got):\n%s", diff)
	}
}

func TestARPSafe(t *testing.T) {
	for _, tt := range []struct {
		a    ARP
		safe bool
	}{
		{ARP{}, false},
		{ARP{Ignore: 1}, false},
		{ARP{Ignore: 1, Announce: 2}, true},
		{ARP{Filter: true}, true},
	} {
		if got := tt.a.Safe(); got != tt.safe {
			t.Errorf("%+v.Safe() = %v, want %v", tt.a, got, tt.safe)
		}
	}
}

func TestOwnership(t *testing.T) {
	def := netip.MustParsePrefix("0.0.0.0/0")
	route := func(table uint32, proto uint8) netstate.Route {
		return netstate.Route{Table: table, Protocol: proto, Dst: def}
	}
	rule := func(prio, table uint32, proto uint8) netstate.Rule {
		return netstate.Rule{Priority: prio, Src: netip.MustParsePrefix("192.0.2.2/32"), Table: table, Protocol: proto}
	}
	for _, tt := range []struct {
		name string
		got  bool
		want bool
	}{
		{"our protocol in our table", set.OwnsRoute(route(10002, 177)), true},
		{"our protocol in main", set.OwnsRoute(route(254, 177)), false},
		{"our protocol below table_base", set.OwnsRoute(route(9999, 177)), false},
		{"our protocol at table_base itself (no ifindex 0)", set.OwnsRoute(route(10000, 177)), false},
		{"another protocol in our table", set.OwnsRoute(route(10002, 16)), false},
		{"our rule", set.OwnsRule(rule(10000, 10002, 177)), true},
		{"our protocol at another priority", set.OwnsRule(rule(500, 10002, 177)), false},
		{"our protocol and priority into main", set.OwnsRule(rule(10000, 254, 177)), false},
		{"another protocol at our priority", set.OwnsRule(rule(10000, 10002, 16)), false},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: owned = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}
