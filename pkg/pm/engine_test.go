package pm

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	mp "github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/nlerr"
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
