package pm

import (
	"errors"
	"fmt"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/nlerr"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

// CleanupReport says what Cleanup removed.
type CleanupReport struct {
	Endpoints []netlinkmptcp.Endpoint
	Rules     []netstate.Rule
	Routes    []netstate.Route
	// Limits are the limits put back, if the state file knew them.
	Limits *netlinkmptcp.Limits
}

// errNeedsPrivilege is what cleanup says for the first refusal for want of
// privilege, instead of one refusal per route.
var errNeedsPrivilege = errors.New("cleanup needs root or CAP_NET_ADMIN")

// Cleanup removes every endpoint, rule and route that is ours and puts back
// the limits found at first start, then empties the state file. Nothing
// that is not ours is touched. Every step is tried; the errors are joined.
// Without a readable state file the rules and routes (which carry our tag)
// are still removed, and the endpoints and limits, which only the file
// proves ours, are left; the error says so.
func Cleanup(cfg *config.Config, k MPTCP, r Routing, n Network, store Store) (CleanupReport, error) {
	var rep CleanupReport
	own, loadErr := store.Load()
	net, _, err := n.Dump()
	if err != nil {
		return rep, fmt.Errorf("read links, addresses, routes and rules: %w", err)
	}
	var errs []error
	owners := routingOwners{RoutingSettings(cfg)}
	if loadErr == nil {
		owners = ownersOf(cfg, own.Routing)
	}
	// Routing first, as on any withdrawal: no subflow is steered through a
	// table that is about to empty.
	plan := PlanRouting(nil, nil, net, owners)
	for _, rule := range plan.DeleteRules {
		if err := r.DeleteRule(rule); err != nil && !errors.Is(err, nlerr.ErrNotFound) {
			if errors.Is(err, nlerr.ErrPermission) {
				return rep, fmt.Errorf("%w: %v", errNeedsPrivilege, err)
			}
			errs = append(errs, err)
			continue
		}
		rep.Rules = append(rep.Rules, rule)
	}
	for _, route := range plan.DeleteRoutes {
		if err := r.DeleteRoute(route); err != nil && !errors.Is(err, nlerr.ErrNotFound) {
			if errors.Is(err, nlerr.ErrPermission) {
				return rep, fmt.Errorf("%w: %v", errNeedsPrivilege, err)
			}
			errs = append(errs, err)
			continue
		}
		rep.Routes = append(rep.Routes, route)
	}
	if loadErr != nil {
		errs = append(errs, fmt.Errorf("%w; our rules and routes were removed, but endpoints and limits were left as they are: only the record proves which are ours", loadErr))
		return rep, errors.Join(errs...)
	}
	eps, err := k.Endpoints()
	if err != nil {
		return rep, errors.Join(append(errs, fmt.Errorf("read MPTCP endpoints: %w", err))...)
	}
	owned := recordedEndpoints(Input{Kernel: eps, Records: own.Endpoints})
	var kept []statefile.Endpoint
	for _, ep := range eps {
		if !owned[ep.ID] {
			continue
		}
		if err := k.DeleteEndpoint(ep.ID); err != nil && !errors.Is(err, netlinkmptcp.ErrNotFound) {
			if errors.Is(err, nlerr.ErrPermission) {
				return rep, fmt.Errorf("%w: %v", errNeedsPrivilege, err)
			}
			errs = append(errs, err)
			kept = append(kept, statefile.Endpoint{ID: ep.ID, Addr: ep.Addr, Port: ep.Port})
			continue
		}
		rep.Endpoints = append(rep.Endpoints, ep)
	}
	if l := own.InitialLimits; l != nil {
		if err := k.SetLimits(l.Update()); err != nil {
			errs = append(errs, err)
		} else {
			rep.Limits = l
		}
	}
	// What could not be removed stays recorded, so a second cleanup (or
	// the daemon) still knows it is ours; restored limits are forgotten so
	// the next first start records the limits of that time.
	next := statefile.State{Endpoints: kept}
	if rep.Limits == nil {
		next.InitialLimits = own.InitialLimits
	}
	if len(errs) > 0 {
		next.Routing = own.Routing
	}
	if err := store.Save(next); err != nil {
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}
