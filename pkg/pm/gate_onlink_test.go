package pm

import (
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
)

// TestGatewayGateKinds: which gateways the gate holds while their
// neighbour entry is FAILED. An on-link gateway (the cloud /32 case) has a
// neighbour entry like any other and fails the same way after an outage;
// only a link without a gateway (point-to-point, on-link default route, none
// found) has nothing to wait for.
func TestGatewayGateKinds(t *testing.T) {
	gw := netip.MustParseAddr("198.51.100.1")
	gw6 := netip.MustParseAddr("2001:db8::1")
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		gw   srcroute.Gateway
		held string
	}{
		{"configured inside the prefix", srcroute.Gateway{IfIndex: 3, IfName: "eth2", Addr: gw, Origin: srcroute.GatewayConfigured},
			"waiting for gateway 198.51.100.1 to answer ARP since 12:00:00 (FAILED)"},
		{"configured on-link (/32 address)", srcroute.Gateway{IfIndex: 3, IfName: "eth2", Addr: gw, OnLink: true, Origin: srcroute.GatewayConfigured},
			"waiting for gateway 198.51.100.1 to answer ARP since 12:00:00 (FAILED)"},
		{"configured on-link IPv6 (/128 address)", srcroute.Gateway{IfIndex: 3, IfName: "eth2", IPv6: true, Addr: gw6, OnLink: true, Origin: srcroute.GatewayConfigured},
			"waiting for gateway 2001:db8::1 to answer neighbour discovery since 12:00:00 (FAILED)"},
		{"learned", srcroute.Gateway{IfIndex: 3, IfName: "eth2", Addr: gw, Origin: srcroute.GatewayLearned},
			"waiting for gateway 198.51.100.1 to answer ARP since 12:00:00 (FAILED)"},
		{"point-to-point interface", srcroute.Gateway{IfIndex: 4, IfName: "wwan0", Origin: srcroute.GatewayOnLink, Detail: "point-to-point interface"}, ""},
		{"on-link default route", srcroute.Gateway{IfIndex: 4, IfName: "wwan0", Origin: srcroute.GatewayOnLink, Detail: "on-link default route in table 254"}, ""},
		{"no gateway found", srcroute.Gateway{IfIndex: 5, IfName: "eth3"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, _ := observer.New(zapcore.DebugLevel)
			f := &fakeNeighbours{states: map[netip.Addr]netstate.NeighState{gw: netstate.NeighFailed, gw6: netstate.NeighFailed}}
			g := newGatewayGate(f, f, logging.NewLogger(core), 30*time.Second)
			ok, why := g.open(tc.gw, t0)
			if tc.held == "" {
				if !ok || f.resolved != 0 || len(f.watching) != 0 {
					t.Errorf("open %v %q, resolved %d, watching %v; want open at once, asking nothing", ok, why, f.resolved, f.watching)
				}
				return
			}
			if ok || why != tc.held || f.resolved != 1 {
				t.Fatalf("open %v %q, resolved %d; want held %q and resolving", ok, why, f.resolved, tc.held)
			}
			f.states[tc.gw.Addr] = netstate.NeighReachable
			if !g.neighbour(netstate.Neigh{IfIndex: tc.gw.IfIndex, Addr: tc.gw.Addr, State: netstate.NeighReachable}) {
				t.Error("the gateway's answer did not end the wait")
			}
			if ok, _ := g.open(tc.gw, t0.Add(time.Second)); !ok {
				t.Error("the gate stayed shut after the gateway answered")
			}
		})
	}
}
