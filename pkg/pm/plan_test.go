package pm

import (
	"net/netip"
	"slices"
	"testing"

	mp "github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
)

func want(addr string, flags mp.Flags, ifindex int) Endpoint {
	return Endpoint{Addr: netip.MustParseAddr(addr), Flags: flags, IfIndex: ifindex, IfName: "eth"}
}

func have(id uint8, addr string, flags mp.Flags, ifindex int32) mp.Endpoint {
	return mp.Endpoint{ID: id, Addr: netip.MustParseAddr(addr), Flags: flags, IfIndex: ifindex}
}

func ids(eps []mp.Endpoint) []uint8 {
	var out []uint8
	for _, e := range eps {
		out = append(out, e.ID)
	}
	return out
}

func TestPlanEndpoints(t *testing.T) {
	sub, sig := mp.FlagSubflow, mp.FlagSignal
	tests := []struct {
		name      string
		desired   []Endpoint
		kernel    []mp.Endpoint
		owned     []uint8
		wantAdd   []string
		wantDel   []uint8
		wantKeep  []uint8
		wantFlags []FlagChange
	}{
		{name: "missing endpoint is added", desired: []Endpoint{want("192.0.2.2", sub, 2)}, wantAdd: []string{"192.0.2.2"}},
		{
			name: "matching endpoint is kept with its id", desired: []Endpoint{want("192.0.2.2", sub, 2)},
			kernel: []mp.Endpoint{have(7, "192.0.2.2", sub, 2)}, owned: []uint8{7}, wantKeep: []uint8{7},
		},
		{
			name: "backup change uses SET_FLAGS, no re-add", desired: []Endpoint{want("192.0.2.2", sub|mp.FlagBackup, 2)},
			kernel: []mp.Endpoint{have(7, "192.0.2.2", sub, 2)}, owned: []uint8{7},
			wantFlags: []FlagChange{{Endpoint: have(7, "192.0.2.2", sub, 2), Flags: mp.FlagBackup}},
		},
		{
			name: "fullmesh removed uses SET_FLAGS", desired: []Endpoint{want("192.0.2.2", sub, 2)},
			kernel: []mp.Endpoint{have(7, "192.0.2.2", sub|mp.FlagFullmesh, 2)}, owned: []uint8{7},
			wantFlags: []FlagChange{{Endpoint: have(7, "192.0.2.2", sub|mp.FlagFullmesh, 2), Flags: 0}},
		},
		{
			name: "subflow to signal needs delete and add", desired: []Endpoint{want("192.0.2.2", sig, 2)},
			kernel: []mp.Endpoint{have(7, "192.0.2.2", sub, 2)}, owned: []uint8{7},
			wantAdd: []string{"192.0.2.2"}, wantDel: []uint8{7},
		},
		{
			name: "device change needs delete and add", desired: []Endpoint{want("192.0.2.2", sub, 3)},
			kernel: []mp.Endpoint{have(7, "192.0.2.2", sub, 2)}, owned: []uint8{7},
			wantAdd: []string{"192.0.2.2"}, wantDel: []uint8{7},
		},
		{
			name: "port change needs delete and add", desired: []Endpoint{{Addr: netip.MustParseAddr("192.0.2.2"), Flags: sig, Port: 80, IfIndex: 2}},
			kernel: []mp.Endpoint{have(7, "192.0.2.2", sig, 2)}, owned: []uint8{7},
			wantAdd: []string{"192.0.2.2"}, wantDel: []uint8{7},
		},
		{
			name: "ours no longer wanted is deleted, foreign is not", desired: nil,
			kernel: []mp.Endpoint{have(7, "192.0.2.2", sub, 2), have(8, "203.0.113.9", sig, 0)}, owned: []uint8{7},
			wantDel: []uint8{7},
		},
		{
			name: "foreign endpoint on a wanted address is not touched", desired: []Endpoint{want("192.0.2.2", sub, 2)},
			kernel: []mp.Endpoint{have(8, "192.0.2.2", sig, 9)},
		},
		{
			name: "implicit endpoint on a wanted address is replaced by an add", desired: []Endpoint{want("192.0.2.2", sub, 2)},
			kernel: []mp.Endpoint{have(8, "192.0.2.2", mp.FlagImplicit|sig, 0)}, wantAdd: []string{"192.0.2.2"},
		},
		{
			name: "bits the kernel does not store do not force a re-add", desired: []Endpoint{want("192.0.2.2", sub|0x100, 2)},
			kernel: []mp.Endpoint{have(7, "192.0.2.2", sub, 2)}, owned: []uint8{7}, wantKeep: []uint8{7},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owned := map[uint8]bool{}
			for _, id := range tt.owned {
				owned[id] = true
			}
			p := PlanEndpoints(tt.desired, tt.kernel, owned)
			if got := endpointAddrs(p.Add); !slices.Equal(got, tt.wantAdd) {
				t.Errorf("add = %v, want %v", got, tt.wantAdd)
			}
			if got := ids(p.Delete); !slices.Equal(got, tt.wantDel) {
				t.Errorf("delete = %v, want %v", got, tt.wantDel)
			}
			if got := ids(p.Keep); !slices.Equal(got, tt.wantKeep) {
				t.Errorf("keep = %v, want %v", got, tt.wantKeep)
			}
			if !slices.Equal(p.SetFlags, tt.wantFlags) {
				t.Errorf("set flags = %v, want %v", p.SetFlags, tt.wantFlags)
			}
		})
	}
}

func TestPlanRouting(t *testing.T) {
	const proto = 177
	rule := func(a string, table uint32, p uint8) netstate.Rule {
		ad := netip.MustParseAddr(a)
		return netstate.Rule{Priority: 10000, Src: netip.PrefixFrom(ad, 32), Table: table, Protocol: p}
	}
	route := func(gw string, table uint32, p uint8) netstate.Route {
		return netstate.Route{Table: table, Protocol: p, Type: netstate.RouteTypeUnicast, Dst: netip.MustParsePrefix("0.0.0.0/0"),
			Priority: 1024, NextHops: []netstate.NextHop{{Gateway: netip.MustParseAddr(gw), IfIndex: 3}}}
	}
	net := netstate.New()
	for _, r := range []netstate.Rule{rule("192.0.2.2", 10002, proto), rule("192.0.2.9", 10002, proto), rule("192.0.2.3", 10002, 0)} {
		net.Rules[r] = struct{}{}
	}
	for _, r := range []netstate.Route{route("198.51.100.1", 10003, proto), route("203.0.113.1", 10004, 4), route("192.0.2.1", 10009, proto)} {
		net.Routes[r.Key()] = r
	}
	p := PlanRouting(
		[]netstate.Rule{rule("192.0.2.2", 10002, proto), rule("198.51.100.2", 10003, proto)},
		[]netstate.Route{route("198.51.100.254", 10003, proto), route("203.0.113.254", 10004, proto), route("198.18.0.1", 10005, proto)},
		net, srcroute.Settings{TableBase: 10000, RulePriority: 10000, Protocol: proto})
	if !slices.Equal(p.AddRules, []netstate.Rule{rule("198.51.100.2", 10003, proto)}) {
		t.Errorf("add rules = %v", p.AddRules)
	}
	if !slices.Equal(p.DeleteRules, []netstate.Rule{rule("192.0.2.9", 10002, proto)}) {
		t.Errorf("delete rules = %v (the untagged rule must stay)", p.DeleteRules)
	}
	eq := func(a, b []netstate.Route) bool { return slices.EqualFunc(a, b, netstate.Route.Equal) }
	if !eq(p.ReplaceRoutes, []netstate.Route{route("198.51.100.254", 10003, proto)}) {
		t.Errorf("replace routes = %v (a gateway change of ours)", p.ReplaceRoutes)
	}
	if !eq(p.AddRoutes, []netstate.Route{route("198.18.0.1", 10005, proto)}) {
		t.Errorf("add routes = %v", p.AddRoutes)
	}
	if !eq(p.Conflicts, []netstate.Route{route("203.0.113.254", 10004, proto)}) {
		t.Errorf("conflicts = %v (a foreign route holds that place)", p.Conflicts)
	}
	if !eq(p.DeleteRoutes, []netstate.Route{route("192.0.2.1", 10009, proto)}) {
		t.Errorf("delete routes = %v", p.DeleteRoutes)
	}
}
