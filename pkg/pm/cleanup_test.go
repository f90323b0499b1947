package pm

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	mp "github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

func TestCleanupRemovesOnlyOursAndRestoresLimits(t *testing.T) {
	k := newFakeKernel(clientNet())
	foreignRule := netstate.Rule{Priority: 10000, Src: netip.MustParsePrefix("192.0.2.2/32"), Table: 10002}
	foreignRoute := netstate.Route{Table: 10002, Protocol: 4, Type: netstate.RouteTypeUnicast, Dst: netip.MustParsePrefix("203.0.113.0/24"),
		Priority: 1024, NextHops: []netstate.NextHop{{IfIndex: 2}}}
	k.net.Rules[foreignRule] = struct{}{}
	k.net.Routes[foreignRoute.Key()] = foreignRoute
	k.eps[50] = mp.Endpoint{ID: 50, Addr: netip.MustParseAddr("203.0.113.50"), Flags: mp.FlagSignal}
	store := &memStore{}
	startEngine(t, parseConfig(t, ""), k, store, nil).stop()

	rep, err := Cleanup(parseConfig(t, ""), k, k, k, store)
	if err != nil {
		t.Fatal(err)
	}
	eps, lim, _ := k.snapshot()
	if got := addrsOf(eps); !slices.Equal(got, []string{"203.0.113.50"}) {
		t.Errorf("endpoints after cleanup = %v, want only the foreign one", got)
	}
	if lim != (mp.Limits{Subflows: 2}) {
		t.Errorf("limits after cleanup = %v, want the ones found at first start", lim)
	}
	if len(rep.Endpoints) != 2 || len(rep.Rules) != 2 || len(rep.Routes) != 4 {
		t.Errorf("report: %d endpoints, %d rules, %d routes; want 2, 2, 4", len(rep.Endpoints), len(rep.Rules), len(rep.Routes))
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.net.Rules[foreignRule]; !ok {
		t.Error("cleanup deleted an untagged rule")
	}
	if _, ok := k.net.Routes[foreignRoute.Key()]; !ok {
		t.Error("cleanup deleted an untagged route in our table")
	}
	for _, r := range k.net.Routes {
		if r.Protocol == 177 {
			t.Errorf("route %s of ours left behind", r)
		}
	}
	if st := store.get(); len(st.Endpoints) != 0 || st.InitialLimits != nil {
		t.Errorf("state after cleanup = %+v, want empty", st)
	}
}

type unreadableStore struct{ memStore }

func (*unreadableStore) Load() (statefile.State, error) {
	return statefile.State{}, errors.New("read state file: permission denied")
}

func TestInspectExplainsWithoutTheOwnershipRecord(t *testing.T) {
	k := newFakeKernel(clientNet())
	k.eps[4] = mp.Endpoint{ID: 4, Addr: netip.MustParseAddr("192.0.2.2"), Flags: mp.FlagSubflow, IfIndex: 2}
	st, err := Inspect(parseConfig(t, ""), k, k, &unreadableStore{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Endpoints) != 1 || st.Endpoints[0].Owner != OwnerAdopt {
		t.Errorf("endpoints = %+v, want the exact match on a managed NIC shown as adoptable", st.Endpoints)
	}
	if len(st.Addresses) == 0 || !slices.ContainsFunc(st.Warnings, func(w Warning) bool { return strings.Contains(w.Message, "permission denied") }) {
		t.Errorf("warnings = %q, want the unreadable record named", st.Warnings)
	}
}

// With a state file that cannot be read, cleanup still removes our tagged
// rules and routes, leaves every endpoint and the limits alone, and says
// why.
func TestCleanupWithoutTheRecordRemovesOnlyRouting(t *testing.T) {
	k := newFakeKernel(clientNet())
	store := &memStore{}
	startEngine(t, parseConfig(t, ""), k, store, nil).stop()
	before, lim, _ := k.snapshot()

	rep, err := Cleanup(parseConfig(t, ""), k, k, k, &unreadableStore{})
	if err == nil || !strings.Contains(err.Error(), "endpoints and limits were left") {
		t.Errorf("err = %v, want it to say the endpoints and limits were left", err)
	}
	if len(rep.Rules) != 2 || len(rep.Routes) != 4 {
		t.Errorf("removed %d rules and %d routes, want 2 and 4", len(rep.Rules), len(rep.Routes))
	}
	after, limAfter, _ := k.snapshot()
	if !slices.Equal(before, after) || lim != limAfter {
		t.Errorf("endpoints %v -> %v, limits %v -> %v: want both untouched", before, after, lim, limAfter)
	}
}
