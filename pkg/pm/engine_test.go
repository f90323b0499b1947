package pm

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/connview"
	mp "github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/nlerr"
	"github.com/mptcpgd/mptcpgd/pkg/rtnl"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

func TestEngineStartConverges(t *testing.T) {
	k := newFakeKernel(clientNet())
	store := &memStore{}
	h := startEngine(t, parseConfig(t, ""), k, store, nil)
	eps, lim, _ := k.snapshot()
	if got := addrsOf(eps); !slices.Equal(got, []string{"192.0.2.2", "198.51.100.2"}) {
		t.Fatalf("endpoints at ready = %v", got)
	}
	for _, ep := range eps {
		if ep.Flags != mp.FlagSubflow || ep.IfIndex == 0 {
			t.Errorf("endpoint %v: want subflow, bound to its device", ep)
		}
	}
	if lim != (mp.Limits{Subflows: 4, AddAddrAccepted: 4}) {
		t.Errorf("limits = %v", lim)
	}
	k.mu.Lock()
	rules, routes := len(k.net.Rules), 0
	for _, r := range k.net.Routes {
		if r.Protocol == 177 {
			routes++
		}
	}
	k.mu.Unlock()
	if rules != 2 || routes != 4 {
		t.Errorf("rules %d, our routes %d: want 2 rules and a connected and default route per uplink", rules, routes)
	}
	h.stop()
	st := store.get()
	if st.InitialLimits == nil || *st.InitialLimits != (mp.Limits{Subflows: 2}) {
		t.Errorf("initial limits recorded = %v, want the kernel's before we changed them", st.InitialLimits)
	}
	if len(st.Endpoints) != 2 {
		t.Errorf("state file records %v, want both endpoints", st.Endpoints)
	}
}

func TestEngineRestartAdoptsWithoutTouching(t *testing.T) {
	k := newFakeKernel(clientNet())
	store := &memStore{}
	h := startEngine(t, parseConfig(t, ""), k, store, nil)
	h.stop()
	before, _, log := k.snapshot()
	writes := len(log)

	startEngine(t, parseConfig(t, ""), k, store, nil).stop()
	after, _, log := k.snapshot()
	if !slices.Equal(before, after) {
		t.Errorf("endpoints changed across a restart: %v -> %v", before, after)
	}
	if len(log) != writes {
		t.Errorf("a restart wrote to the kernel: %q", log[writes:])
	}
}

func TestEngineAdoptsUnrecordedAndRemovesStale(t *testing.T) {
	k := newFakeKernel(clientNet())
	k.eps[5] = mp.Endpoint{ID: 5, Addr: netip.MustParseAddr("192.0.2.2"), Flags: mp.FlagSubflow, IfIndex: 2}         // made by hand on a managed NIC
	k.eps[6] = mp.Endpoint{ID: 6, Addr: netip.MustParseAddr("198.18.5.5"), Flags: mp.FlagSubflow}                    // ours, address gone while stopped
	k.eps[7] = mp.Endpoint{ID: 7, Addr: netip.MustParseAddr("203.0.113.7"), Flags: mp.FlagSignal}                    // someone else's
	k.eps[8] = mp.Endpoint{ID: 8, Addr: netip.MustParseAddr("198.51.100.2"), Flags: mp.FlagImplicit | mp.FlagSignal} // kernel-made for a join
	k.nextID = 9
	store := &memStore{state: statefile.State{Version: 1, Endpoints: []statefile.Endpoint{{ID: 6, Addr: netip.MustParseAddr("198.18.5.5")}}}}
	h := startEngine(t, parseConfig(t, ""), k, store, nil)
	h.waitFor("stale endpoint removed", hasAddrs("192.0.2.2", "198.51.100.2", "203.0.113.7"))
	eps, _, _ := k.snapshot()
	for _, ep := range eps {
		switch ep.Addr.String() {
		case "192.0.2.2":
			if ep.ID != 5 {
				t.Errorf("adopted endpoint changed id: %v", ep)
			}
		case "198.51.100.2":
			if ep.ID != 8 || ep.Flags != mp.FlagSubflow {
				t.Errorf("implicit endpoint on a managed address = %v, want it replaced in place as subflow", ep)
			}
		case "203.0.113.7":
			if ep != k.eps[7] {
				t.Errorf("foreign endpoint touched: %v", ep)
			}
		}
	}
}

// Hand-made endpoints that are not exactly what we would create are never
// deleted or rebuilt, even on a managed interface and with no state file:
// a VIP not (yet) on the host, and a signal endpoint where we would make a
// subflow one. Their addresses are left to them and they count against our
// share of the kernel's slots.
func TestEngineLeavesHandMadeEndpointsAlone(t *testing.T) {
	k := newFakeKernel(clientNet())
	vip := mp.Endpoint{ID: 51, Addr: netip.MustParseAddr("203.0.113.99"), Flags: mp.FlagSignal, IfIndex: 2}
	signal := mp.Endpoint{ID: 52, Addr: netip.MustParseAddr("198.51.100.2"), Flags: mp.FlagSignal, IfIndex: 3}
	k.eps[51], k.eps[52] = vip, signal
	store := &memStore{}
	h := startEngine(t, parseConfig(t, ""), k, store, nil)
	h.waitFor("eth1's endpoint", hasAddrs("192.0.2.2", "198.51.100.2", "203.0.113.99"))
	h.e.Resync("test")
	st := h.waitStatus("resynced", func(st Status) bool { return st.Pending == 0 })
	eps, _, log := k.snapshot()
	for _, want := range []mp.Endpoint{vip, signal} {
		if !slices.Contains(eps, want) {
			t.Errorf("hand-made endpoint %v was changed or deleted; table %v\n%s", want, eps, strings.Join(log, "\n"))
		}
	}
	for _, r := range store.get().Endpoints {
		if r.ID == 51 || r.ID == 52 {
			t.Errorf("hand-made endpoint %d recorded as ours", r.ID)
		}
	}
	i := slices.IndexFunc(st.Addresses, func(a AddressStatus) bool { return a.Addr.Addr == signal.Addr })
	if i < 0 || !strings.Contains(st.Addresses[i].Reason, "a foreign endpoint id 52") {
		t.Errorf("198.51.100.2 status = %+v, want it left to the foreign endpoint id 52", st.Addresses)
	}
	for _, e := range st.Endpoints {
		if (e.ID == 51 || e.ID == 52) && e.Owner != OwnerForeign {
			t.Errorf("endpoint %d shown as %q, want foreign", e.ID, e.Owner)
		}
	}
}

func TestEngineAddressAndCarrierChanges(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, nil)

	// An address goes: routing first, then the endpoint.
	a := k.net.Addrs[netstate.AddrKey{IfIndex: 3, Addr: netip.MustParseAddr("198.51.100.2")}]
	h.w.send(k.change(netstate.Update{Kind: netstate.AddrUpdate, Deleted: true, Addr: a}))
	h.waitFor("endpoint of removed address gone", hasAddrs("192.0.2.2"))
	_, _, log := k.snapshot()
	ruleAt := slices.IndexFunc(log, func(s string) bool { return s == "delete rule 198.51.100.2" })
	epAt := slices.IndexFunc(log, func(s string) bool { return strings.HasPrefix(s, "delete endpoint 198.51.100.2") })
	if ruleAt < 0 || epAt < 0 || ruleAt > epAt {
		t.Errorf("rule deleted at %d, endpoint at %d: want the rule first\n%s", ruleAt, epAt, strings.Join(log, "\n"))
	}
	h.waitFor("the initial subflows from the removed address closed", func(_ []mp.Endpoint, _ mp.Limits, log []string) bool {
		return slices.Contains(log, "close initial 198.51.100.2")
	})

	// It comes back: routing first, then the endpoint.
	n := len(log)
	h.w.send(k.change(netstate.Update{Kind: netstate.AddrUpdate, Addr: a}))
	h.waitFor("endpoint back", hasAddrs("192.0.2.2", "198.51.100.2"))
	_, _, log = k.snapshot()
	log = log[n:]
	ruleAt = slices.Index(log, "add rule 198.51.100.2")
	epAt = slices.IndexFunc(log, func(s string) bool { return strings.HasPrefix(s, "add endpoint 198.51.100.2") })
	if ruleAt < 0 || epAt < 0 || ruleAt > epAt {
		t.Errorf("rule added at %d, endpoint at %d: want the rule first\n%s", ruleAt, epAt, strings.Join(log, "\n"))
	}

	// Carrier lost and back.
	eth1 := k.net.Links[2]
	down := eth1
	down.Flags &^= netstate.LinkRunning | netstate.LinkLowerUp
	h.w.send(k.change(netstate.Update{Kind: netstate.LinkUpdate, Link: down}))
	h.waitFor("carrier loss withdraws eth1", hasAddrs("198.51.100.2"))
	h.waitFor("the initial subflows over the dead link closed", func(_ []mp.Endpoint, _ mp.Limits, log []string) bool {
		return slices.Contains(log, "close initial 192.0.2.2")
	})
	k.mu.Lock()
	_, ruleLeft := k.net.Rules[netstate.Rule{Priority: 10000, Src: netip.MustParsePrefix("192.0.2.2/32"), Table: 10002, Protocol: 177}]
	k.mu.Unlock()
	if ruleLeft {
		t.Error("the rule of a link without carrier is still there")
	}
	h.w.send(k.change(netstate.Update{Kind: netstate.LinkUpdate, Link: eth1}))
	h.waitFor("carrier back restores eth1", hasAddrs("192.0.2.2", "198.51.100.2"))
}

func TestEngineFlappingLinkIsHeldDown(t *testing.T) {
	k := newFakeKernel(clientNet())
	hold := FlapPolicy{Threshold: 3, Window: time.Hour, Initial: time.Hour, Max: time.Hour, Quiet: time.Hour}
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, func(o *Options) { o.Flap = hold })
	eth1 := k.net.Links[2]
	down := eth1
	down.Flags &^= netstate.LinkRunning
	for range 3 {
		h.w.send(k.change(netstate.Update{Kind: netstate.LinkUpdate, Link: down}))
		h.waitFor("withdrawn", hasAddrs("198.51.100.2"))
		h.w.send(k.change(netstate.Update{Kind: netstate.LinkUpdate, Link: eth1}))
	}
	h.waitStatus("192.0.2.2 held down after the third flap", func(st Status) bool {
		return slices.ContainsFunc(st.Addresses, func(a AddressStatus) bool {
			return a.Addr.Addr.String() == "192.0.2.2" && strings.Contains(a.Reason, "held down after flapping")
		})
	})
	if eps, _, _ := k.snapshot(); slices.Contains(addrsOf(eps), "192.0.2.2") {
		t.Error("a link held down after flapping got its endpoint back")
	}
	if h.logs.FilterMessageSnippet("interface is flapping").Len() != 1 {
		t.Errorf("want one flapping warning, logs: %v", h.logs.All())
	}
	h.advanceUntil("the endpoint back once the hold-down is over", 10*time.Minute, hasAddrs("192.0.2.2", "198.51.100.2"))
}

func TestEngineRetriesFailedWriteAndLogsOnce(t *testing.T) {
	k := newFakeKernel(clientNet())
	k.failAdd = 4
	h := startEngine(t, parseConfig(t, "[daemon]\nresync_interval = \"0s\"\n"), k, &memStore{}, nil)
	h.advanceUntil("both endpoints after retries", 10*time.Second, hasAddrs("192.0.2.2", "198.51.100.2"))
	warns := h.logs.FilterMessage("kernel write failed, will retry").All()
	perOp := map[string]int{}
	for _, w := range warns {
		perOp[w.ContextMap()["op"].(string)]++
	}
	for op, n := range perOp {
		if n != 1 {
			t.Errorf("%q logged %d warnings for one cause, want 1", op, n)
		}
	}
	if len(perOp) == 0 {
		t.Error("no failure was logged")
	}
	if h.logs.FilterMessage("full resync").Len() != 0 {
		t.Error("a failed write triggered a resync")
	}
}

func TestEngineRepairsFlushAndRuleDeletion(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, nil)
	k.Flush()
	h.e.Resync("test")
	h.waitFor("endpoints restored after a flush", hasAddrs("192.0.2.2", "198.51.100.2"))

	r := netstate.Rule{Priority: 10000, Src: netip.MustParsePrefix("192.0.2.2/32"), Table: 10002, Protocol: 177}
	_, _, log := k.snapshot()
	n := len(log)
	if err := k.DeleteRule(r); err != nil {
		t.Fatal(err)
	}
	h.w.send(netstate.Update{Kind: netstate.RuleUpdate, Deleted: true, Rule: r})
	h.waitFor("rule restored", func(_ []mp.Endpoint, _ mp.Limits, log []string) bool {
		return slices.Contains(log[n:], "add rule 192.0.2.2")
	})
}

func TestEngineOverflowResyncs(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, nil)
	// A change the watcher never reported, then an overflow.
	k.change(netstate.Update{Kind: netstate.AddrUpdate, Addr: netstate.Addr{IfIndex: 3, Addr: netip.MustParseAddr("198.51.100.3"), Prefix: netip.MustParsePrefix("198.51.100.3/24")}})
	h.w.ch <- watchItem{err: rtnl.ErrOverflow}
	h.waitFor("the unreported address managed after the resync", hasAddrs("192.0.2.2", "198.51.100.2", "198.51.100.3"))
	if h.logs.FilterMessage("full resync").FilterField(zap.String("reason", "rtnetlink overflow")).Len() != 1 {
		t.Errorf("want one resync logged for the overflow")
	}
}

func TestEngineReloadChangesFlagsInPlace(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, nil)
	before, _, log := k.snapshot()
	n := len(log)
	if err := h.e.Reload(context.Background(), parseConfig(t, "[[interface]]\nmatch = \"eth2\"\nflags = [\"subflow\", \"backup\"]\n")); err != nil {
		t.Fatal(err)
	}
	h.waitFor("backup flag set", func(eps []mp.Endpoint, _ mp.Limits, _ []string) bool {
		return slices.ContainsFunc(eps, func(e mp.Endpoint) bool { return e.Flags&mp.FlagBackup != 0 })
	})
	after, _, log := k.snapshot()
	for _, l := range log[n:] {
		if strings.HasPrefix(l, "delete endpoint") || strings.HasPrefix(l, "add endpoint") {
			t.Errorf("reload re-created an endpoint: %q", l)
		}
	}
	for i := range before {
		if before[i].ID != after[i].ID {
			t.Errorf("ids changed: %v -> %v", before, after)
		}
	}
	// Unmanaging a working interface deletes its endpoint but leaves the
	// connections' initial subflows from it alone.
	if err := h.e.Reload(context.Background(), parseConfig(t, "[endpoints]\ninclude = [\"eth1\"]\n")); err != nil {
		t.Fatal(err)
	}
	h.waitFor("eth2 no longer managed", hasAddrs("192.0.2.2"))
	h.stop()
	if _, _, log := k.snapshot(); slices.ContainsFunc(log, func(s string) bool { return strings.HasPrefix(s, "close initial") }) {
		t.Errorf("initial subflows closed although the address still works:\n%s", strings.Join(log, "\n"))
	}
	h = startEngine(t, parseConfig(t, ""), k, &memStore{}, nil)
	if err := h.e.Reload(context.Background(), parseConfig(t, "[routing]\nprotocol = 178\n")); err == nil || !strings.Contains(err.Error(), "routing.protocol") {
		t.Errorf("reload changing the protocol = %v, want an error naming routing.protocol", err)
	}
}

func TestEngineCapTakesSlotFromWorse(t *testing.T) {
	b := newNet()
	for i := 2; i <= 9; i++ {
		b.link(i, "eth"+string(rune('0'+i)), up).addr(i, "198.51.100."+string(rune('0'+i))+"/24", 0)
	}
	k := newFakeKernel(b.s)
	h := startEngine(t, parseConfig(t, "[routing]\nenabled = false\n"), k, &memStore{}, nil)
	eps, _, _ := k.snapshot()
	if len(eps) != 8 {
		t.Fatalf("endpoints = %v, want 8", eps)
	}
	// A better candidate (lower ifindex) appears: the worst one (eth9)
	// gives up its slot.
	l := netstate.Link{Index: 1, Name: "eth1", Flags: up}
	a := netstate.Addr{IfIndex: 1, Addr: netip.MustParseAddr("192.0.2.2"), Prefix: netip.MustParsePrefix("192.0.2.2/24")}
	h.w.send(k.change(netstate.Update{Kind: netstate.LinkUpdate, Link: l}), k.change(netstate.Update{Kind: netstate.AddrUpdate, Addr: a}))
	h.waitFor("better candidate in, worst out", func(eps []mp.Endpoint, _ mp.Limits, _ []string) bool {
		got := addrsOf(eps)
		return len(got) == 8 && slices.Contains(got, "192.0.2.2") && !slices.Contains(got, "198.51.100.9")
	})
	capLogs := h.logs.FilterMessageSnippet("more candidate addresses than the kernel's endpoint limit").All()
	if len(capLogs) != 1 || capLogs[0].ContextMap()["from"] != "eth9 198.51.100.9" || !strings.Contains(capLogs[0].Message, "priority") {
		t.Errorf("want one cap log line naming eth9's address, got %v; all: %v", capLogs, h.logs.All())
	}
}

func TestEngineNewAddressWaitsForGatewayThenRoutesFirst(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, func(o *Options) { o.GatewayWait = time.Hour })
	// A DHCP client sets the address, then the default route.
	l := netstate.Link{Index: 4, Name: "eth3", Flags: up}
	a := netstate.Addr{IfIndex: 4, Addr: netip.MustParseAddr("198.18.0.2"), Prefix: netip.MustParsePrefix("198.18.0.2/24")}
	h.w.send(k.change(netstate.Update{Kind: netstate.LinkUpdate, Link: l}), k.change(netstate.Update{Kind: netstate.AddrUpdate, Addr: a}))
	h.waitStatus("the new address waiting for its gateway", func(st Status) bool {
		return slices.ContainsFunc(st.Addresses, func(as AddressStatus) bool {
			return as.Addr.Addr == a.Addr && strings.Contains(as.Reason, "waiting for a default route on eth3")
		})
	})
	if eps, _, _ := k.snapshot(); slices.Contains(addrsOf(eps), "198.18.0.2") {
		t.Fatal("endpoint added before its interface had a gateway")
	}
	_, _, log := k.snapshot()
	n := len(log)
	r := netstate.Route{Table: 254, Protocol: 16, Type: netstate.RouteTypeUnicast, Dst: netip.MustParsePrefix("0.0.0.0/0"), Priority: 300,
		NextHops: []netstate.NextHop{{Gateway: netip.MustParseAddr("198.18.0.1"), IfIndex: 4}}}
	h.w.send(k.change(netstate.Update{Kind: netstate.RouteUpdate, Route: r}))
	h.waitFor("the endpoint once the gateway is known", hasAddrs("192.0.2.2", "198.51.100.2", "198.18.0.2"))
	_, _, log = k.snapshot()
	log = log[n:]
	routeAt := slices.IndexFunc(log, func(s string) bool { return strings.HasPrefix(s, "add route default via 198.18.0.1") })
	epAt := slices.IndexFunc(log, func(s string) bool { return strings.HasPrefix(s, "add endpoint 198.18.0.2") })
	if routeAt < 0 || routeAt > epAt {
		t.Errorf("default route written at %d, endpoint at %d: want the route first\n%s", routeAt, epAt, strings.Join(log, "\n"))
	}
}

func TestEngineGatewayWaitEnds(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, func(o *Options) { o.GatewayWait = time.Minute })
	l := netstate.Link{Index: 4, Name: "eth3", Flags: up}
	a := netstate.Addr{IfIndex: 4, Addr: netip.MustParseAddr("198.18.0.2"), Prefix: netip.MustParsePrefix("198.18.0.2/24")}
	h.w.send(k.change(netstate.Update{Kind: netstate.LinkUpdate, Link: l}), k.change(netstate.Update{Kind: netstate.AddrUpdate, Addr: a}))
	h.waitStatus("the new address waiting for its gateway", func(st Status) bool {
		return slices.ContainsFunc(st.Addresses, func(as AddressStatus) bool { return as.Addr.Addr == a.Addr && strings.Contains(as.Reason, "waiting") })
	})
	h.clock.Advance(59 * time.Second)
	h.settle()
	if eps, _, _ := k.snapshot(); slices.Contains(addrsOf(eps), "198.18.0.2") {
		t.Fatal("the endpoint was added before the gateway wait was over")
	}
	h.advanceUntil("the endpoint without a gateway once the wait is over", time.Second, hasAddrs("192.0.2.2", "198.51.100.2", "198.18.0.2"))
}

func TestEngineAddNeverOvertakesTheRemovalThatFreesItsSlot(t *testing.T) {
	b := newNet()
	for i := 2; i <= 8; i++ {
		b.link(i, "eth"+string(rune('0'+i)), up).addr(i, "198.51.100."+string(rune('0'+i))+"/24", 0)
	}
	k := newFakeKernel(b.s)
	h := startEngine(t, parseConfig(t, "[routing]\nenabled = false\n"), k, &memStore{}, nil)
	h.waitFor("7 endpoints", func(eps []mp.Endpoint, _ mp.Limits, _ []string) bool { return len(eps) == 7 })

	// An eighth address: its addition is held in the kernel...
	gate := make(chan struct{})
	k.mu.Lock()
	k.addGate = gate
	k.mu.Unlock()
	l9 := netstate.Link{Index: 9, Name: "eth9", Flags: up}
	a9 := netstate.Addr{IfIndex: 9, Addr: netip.MustParseAddr("198.51.100.9"), Prefix: netip.MustParsePrefix("198.51.100.9/24")}
	h.w.send(k.change(netstate.Update{Kind: netstate.LinkUpdate, Link: l9}), k.change(netstate.Update{Kind: netstate.AddrUpdate, Addr: a9}))
	h.waitStatus("eth9's addition under way", func(st Status) bool { return st.Pending > 0 })
	// ...while a better one appears: it must wait for eth9's endpoint to be
	// removed, not be added into a full table.
	l1 := netstate.Link{Index: 1, Name: "eth1", Flags: up}
	a1 := netstate.Addr{IfIndex: 1, Addr: netip.MustParseAddr("192.0.2.2"), Prefix: netip.MustParsePrefix("192.0.2.2/24")}
	h.w.send(k.change(netstate.Update{Kind: netstate.LinkUpdate, Link: l1}), k.change(netstate.Update{Kind: netstate.AddrUpdate, Addr: a1}))
	h.waitStatus("the better address decided on", func(st Status) bool {
		return slices.ContainsFunc(st.Addresses, func(a AddressStatus) bool {
			return a.Addr.Addr == a9.Addr && strings.Contains(a.Reason, "8-endpoint limit")
		})
	})
	k.mu.Lock()
	k.addGate = nil
	k.mu.Unlock()
	close(gate)
	h.waitFor("the better address in, eth9 out", func(eps []mp.Endpoint, _ mp.Limits, _ []string) bool {
		got := addrsOf(eps)
		return len(got) == 8 && slices.Contains(got, "192.0.2.2") && !slices.Contains(got, "198.51.100.9")
	})
	if _, _, log := k.snapshot(); slices.ContainsFunc(log, func(s string) bool { return strings.HasPrefix(s, "table full") }) {
		t.Errorf("an addition hit a full table:\n%s", strings.Join(log, "\n"))
	}
}

func TestEngineReloadAppliesTheResyncInterval(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, "[daemon]\nresync_interval = \"0s\"\n"), k, &memStore{}, nil)
	if err := h.e.Reload(context.Background(), parseConfig(t, "[daemon]\nresync_interval = \"1s\"\n")); err != nil {
		t.Fatal(err)
	}
	h.waitStatus("the reload's own resync done", func(st Status) bool { return st.Pending == 0 })
	// A flush behind our back is repaired only by the safety-net resync,
	// which the reload switched on.
	k.Flush()
	h.advanceUntil("endpoints restored by the timer", time.Second, hasAddrs("192.0.2.2", "198.51.100.2"))
	if n := h.logs.FilterMessage("safety-net check of the MPTCP endpoints and limits").Len(); n == 0 {
		t.Error("no safety-net check logged after the reload set an interval")
	}
}

// The safety-net timer re-reads the MPTCP state on every tick and
// everything on every tenth: links, addresses, routes and rules have
// events of their own.
func TestEngineSafetyNetIsFullEveryTenthTick(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, "[daemon]\nresync_interval = \"1s\"\n"), k, &memStore{}, nil)
	for range 25 {
		h.settle()
		h.clock.Advance(time.Second)
		time.Sleep(time.Millisecond)
	}
	h.settle()
	checks := h.logs.FilterMessage("safety-net check of the MPTCP endpoints and limits").Len()
	full := h.logs.FilterMessage("full resync").FilterField(zap.String("reason", "safety-net timer")).Len()
	if ticks := checks + full; ticks < 20 || full != ticks/fullEvery {
		t.Errorf("%d ticks: %d checks, %d full resyncs; want one full resync every %d", ticks, checks, full, fullEvery)
	}
}

// Routes and rules that carry our protocol are ours only in our tables and
// at our rule priority: another program's routes in main and its rule at
// another priority stay, even with the same protocol number.
func TestEngineOurProtocolAloneIsNoOwnership(t *testing.T) {
	k := newFakeKernel(clientNet())
	mainRoute := netstate.Route{Table: 254, Protocol: 177, Type: netstate.RouteTypeUnicast, Dst: netip.MustParsePrefix("203.0.113.0/24"),
		Priority: 50, NextHops: []netstate.NextHop{{IfIndex: 2}}}
	otherRule := netstate.Rule{Priority: 500, Src: netip.MustParsePrefix("203.0.113.7/32"), Table: 254, Protocol: 177}
	k.net.Routes[mainRoute.Key()] = mainRoute
	k.net.Rules[otherRule] = struct{}{}
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, nil)
	h.e.Resync("test")
	h.settle()
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.net.Routes[mainRoute.Key()]; !ok {
		t.Error("a route tagged with our protocol in main was deleted")
	}
	if _, ok := k.net.Rules[otherRule]; !ok {
		t.Error("a rule tagged with our protocol at another priority was deleted")
	}
}

// A daemon started with another table base and rule priority than the last
// run still finds and removes what that run wrote, then records the new
// settings; so does a reload that changes them.
func TestEngineRemovesWhatEarlierRoutingSettingsLeft(t *testing.T) {
	k := newFakeKernel(clientNet())
	store := &memStore{}
	startEngine(t, parseConfig(t, ""), k, store, nil).stop()
	if r := store.get().Routing; r == nil || r.TableBase != 10000 || r.RulePriority != 10000 || r.Protocol != 177 {
		t.Fatalf("recorded routing settings = %+v", r)
	}
	tables := func() (rules, routes []uint32) {
		k.mu.Lock()
		defer k.mu.Unlock()
		for r := range k.net.Rules {
			rules = append(rules, r.Priority)
		}
		for _, r := range k.net.Routes {
			if r.Protocol == 177 {
				routes = append(routes, r.Table)
			}
		}
		slices.Sort(rules)
		slices.Sort(routes)
		return rules, routes
	}

	h := startEngine(t, parseConfig(t, "[routing]\ntable_base = 20000\nrule_priority = 20000\n"), k, store, nil)
	h.settle()
	rules, routes := tables()
	if !slices.Equal(rules, []uint32{20000, 20000}) || !slices.Equal(routes, []uint32{20002, 20002, 20003, 20003}) {
		t.Errorf("after a restart with new settings: rule priorities %v, route tables %v; want only the new ones", rules, routes)
	}
	h.waitStatus("settings recorded", func(Status) bool { r := store.get().Routing; return r != nil && r.TableBase == 20000 })

	if err := h.e.Reload(context.Background(), parseConfig(t, "[routing]\ntable_base = 20000\nrule_priority = 300\n")); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if rules, _ := tables(); !slices.Equal(rules, []uint32{300, 300}) {
		t.Errorf("after a reload with a new rule priority: %v, want only the new ones", rules)
	}
	h.stop()
	if r := store.get().Routing; r == nil || r.RulePriority != 300 {
		t.Errorf("recorded routing settings after the reload = %+v", r)
	}
}

// A failed save of the ownership record is retried until it succeeds, and
// records whose endpoint left the table (a flush) are forgotten at the next
// resync, before the endpoints come back with new ids.
func TestEngineRecordIsRetriedAndPruned(t *testing.T) {
	k := newFakeKernel(clientNet())
	store := &memStore{}
	h := startEngine(t, parseConfig(t, "[daemon]\nresync_interval = \"0s\"\n"), k, store, nil)
	h.waitStatus("both recorded", func(Status) bool { return len(store.get().Endpoints) == 2 })

	store.mu.Lock()
	store.failSaves = 3
	store.mu.Unlock()
	k.Flush()
	k.nextID = 7
	h.e.Resync("test")
	h.settle()
	h.advanceUntil("the record saved after failures, with the new ids only", time.Minute, func([]mp.Endpoint, mp.Limits, []string) bool {
		var ids []uint8
		for _, r := range store.get().Endpoints {
			ids = append(ids, r.ID)
		}
		slices.Sort(ids)
		return slices.Equal(ids, []uint8{7, 8})
	})
	if n := h.logs.FilterMessageSnippet("saving the ownership record failed").Len(); n != 1 {
		t.Errorf("the failed save was logged %d times, want once per cause", n)
	}
}

// A competitor that removes our rule each time it is back does not drive
// an endless rewrite loop: after a few repairs they are held off, longer
// each time, and one warning says what keeps being undone and who may do
// it.
func TestEngineRepairsAreRateLimited(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, "[daemon]\nresync_interval = \"0s\"\n"), k, &memStore{}, func(o *Options) {
		o.Competitor = func() string { return "NetworkManager is running" }
	})
	r := netstate.Rule{Priority: 10000, Src: netip.MustParsePrefix("192.0.2.2/32"), Table: 10002, Protocol: 177}
	heldOff := false
	for range 30 {
		h.settle()
		k.mu.Lock()
		_, there := k.net.Rules[r]
		k.mu.Unlock()
		if there {
			if err := k.DeleteRule(r); err != nil {
				t.Fatal(err)
			}
			h.w.send(netstate.Update{Kind: netstate.RuleUpdate, Deleted: true, Rule: r})
		}
		st := h.waitStatus("the removal taken in", func(Status) bool { return true })
		heldOff = heldOff || len(st.HeldOff) > 0
		h.clock.Advance(10 * time.Second)
		time.Sleep(time.Millisecond)
	}
	_, _, log := k.snapshot()
	if n := countOf(log, "add rule 192.0.2.2"); n < 5 || n > 8 {
		t.Errorf("the rule was written %d times in 5 minutes of removals, want 5 repairs and then about one per hold-off", n)
	}
	if !heldOff {
		t.Error("the status never showed the held-off repair")
	}
	warns := h.logs.FilterMessageSnippet("something keeps removing what mptcpgd writes").All()
	if len(warns) != 1 || warns[0].ContextMap()["suspect"] != "NetworkManager is running" {
		t.Errorf("warnings = %v, want one naming the suspect", warns)
	}
	if h.logs.FilterMessageSnippet("rule restored").Len() == 0 {
		t.Error("repairs were not logged as repairs")
	}
}

func countOf(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if l == s {
			n++
		}
	}
	return n
}

// MPTCP switched off while running is noticed at the next resync, said
// once, shown in the status and the summary, and noticed again when it
// comes back.
func TestEngineNoticesMPTCPDisabled(t *testing.T) {
	k := newFakeKernel(clientNet())
	var mu sync.Mutex
	var off error
	var summaries []string
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, func(o *Options) {
		o.Enabled = func() error { mu.Lock(); defer mu.Unlock(); return off }
		o.OnSummary = func(s string) { mu.Lock(); defer mu.Unlock(); summaries = append(summaries, s) }
	})
	set := func(err error) { mu.Lock(); off = err; mu.Unlock() }
	set(errors.New("MPTCP is disabled in this network namespace (net.mptcp.enabled=0)"))
	for range 2 {
		h.e.Resync("test")
	}
	st := h.waitStatus("MPTCP off noticed", func(st Status) bool { return st.Disabled != "" })
	if !strings.Contains(st.Disabled, "net.mptcp.enabled=0") {
		t.Errorf("status says %q", st.Disabled)
	}
	h.settle()
	mu.Lock()
	last := summaries[len(summaries)-1]
	mu.Unlock()
	if !strings.Contains(last, "MPTCP disabled") {
		t.Errorf("summary %q does not say MPTCP is off", last)
	}
	set(nil)
	h.e.Resync("test")
	h.waitStatus("MPTCP back noticed", func(st Status) bool { return st.Disabled == "" })
	if n := h.logs.FilterMessageSnippet("MPTCP is off").Len(); n != 1 {
		t.Errorf("MPTCP off logged %d times, want once", n)
	}
	if h.logs.FilterMessage("MPTCP is enabled again").Len() != 1 {
		t.Error("MPTCP back not logged")
	}
}

// An endpoint whose source routing the kernel refused is not added (its
// subflows would leave by the other uplink): the address waits, with the
// kernel's reason, while the other uplink is unaffected.
func TestEngineHoldsEndpointWhoseRoutingIsRefused(t *testing.T) {
	k := newFakeKernel(clientNet())
	k.refuseRoute = func(r netstate.Route) error {
		if r.IsDefault() && r.NextHops[0].IfIndex == 3 {
			return &nlerr.Error{Op: "add route " + r.String(), Err: unix.ENETUNREACH, Message: "Nexthop has invalid gateway"}
		}
		return nil
	}
	h := startEngine(t, parseConfig(t, "[[interface]]\nmatch = \"eth2\"\ngateway4 = \"203.0.113.1\"\n"), k, &memStore{}, nil)
	st := h.waitStatus("eth2's address held", func(st Status) bool {
		return slices.ContainsFunc(st.Addresses, func(a AddressStatus) bool {
			return a.Addr.Addr.String() == "198.51.100.2" && strings.Contains(a.Reason, "Nexthop has invalid gateway")
		})
	})
	if eps, _, _ := k.snapshot(); !slices.Equal(addrsOf(eps), []string{"192.0.2.2"}) {
		t.Errorf("endpoints = %v, want only eth1's", addrsOf(eps))
	}
	for _, i := range st.Interfaces {
		for _, g := range i.Gateways {
			if g.Addr.String() == "203.0.113.1" && !strings.Contains(g.Detail, "outside eth2's prefixes") {
				t.Errorf("gateway detail %q does not say it is outside eth2's prefixes", g.Detail)
			}
		}
	}
}

// An administrator who lost the state file takes back the endpoints that no
// longer match exactly: adopted, they are converged to the configuration.
func TestEngineAdoptTakesForeignEndpointsOnManagedAddresses(t *testing.T) {
	k := newFakeKernel(clientNet())
	k.eps[52] = mp.Endpoint{ID: 52, Addr: netip.MustParseAddr("198.51.100.2"), Flags: mp.FlagSignal, IfIndex: 3}
	vipEP := mp.Endpoint{ID: 53, Addr: netip.MustParseAddr("203.0.113.99"), Flags: mp.FlagSignal}
	k.eps[53] = vipEP
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, nil)
	took, err := h.e.Adopt(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(took) != 1 || took[0].ID != 52 {
		t.Fatalf("adopted %v, want only the endpoint on eth2's address", took)
	}
	h.waitFor("198.51.100.2 converged to subflow, the VIP left alone", func(eps []mp.Endpoint, _ mp.Limits, _ []string) bool {
		var sub, vip bool
		for _, ep := range eps {
			sub = sub || (ep.Addr.String() == "198.51.100.2" && ep.Flags == mp.FlagSubflow)
			vip = vip || ep == vipEP
		}
		return sub && vip
	})
}

// fakeConns is a connection view for join supervision.
type fakeConns struct {
	mu      sync.Mutex
	conns   []connview.Connection
	changed chan struct{}
}

func (f *fakeConns) Clients() []connview.Connection {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.conns)
}

func (f *fakeConns) JoinsChanged() <-chan struct{} { return f.changed }

func (f *fakeConns) set(cs ...connview.Connection) {
	f.mu.Lock()
	f.conns = cs
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// A join that failed gets its endpoint re-added (removed and added: the
// in-kernel path manager's only retry), but never while another connection
// has a working subflow over it.
func TestEngineRetriesFailedJoins(t *testing.T) {
	k := newFakeKernel(clientNet())
	conns := &fakeConns{changed: make(chan struct{}, 1)}
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, func(o *Options) { o.Connections = conns })
	now := h.clock.Now()
	eth1, eth2 := netip.MustParseAddrPort("192.0.2.2:40000"), netip.MustParseAddrPort("198.51.100.2:40001")
	server := netip.MustParseAddrPort("203.0.113.1:80")
	failedConn := connview.Connection{Token: 1, Local: eth1, Remote: server, Established: true, Since: now,
		Subflows:    []connview.Subflow{{Local: eth1, Remote: server, Initial: true}},
		FailedJoins: []connview.FailedJoin{{Local: eth2.Addr(), LocalID: 2, Errno: unix.EHOSTUNREACH, At: now.Add(time.Millisecond)}}}
	conns.set(failedConn)
	h.advanceUntil("eth2's endpoint re-added", time.Second, func(_ []mp.Endpoint, _ mp.Limits, log []string) bool {
		return slices.Contains(log, "delete endpoint 198.51.100.2 id 2") && slices.ContainsFunc(log, func(l string) bool {
			return strings.HasPrefix(l, "add endpoint 198.51.100.2 id 3")
		})
	})
	st := h.waitStatus("the missing path reported", func(st Status) bool { return len(st.Missing) > 0 })
	if !strings.Contains(st.Missing[0].Reason, "EHOSTUNREACH") {
		t.Errorf("reason %q does not name the errno", st.Missing[0].Reason)
	}

	// Another connection now has a working subflow over eth2: the failing
	// one is reported, the endpoint left alone.
	working := connview.Connection{Token: 2, Local: eth1, Remote: server, Established: true, Since: now,
		Subflows: []connview.Subflow{{Local: eth1, Remote: server, Initial: true}, {Local: eth2, Remote: server, LocalID: 3}}}
	later := failedConn
	later.FailedJoins = []connview.FailedJoin{{Local: eth2.Addr(), LocalID: 3, Errno: unix.ECONNRESET, At: h.clock.Now().Add(time.Millisecond)}}
	_, _, log := k.snapshot()
	n := len(log)
	conns.set(later, working)
	for range 20 {
		h.clock.Advance(10 * time.Second)
		h.settle()
	}
	if _, _, log := k.snapshot(); slices.ContainsFunc(log[n:], func(l string) bool { return strings.HasPrefix(l, "delete endpoint 198.51.100.2") }) {
		t.Errorf("the endpoint was removed although a connection had a working subflow over it:\n%s", strings.Join(log[n:], "\n"))
	}
	if st := h.waitStatus("the failing connection reported", func(st Status) bool { return len(st.Missing) > 0 }); !strings.Contains(st.Missing[0].Reason, "not retried") {
		t.Errorf("reason %q does not say why it is not retried", st.Missing[0].Reason)
	}
}
