package pm

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
)

type fakeNeighbours struct {
	states   map[netip.Addr]netstate.NeighState
	resolved int
	reprobed int
	// reprobeErr fails every Reprobe.
	reprobeErr error
	watching   []bool
}

func (f *fakeNeighbours) Neighbour(_ int, a netip.Addr) (netstate.NeighState, bool, error) {
	st, ok := f.states[a]
	return st, ok, nil
}

func (f *fakeNeighbours) Resolve(int, netip.Addr) error { f.resolved++; return nil }

func (f *fakeNeighbours) Reprobe(int, netip.Addr) error { f.reprobed++; return f.reprobeErr }

func (f *fakeNeighbours) WatchNeighbours(on bool) error {
	f.watching = append(f.watching, on)
	return nil
}

func TestGatewayGate(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	gw := netip.MustParseAddr("198.51.100.1")
	f := &fakeNeighbours{states: map[netip.Addr]netstate.NeighState{}}
	g := newGatewayGate(f, f, logging.NewLogger(core), 30*time.Second)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	eth2 := srcroute.Gateway{IfIndex: 3, IfName: "eth2", Addr: gw, Origin: srcroute.GatewayConfigured}

	if ok, _ := g.open(srcroute.Gateway{IfIndex: 3, Origin: srcroute.GatewayOnLink}, t0); !ok {
		t.Error("an on-link interface was gated")
	}
	if ok, _ := g.open(eth2, t0); !ok || f.resolved != 0 {
		t.Error("a gateway without a neighbour entry was gated: the SYN itself resolves it")
	}
	f.states[gw] = netstate.NeighStale
	if ok, _ := g.open(eth2, t0); !ok {
		t.Error("a STALE gateway was gated: the kernel can send to it")
	}

	f.states[gw] = netstate.NeighFailed
	ok, why := g.open(eth2, t0)
	if ok || why != "waiting for gateway 198.51.100.1 to answer ARP since 12:00:00 (FAILED)" || f.resolved != 1 || len(f.watching) != 1 || !f.watching[0] {
		t.Fatalf("FAILED gateway: open %v %q, resolved %d, watching %v; want closed, resolving, watching", ok, why, f.resolved, f.watching)
	}
	if g.neighbour(netstate.Neigh{IfIndex: 3, Addr: gw, State: netstate.NeighIncomplete}) {
		t.Error("INCOMPLETE opened the gate")
	}
	g.neighbour(netstate.Neigh{IfIndex: 3, Addr: gw, State: netstate.NeighFailed})
	if f.resolved != 2 {
		t.Errorf("a gateway that failed again was resolved %d times, want again", f.resolved)
	}
	f.states[gw] = netstate.NeighReachable
	if !g.neighbour(netstate.Neigh{IfIndex: 3, Addr: gw, State: netstate.NeighReachable}) {
		t.Error("REACHABLE did not end the wait")
	}
	if ok, _ := g.open(eth2, t0.Add(time.Second)); !ok || len(f.watching) != 2 || f.watching[1] {
		t.Errorf("after the gateway answered: open %v, watching %v; want open and no longer watching", ok, f.watching)
	}

	// A gateway that never answers: open after the timeout, one warning.
	f.states[gw] = netstate.NeighFailed
	f.watching = nil
	t1 := t0.Add(time.Minute)
	g.open(eth2, t1)
	if ok, _ := g.open(eth2, t1.Add(29*time.Second)); ok {
		t.Error("the gate opened before the timeout")
	}
	for range 3 {
		if ok, _ := g.open(eth2, t1.Add(31*time.Second)); !ok {
			t.Error("the gate stayed shut after the timeout")
		}
	}
	if n := logs.FilterMessageSnippet("did not answer in time").Len(); n != 1 {
		t.Errorf("%d timeout warnings, want one", n)
	}
	if !g.next().IsZero() {
		t.Errorf("a wait remains after the timeout: next %v", g.next())
	}
	g.forget(map[neighKey]bool{})
	if ok, _ := g.open(eth2, t1.Add(time.Hour)); ok {
		t.Error("a later outage of a forgotten gateway was not gated again")
	}
}

// TestGatewayGateProbesAgain: a gateway found INCOMPLETE (its probes may
// have gone out while the link was down) is probed again at once; while
// the wait lasts the gate probes again 100 ms after it began, then at
// doubling intervals up to 500 ms, and wakes the engine for each.
func TestGatewayGateProbesAgain(t *testing.T) {
	gw := netip.MustParseAddr("198.51.100.1")
	f := &fakeNeighbours{states: map[netip.Addr]netstate.NeighState{gw: netstate.NeighIncomplete}}
	g := newGatewayGate(f, f, logging.Nop(), 30*time.Second)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	eth2 := srcroute.Gateway{IfIndex: 3, IfName: "eth2", Addr: gw, Origin: srcroute.GatewayConfigured}

	if ok, _ := g.open(eth2, t0); ok || f.reprobed != 1 || f.resolved != 0 {
		t.Fatalf("INCOMPLETE gateway: open %v, reprobed %d, resolved %d; want closed and probed again at once", ok, f.reprobed, f.resolved)
	}
	var probes []time.Duration
	for ms := 10; ms <= 2500; ms += 10 {
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		before := f.reprobed
		if next := g.next(); next.After(now) {
			continue
		} else if next.Before(now.Add(-10 * time.Millisecond)) {
			t.Fatalf("next %v passed at %v without a wake-up", next.Sub(t0), now.Sub(t0))
		}
		if ok, _ := g.open(eth2, now); ok {
			t.Fatalf("the gate opened at %v", now.Sub(t0))
		}
		if f.reprobed > before {
			probes = append(probes, now.Sub(t0))
		}
	}
	want := []time.Duration{100, 300, 700, 1200, 1700, 2200}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(probes, want) {
		t.Errorf("probes again at %v, want %v", probes, want)
	}

	// A FAILED gateway is resolved (the kernel probes at once), then
	// probed again on the same schedule.
	f.states[gw] = netstate.NeighFailed
	g.forget(map[neighKey]bool{})
	f.reprobed, f.resolved = 0, 0
	g.open(eth2, t0)
	g.open(eth2, t0.Add(100*time.Millisecond))
	if f.resolved != 1 || f.reprobed != 1 {
		t.Errorf("FAILED gateway: resolved %d, reprobed %d after 100 ms; want 1 and 1", f.resolved, f.reprobed)
	}
	// The answer ends the probes.
	g.neighbour(netstate.Neigh{IfIndex: 3, Addr: gw, State: netstate.NeighReachable})
	if !g.next().IsZero() {
		t.Errorf("after the answer the gate still wakes at %v", g.next())
	}
}

// TestGatewayGateReprobeFailureLoggedOnce: probes that cannot be asked for
// are logged once per wait, not twice a second.
func TestGatewayGateReprobeFailureLoggedOnce(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	gw := netip.MustParseAddr("198.51.100.1")
	f := &fakeNeighbours{states: map[netip.Addr]netstate.NeighState{gw: netstate.NeighIncomplete}, reprobeErr: errors.New("operation not permitted")}
	g := newGatewayGate(f, f, logging.NewLogger(core), 30*time.Second)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	eth2 := srcroute.Gateway{IfIndex: 3, IfName: "eth2", Addr: gw, Origin: srcroute.GatewayConfigured}
	for ms := 0; ms <= 5000; ms += 50 {
		g.open(eth2, t0.Add(time.Duration(ms)*time.Millisecond))
	}
	if n := logs.FilterMessageSnippet("probe the gateway again failed").Len(); f.reprobed < 10 || n != 1 {
		t.Errorf("%d failed probes logged %d times, want once", f.reprobed, n)
	}
}
