package pm

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	mp "github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

const up = netstate.LinkUp | netstate.LinkRunning | netstate.LinkLowerUp

func parseConfig(t testing.TB, text string) *config.Config {
	t.Helper()
	c, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return c
}

// netBuilder builds an observed network for decision tests.
type netBuilder struct{ s netstate.State }

func newNet() *netBuilder { return &netBuilder{netstate.New()} }

func (b *netBuilder) link(index int, name string, flags netstate.LinkFlags) *netBuilder {
	b.s.Links[index] = netstate.Link{Index: index, Name: name, Flags: flags}
	return b
}

func (b *netBuilder) addr(index int, cidr string, flags netstate.AddrFlags) *netBuilder {
	p := netip.MustParsePrefix(cidr)
	scope := netstate.ScopeUniverse
	if p.Addr().IsLinkLocalUnicast() {
		scope = netstate.ScopeLink
	}
	if p.Addr().IsLoopback() {
		scope = netstate.ScopeHost
	}
	a := netstate.Addr{IfIndex: index, Addr: p.Addr(), Prefix: p, Scope: scope, Flags: flags}
	b.s.Addrs[a.Key()] = a
	return b
}

func (b *netBuilder) defaultRoute(index int, gw string, proto uint8) *netBuilder {
	g := netip.MustParseAddr(gw)
	dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if g.Is6() {
		dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	r := netstate.Route{Table: 254, Protocol: proto, Type: netstate.RouteTypeUnicast, Dst: dst, Priority: uint32(100 * index),
		NextHops: []netstate.NextHop{{Gateway: g, IfIndex: index}}}
	b.s.Routes[r.Key()] = r
	return b
}

// ourDefaultRoute adds a default route as mptcpgd writes it: protocol 177,
// in the interface's table.
func (b *netBuilder) ourDefaultRoute(index int, gw string) *netBuilder {
	r := netstate.Route{Table: 10000 + uint32(index), Protocol: 177, Type: netstate.RouteTypeUnicast, Dst: netip.MustParsePrefix("0.0.0.0/0"),
		Priority: 1024, NextHops: []netstate.NextHop{{Gateway: netip.MustParseAddr(gw), IfIndex: index}}}
	b.s.Routes[r.Key()] = r
	return b
}

// twoUplinks is a client with loopback, two uplinks, a docker bridge and a
// veth, each with an address.
func twoUplinks() *netBuilder {
	return newNet().
		link(1, "lo", netstate.LinkUp|netstate.LinkRunning|netstate.LinkLoopback).addr(1, "127.0.0.1/8", 0).
		link(2, "eth1", up).addr(2, "192.0.2.2/24", netstate.AddrPermanent).
		link(3, "eth2", up).addr(3, "198.51.100.2/24", netstate.AddrPermanent).
		link(4, "docker0", up).addr(4, "203.0.113.1/24", 0).
		link(5, "veth9", up).addr(5, "198.18.0.1/24", 0)
}

func reasons(d Decision) map[string]string {
	out := map[string]string{}
	for _, a := range d.Addresses {
		r := a.Reason
		if a.Managed {
			r = "managed"
		}
		out[a.Addr.Addr.String()] = r
	}
	return out
}

func endpointAddrs(eps []Endpoint) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.Addr.String())
	}
	return out
}

func TestDecideAddressKinds(t *testing.T) {
	tests := []struct {
		name   string
		config string
		net    *netBuilder
		kernel []mp.Endpoint
		held   map[int]time.Time
		want   map[string]string // address -> "managed" or a substring of the reason
	}{
		{
			name: "defaults: uplinks managed, loopback and default-excluded interfaces not",
			net:  twoUplinks(),
			want: map[string]string{
				"127.0.0.1": `excluded by "lo"`, "192.0.2.2": "managed", "198.51.100.2": "managed",
				"203.0.113.1": `excluded by "docker*"`, "198.18.0.1": `excluded by "veth*"`,
			},
		},
		{
			name:   "families limits the address families",
			config: "[endpoints]\nfamilies = [\"ipv6\"]\n",
			net:    newNet().link(2, "eth1", up).addr(2, "192.0.2.2/24", 0).addr(2, "2001:db8:1::2/64", 0),
			want:   map[string]string{"192.0.2.2": "IPv4 is not in endpoints.families", "2001:db8:1::2": "managed"},
		},
		{
			name: "link-local skipped by default",
			net:  newNet().link(2, "eth1", up).addr(2, "169.254.7.7/16", 0).addr(2, "fe80::1/64", 0),
			want: map[string]string{"169.254.7.7": "link-local", "fe80::1": "link-local"},
		},
		{
			name:   "skip_link_local = false manages them",
			config: "[endpoints]\nskip_link_local = false\n",
			net:    newNet().link(2, "eth1", up).addr(2, "169.254.7.7/16", 0),
			want:   map[string]string{"169.254.7.7": "managed"},
		},
		{
			name: "ULA managed by default",
			net:  newNet().link(2, "eth1", up).addr(2, "fd00::2/64", 0),
			want: map[string]string{"fd00::2": "managed"},
		},
		{
			name:   "skip_ula skips unique local addresses",
			config: "[endpoints]\nskip_ula = true\n",
			net:    newNet().link(2, "eth1", up).addr(2, "fd00::2/64", 0).addr(2, "2001:db8:1::2/64", 0),
			want:   map[string]string{"fd00::2": "skip_ula", "2001:db8:1::2": "managed"},
		},
		{
			name: "temporary IPv6 skipped; the same bit on IPv4 means secondary and is managed",
			net:  newNet().link(2, "eth1", up).addr(2, "2001:db8:1::99/64", netstate.AddrTemporary).addr(2, "192.0.2.3/24", netstate.AddrTemporary),
			want: map[string]string{"2001:db8:1::99": "temporary", "192.0.2.3": "managed"},
		},
		{
			name:   "skip_temporary = false manages privacy addresses",
			config: "[endpoints]\nskip_temporary = false\n",
			net:    newNet().link(2, "eth1", up).addr(2, "2001:db8:1::99/64", netstate.AddrTemporary),
			want:   map[string]string{"2001:db8:1::99": "managed"},
		},
		{
			name: "tentative, failed DAD and deprecated skipped",
			net: newNet().link(2, "eth1", up).
				addr(2, "2001:db8:1::a/64", netstate.AddrTentative).
				addr(2, "2001:db8:1::b/64", netstate.AddrDADFailed|netstate.AddrTentative).
				addr(2, "2001:db8:1::c/64", netstate.AddrDeprecated),
			want: map[string]string{"2001:db8:1::a": "tentative", "2001:db8:1::b": "duplicate address detection failed", "2001:db8:1::c": "deprecated"},
		},
		{
			name: "no carrier withdraws",
			net:  newNet().link(2, "eth1", netstate.LinkUp).addr(2, "192.0.2.2/24", 0),
			want: map[string]string{"192.0.2.2": "no carrier"},
		},
		{
			name: "admin down withdraws",
			net:  newNet().link(2, "eth1", netstate.LinkRunning).addr(2, "192.0.2.2/24", 0),
			want: map[string]string{"192.0.2.2": "no carrier"},
		},
		{
			name: "held down after flapping",
			net:  newNet().link(2, "eth1", up).addr(2, "192.0.2.2/24", 0),
			held: map[int]time.Time{2: time.Date(2026, 1, 1, 0, 0, 9, 0, time.UTC)},
			want: map[string]string{"192.0.2.2": "held down after flapping"},
		},
		{
			name:   "require_default_route: only interfaces with their own default route",
			config: "[endpoints]\nrequire_default_route = true\n",
			net: newNet().link(2, "eth1", up).addr(2, "192.0.2.2/24", 0).addr(2, "2001:db8:1::2/64", 0).
				link(3, "eth2", up).addr(3, "198.51.100.2/24", 0).
				defaultRoute(2, "192.0.2.1", 16).ourDefaultRoute(3, "198.51.100.1"),
			want: map[string]string{
				"192.0.2.2": "managed", "2001:db8:1::2": "no IPv6 default route on eth1",
				"198.51.100.2": "no IPv4 default route on eth2",
			},
		},
		{
			name:   "an [[interface]] entry beats the exclude globs; manage = false beats include",
			config: "[[interface]]\nmatch = \"veth9\"\n[[interface]]\nmatch = \"eth*\"\nmanage = false\n",
			net:    twoUplinks(),
			want: map[string]string{
				"198.18.0.1": "managed", "192.0.2.2": "manage = false in interface[2]", "198.51.100.2": "manage = false in interface[2]",
			},
		},
		{
			name:   "include narrows what is managed",
			config: "[endpoints]\ninclude = [\"eth1\"]\n",
			net:    twoUplinks(),
			want:   map[string]string{"192.0.2.2": "managed", "198.51.100.2": "not included"},
		},
		{
			name:   "an address held by a foreign endpoint bound elsewhere is left alone",
			net:    twoUplinks(),
			kernel: []mp.Endpoint{{ID: 9, Addr: netip.MustParseAddr("198.51.100.2"), Flags: mp.FlagSignal, IfIndex: 5}},
			want:   map[string]string{"198.51.100.2": "a foreign endpoint id 9 (signal) holds this address", "192.0.2.2": "managed"},
		},
		{
			name: "the same address on two links is managed once",
			net:  newNet().link(2, "eth1", up).addr(2, "192.0.2.2/24", 0).link(3, "eth2", up).addr(3, "192.0.2.2/24", 0),
			want: map[string]string{"192.0.2.2": "managed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{
				Config: parseConfig(t, tt.config), Net: tt.net.s, Kernel: tt.kernel,
				HeldUntil: tt.held, Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			}
			got := reasons(Decide(in))
			for addr, want := range tt.want {
				if !strings.Contains(got[addr], want) {
					t.Errorf("%s: %q, want %q", addr, got[addr], want)
				}
			}
		})
	}
}

func TestDecideEndpointSettings(t *testing.T) {
	cfg := parseConfig(t, `
[endpoints]
flags = ["subflow"]
[[interface]]
match = "eth2"
flags = ["signal", "backup"]
port = 8080
priority = 5
`)
	d := Decide(Input{Config: cfg, Net: twoUplinks().s})
	want := []Endpoint{
		{Addr: netip.MustParseAddr("198.51.100.2"), Port: 8080, Flags: mp.FlagSignal | mp.FlagBackup, IfIndex: 3, IfName: "eth2", Priority: 5},
		{Addr: netip.MustParseAddr("192.0.2.2"), Flags: mp.FlagSubflow, IfIndex: 2, IfName: "eth1"},
	}
	if !slices.Equal(d.Endpoints, want) {
		t.Errorf("endpoints = %v, want %v", d.Endpoints, want)
	}
	if ep := d.Endpoints[1].Kernel(); ep.IfIndex != 2 || ep.ID != 0 {
		t.Errorf("kernel form %+v: want bound to ifindex 2 and no id (the kernel picks)", ep)
	}
}

func TestDecideCap(t *testing.T) {
	cfg := parseConfig(t, "[[interface]]\nmatch = \"eth9\"\npriority = 10\n")
	b := newNet()
	for i := 2; i <= 6; i++ {
		b.link(i, fmt.Sprintf("eth%d", i), up).addr(i, fmt.Sprintf("2001:db8:%d::2/64", i), 0).addr(i, fmt.Sprintf("198.51.100.%d/24", i), 0)
	}
	b.link(9, "eth9", up).addr(9, "2001:db8:9::2/64", 0)
	foreign := mp.Endpoint{ID: 200, Addr: netip.MustParseAddr("203.0.113.200"), Flags: mp.FlagSignal}

	d := Decide(Input{Config: cfg, Net: b.s, Kernel: []mp.Endpoint{foreign}})
	// 11 candidates, 7 slots (one foreign endpoint): eth9 first (priority),
	// then every interface's best address (IPv4 first) by ifindex, then
	// their second ones.
	want := []string{"2001:db8:9::2", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5", "198.51.100.6", "2001:db8:2::2"}
	if got := endpointAddrs(d.Endpoints); !slices.Equal(got, want) {
		t.Errorf("chosen = %v, want %v", got, want)
	}
	if got := endpointAddrs(d.OverCap); !slices.Equal(got, []string{"2001:db8:3::2", "2001:db8:4::2", "2001:db8:5::2", "2001:db8:6::2"}) {
		t.Errorf("over cap = %v", got)
	}
	if r := reasons(d)["2001:db8:6::2"]; !strings.Contains(r, "8-endpoint limit") || !strings.Contains(r, "1 held by others") {
		t.Errorf("reason for an address over the cap = %q", r)
	}

	// A better candidate appearing later takes a slot from the worst.
	b.link(1, "eth0", up).addr(1, "192.0.2.2/24", 0)
	d = Decide(Input{Config: cfg, Net: b.s, Kernel: []mp.Endpoint{foreign}})
	if got := endpointAddrs(d.Endpoints); got[1] != "192.0.2.2" || slices.Contains(got, "2001:db8:2::2") {
		t.Errorf("after a better candidate appeared: chosen = %v", got)
	}
}

// One interface with many addresses does not starve the others: each
// interface's best address comes before any interface's second.
func TestDecideCapSpreadsAcrossInterfaces(t *testing.T) {
	b := newNet().link(2, "eth1", up).link(3, "eth2", up).addr(3, "198.51.100.2/24", 0)
	for i := 1; i <= 250; i++ {
		b.addr(2, fmt.Sprintf("198.18.%d.%d/16", i/200, 1+i%200), 0)
	}
	d := Decide(Input{Config: parseConfig(t, ""), Net: b.s})
	if len(d.Endpoints) != 8 || !slices.Contains(endpointAddrs(d.Endpoints), "198.51.100.2") {
		t.Errorf("chosen = %v: eth2's only address must get a slot", endpointAddrs(d.Endpoints))
	}
	if len(d.OverCap) != 243 {
		t.Errorf("%d left out, want 243", len(d.OverCap))
	}
}

func TestDecideOwnership(t *testing.T) {
	cfg := parseConfig(t, "")
	net := twoUplinks().s
	kernel := []mp.Endpoint{
		{ID: 1, Addr: netip.MustParseAddr("192.0.2.2"), Flags: mp.FlagSubflow, IfIndex: 2},         // adoptable: managed eth1
		{ID: 2, Addr: netip.MustParseAddr("203.0.113.1"), Flags: mp.FlagSignal},                    // docker0: not ours
		{ID: 3, Addr: netip.MustParseAddr("198.18.77.1"), Flags: mp.FlagSubflow},                   // recorded, address gone: stale, ours
		{ID: 4, Addr: netip.MustParseAddr("198.51.100.2"), Flags: mp.FlagImplicit | mp.FlagSignal}, // implicit on a wanted address
		{ID: 5, Addr: netip.MustParseAddr("198.18.88.1"), Flags: mp.FlagSubflow},                   // unrecorded, nowhere: not ours
		{ID: 6, Addr: netip.MustParseAddr("198.18.99.1"), Flags: mp.FlagSubflow},                   // recorded under another address: not ours
	}
	records := []statefile.Endpoint{{ID: 3, Addr: netip.MustParseAddr("198.18.77.1")}, {ID: 6, Addr: netip.MustParseAddr("198.18.99.9")}}
	d := Decide(Input{Config: cfg, Net: net, Kernel: kernel, Records: records})
	var owned []uint8
	for id := range d.Owned {
		owned = append(owned, id)
	}
	slices.Sort(owned)
	if !slices.Equal(owned, []uint8{1, 3}) {
		t.Errorf("owned ids = %v, want [1 3]", owned)
	}
	var foreign []uint8
	for _, ep := range d.Foreign {
		foreign = append(foreign, ep.ID)
	}
	if !slices.Equal(foreign, []uint8{2, 5, 6}) {
		t.Errorf("foreign ids = %v, want [2 5 6] (the implicit one on a wanted address is replaced, not counted)", foreign)
	}
	p := PlanEndpoints(d.Endpoints, kernel, d.Owned)
	if len(p.Delete) != 1 || p.Delete[0].ID != 3 {
		t.Errorf("deletes = %v, want only the stale endpoint 3", p.Delete)
	}
	if len(p.Keep) != 1 || p.Keep[0].ID != 1 {
		t.Errorf("keeps = %v, want endpoint 1 adopted with its id", p.Keep)
	}
	if got := endpointAddrs(p.Add); !slices.Equal(got, []string{"198.51.100.2"}) {
		t.Errorf("adds = %v, want the implicit address replaced", got)
	}
}

func TestDecideLimits(t *testing.T) {
	for _, tt := range []struct {
		config string
		addrs  int
		want   mp.Limits
	}{
		{"", 2, mp.Limits{Subflows: 4, AddAddrAccepted: 4}},
		{"[limits]\nsubflows = \"auto\"\nadd_addr_accepted = 1\n", 0, mp.Limits{Subflows: 2, AddAddrAccepted: 1}},
		{"[limits]\nsubflows = \"auto\"\n", 3, mp.Limits{Subflows: 6, AddAddrAccepted: 4}},
		{"[limits]\nsubflows = \"auto\"\n", 6, mp.Limits{Subflows: 8, AddAddrAccepted: 4}},
	} {
		b := newNet()
		for i := range tt.addrs {
			b.link(i+2, fmt.Sprintf("eth%d", i), up).addr(i+2, fmt.Sprintf("198.51.100.%d/24", i+2), 0)
		}
		if got := Decide(Input{Config: parseConfig(t, tt.config), Net: b.s}).Limits; got != tt.want {
			t.Errorf("%q with %d addresses: limits %v, want %v", tt.config, tt.addrs, got, tt.want)
		}
	}
}

func TestDecideRouting(t *testing.T) {
	net := twoUplinks().defaultRoute(2, "192.0.2.1", 16).s
	d := Decide(Input{Config: parseConfig(t, ""), Net: net})
	if len(d.Routing.Rules) != 2 {
		t.Fatalf("rules = %v, want one per endpoint", d.Routing.Rules)
	}
	if len(d.Warnings) != 1 || d.Warnings[0].Kind != WarnNoGateway || d.Warnings[0].Iface != "eth2" || !strings.Contains(d.Warnings[0].Message, "gateway4") {
		t.Errorf("warnings = %q, want one naming eth2 and gateway4", d.Warnings)
	}
	var gws []string
	for _, st := range d.Interfaces {
		for _, g := range st.Gateways {
			gws = append(gws, st.Link.Name+"="+g.Origin.String())
		}
	}
	if !slices.Equal(gws, []string{"eth1=learned", "eth2=none"}) {
		t.Errorf("gateways = %v", gws)
	}
	off := Decide(Input{Config: parseConfig(t, "[routing]\nenabled = false\n"), Net: net})
	if len(off.Routing.Rules)+len(off.Routing.Routes) != 0 || len(off.Warnings) != 0 {
		t.Errorf("routing disabled still plans %v / %v, warnings %q", off.Routing.Rules, off.Routing.Routes, off.Warnings)
	}
}

func TestDecideARPWarning(t *testing.T) {
	net := newNet().link(2, "eth1", up).addr(2, "192.0.2.2/24", 0).link(3, "eth2", up).addr(3, "192.0.2.3/24", 0).defaultRoute(2, "192.0.2.1", 4).s
	cfg := parseConfig(t, "")
	asked := map[string]bool{}
	unsafe := func(name string) srcroute.ARP { asked[name] = true; return srcroute.ARP{} }
	d := Decide(Input{Config: cfg, Net: net, ARP: unsafe})
	found := false
	for _, w := range d.Warnings {
		found = found || (w.Kind == WarnARPSettings && strings.Contains(w.Message, "eth1 and eth2") && strings.Contains(w.Message, "arp_ignore=1"))
	}
	if !found {
		t.Errorf("warnings = %q, want the ARP settings named", d.Warnings)
	}
	safe := func(string) srcroute.ARP { return srcroute.ARP{Ignore: 1, Announce: 2} }
	for _, w := range Decide(Input{Config: cfg, Net: net, ARP: safe}).Warnings {
		if w.Kind == WarnARPSettings {
			t.Errorf("warned %q although the ARP settings are right", w)
		}
	}
}

func TestDecideNewAddressWaitsForItsGateway(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	net := newNet().link(2, "eth1", up).addr(2, "192.0.2.2/24", 0).defaultRoute(2, "192.0.2.1", 16).
		link(3, "eth2", up).addr(3, "198.51.100.2/24", 0).
		link(4, "wwan0", up|netstate.LinkPointToPoint|netstate.LinkNoARP).addr(4, "203.0.113.5/32", 0).s
	key := func(idx int, a string) netstate.AddrKey {
		return netstate.AddrKey{IfIndex: idx, Addr: netip.MustParseAddr(a)}
	}
	for _, tt := range []struct {
		name string
		seen map[netstate.AddrKey]time.Time
		want map[string]string
	}{
		{"present at start: no wait", nil,
			map[string]string{"192.0.2.2": "managed", "198.51.100.2": "managed", "203.0.113.5": "managed"}},
		{"new, without a gateway: waits; with one, or on-link: at once",
			map[netstate.AddrKey]time.Time{key(2, "192.0.2.2"): now, key(3, "198.51.100.2"): now, key(4, "203.0.113.5"): now},
			map[string]string{"192.0.2.2": "managed", "198.51.100.2": "waiting for a default route on eth2", "203.0.113.5": "managed"}},
		{"the wait is over: an endpoint without a default route",
			map[netstate.AddrKey]time.Time{key(3, "198.51.100.2"): now.Add(-4 * time.Second)},
			map[string]string{"198.51.100.2": "managed"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Config: parseConfig(t, ""), Net: net, Now: now, FirstSeen: tt.seen, GatewayWait: 3 * time.Second}
			got := reasons(Decide(in))
			for addr, want := range tt.want {
				if !strings.Contains(got[addr], want) {
					t.Errorf("%s: %q, want %q", addr, got[addr], want)
				}
			}
		})
	}
}

func TestOverCapSummaryIsShort(t *testing.T) {
	var left []Endpoint
	for i := range 240 {
		left = append(left, Endpoint{Addr: netip.AddrFrom4([4]byte{198, 18, byte(i / 200), byte(i % 200)}), IfName: "eth1"})
	}
	left = append(left, Endpoint{Addr: netip.MustParseAddr("198.51.100.9"), IfName: "eth9"})
	for _, n := range []string{"eth3", "eth4", "eth5"} {
		left = append(left, Endpoint{Addr: netip.MustParseAddr("203.0.113.1"), IfName: n})
	}
	got := overCapSummary(left)
	if want := "eth1 240 addresses, eth9 198.51.100.9, eth3 203.0.113.1, 2 more interfaces"; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
}
