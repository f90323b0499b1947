package pm

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
)

// settableFlags are the flags SET_FLAGS changes in place; any other
// difference needs a delete and an add.
const settableFlags = netlinkmptcp.FlagBackup | netlinkmptcp.FlagFullmesh

// knownFlags are the bits a kernel stores; recent kernels drop others.
const knownFlags = netlinkmptcp.FlagSignal | netlinkmptcp.FlagSubflow | netlinkmptcp.FlagBackup |
	netlinkmptcp.FlagFullmesh | netlinkmptcp.FlagLaminar

// FlagChange is a SET_FLAGS on an endpoint of ours.
type FlagChange struct {
	Endpoint netlinkmptcp.Endpoint
	Flags    netlinkmptcp.Flags
}

// EndpointPlan is the difference between the endpoints we hold and the
// ones the configuration asks for.
type EndpointPlan struct {
	// Delete are endpoints of ours to remove, in order.
	Delete []netlinkmptcp.Endpoint
	// Add are endpoints to create (the kernel picks their ids).
	Add []Endpoint
	// SetFlags change backup/fullmesh in place (no delete, no re-add).
	SetFlags []FlagChange
	// Keep are endpoints of ours that already match, to be recorded as
	// ours with their ids (adoption after a restart).
	Keep []netlinkmptcp.Endpoint
}

// Empty tells whether nothing needs doing.
func (p EndpointPlan) Empty() bool {
	return len(p.Delete) == 0 && len(p.Add) == 0 && len(p.SetFlags) == 0
}

// PlanEndpoints diffs the desired endpoints against the kernel's table.
// owned says which kernel endpoints are ours; nothing else is touched,
// except that an IMPLICIT endpoint on a wanted address is replaced by
// adding that address (the kernel keeps its id).
func PlanEndpoints(desired []Endpoint, kernel []netlinkmptcp.Endpoint, owned map[uint8]bool) EndpointPlan {
	var p EndpointPlan
	byAddr := map[netip.Addr]netlinkmptcp.Endpoint{}
	for _, ep := range kernel {
		byAddr[ep.Addr] = ep
	}
	matched := map[uint8]bool{}
	for _, want := range desired {
		have, ok := byAddr[want.Addr]
		switch {
		case !ok:
			p.Add = append(p.Add, want)
		case !owned[have.ID]:
			if have.Flags&netlinkmptcp.FlagImplicit != 0 {
				p.Add = append(p.Add, want)
			}
		case sameEndpoint(have, want):
			matched[have.ID] = true
			if have.Flags&settableFlags != want.Flags&settableFlags {
				p.SetFlags = append(p.SetFlags, FlagChange{Endpoint: have, Flags: want.Flags & settableFlags})
			} else {
				p.Keep = append(p.Keep, have)
			}
		default:
			// Signal/subflow/laminar, port or device changed: only a new
			// endpoint can carry that.
			p.Add = append(p.Add, want)
		}
	}
	for _, ep := range kernel {
		if owned[ep.ID] && !matched[ep.ID] {
			p.Delete = append(p.Delete, ep)
		}
	}
	return p
}

// sameEndpoint tells whether a kernel endpoint already is the wanted one,
// up to the flags SET_FLAGS can change.
func sameEndpoint(have netlinkmptcp.Endpoint, want Endpoint) bool {
	return have.Port == want.Port && int(have.IfIndex) == want.IfIndex &&
		have.Flags&knownFlags&^settableFlags == want.Flags&knownFlags&^settableFlags
}

// RoutingPlan is the difference between our rules and routes in the
// kernel and the ones wanted.
type RoutingPlan struct {
	AddRules    []netstate.Rule
	DeleteRules []netstate.Rule
	// AddRoutes are new routes; ReplaceRoutes change one of ours in place
	// (a new gateway without a gap).
	AddRoutes     []netstate.Route
	ReplaceRoutes []netstate.Route
	DeleteRoutes  []netstate.Route
	// Conflicts are wanted routes whose place (table, destination, metric)
	// holds a route that is not ours: left alone and reported.
	Conflicts []netstate.Route
}

// PlanRouting diffs wanted rules and routes against the observed ones that
// are ours. Anything else is never deleted or replaced.
func PlanRouting(wantRules []netstate.Rule, wantRoutes []netstate.Route, net netstate.State, ours RoutingOwner) RoutingPlan {
	var p RoutingPlan
	want := map[netstate.Rule]bool{}
	for _, r := range wantRules {
		want[r] = true
		if _, ok := net.Rules[r]; !ok {
			p.AddRules = append(p.AddRules, r)
		}
	}
	for r := range net.Rules {
		if ours.OwnsRule(r) && !want[r] {
			p.DeleteRules = append(p.DeleteRules, r)
		}
	}
	wantKey := map[netstate.RouteKey]bool{}
	for _, r := range wantRoutes {
		wantKey[r.Key()] = true
		have, ok := net.Routes[r.Key()]
		switch {
		case !ok:
			p.AddRoutes = append(p.AddRoutes, r)
		case !ours.OwnsRoute(have):
			p.Conflicts = append(p.Conflicts, r)
		case !have.Equal(r):
			p.ReplaceRoutes = append(p.ReplaceRoutes, r)
		}
	}
	for k, r := range net.Routes {
		if ours.OwnsRoute(r) && !wantKey[k] {
			p.DeleteRoutes = append(p.DeleteRoutes, r)
		}
	}
	sortRules(p.AddRules)
	sortRules(p.DeleteRules)
	sortRoutes(p.DeleteRoutes)
	return p
}

func sortRules(rs []netstate.Rule) {
	slices.SortFunc(rs, func(a, b netstate.Rule) int {
		return cmp.Or(cmp.Compare(a.Table, b.Table), a.Src.Addr().Compare(b.Src.Addr()), cmp.Compare(a.Priority, b.Priority))
	})
}

func sortRoutes(rs []netstate.Route) {
	slices.SortFunc(rs, func(a, b netstate.Route) int {
		return cmp.Or(cmp.Compare(a.Table, b.Table), a.Dst.Addr().Compare(b.Dst.Addr()), cmp.Compare(a.Dst.Bits(), b.Dst.Bits()))
	})
}
