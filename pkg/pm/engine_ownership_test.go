package pm

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	mp "github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

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
