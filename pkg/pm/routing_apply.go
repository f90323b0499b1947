package pm

import (
	"errors"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/nlerr"
)

// routingApply writes a routing plan through the Routing port, inline on
// the engine's goroutine (rtnetlink is fast and takes its own lock, not the
// generic-netlink one), each write under its own retry schedule. The
// engine's view of the network follows what succeeded.
type routingApply struct {
	routing Routing
	retry   *retrier
	repairs *repairs
	log     *logging.Logger
}

// apply writes p in the order that never leaves a subflow steered into an
// empty table: rules out, routes out, routes in, rules in. later defers the
// log lines until the endpoint writes are queued (a log line is a system
// call the fast path need not wait for).
func (a *routingApply) apply(p RoutingPlan, net netstate.State, now time.Time, later func(func())) {
	for _, r := range p.DeleteRules {
		a.write(ruleKey(opDeleteRule, r), now, func() error { return a.routing.DeleteRule(r) }, func() {
			net.Apply(netstate.Update{Kind: netstate.RuleUpdate, Deleted: true, Rule: r})
			later(func() {
				a.log.Info("rule removed", logging.Stringer(logging.FieldAddr, r.Src.Addr()), logging.Uint32(logging.FieldTable, r.Table))
			})
		})
	}
	for _, r := range p.DeleteRoutes {
		a.write(routeKey(opDeleteRoute, r), now, func() error { return a.routing.DeleteRoute(r) }, func() {
			net.Apply(netstate.Update{Kind: netstate.RouteUpdate, Deleted: true, Route: r})
			later(func() {
				a.log.Info("route removed", logging.Stringer("route", r), logging.Uint32(logging.FieldTable, r.Table))
			})
		})
	}
	for _, r := range p.AddRoutes {
		k := routeKey(opAddRoute, r)
		a.write(k, now, func() error { return a.routing.AddRoute(r) }, func() {
			net.Apply(netstate.Update{Kind: netstate.RouteUpdate, Route: r})
			msg := "route added"
			if a.repairs.done(k, now) {
				msg = "route restored (someone else removed it)"
			}
			later(func() { a.logRoute(msg, r, net) })
		})
	}
	for _, r := range p.ReplaceRoutes {
		a.write(routeKey(opReplaceRoute, r), now, func() error { return a.routing.ReplaceRoute(r) }, func() {
			net.Apply(netstate.Update{Kind: netstate.RouteUpdate, Route: r})
			later(func() { a.logRoute("route changed", r, net) })
		})
	}
	for _, r := range p.AddRules {
		k := ruleKey(opAddRule, r)
		a.write(k, now, func() error { return a.routing.AddRule(r) }, func() {
			net.Apply(netstate.Update{Kind: netstate.RuleUpdate, Rule: r})
			msg := "rule added"
			if a.repairs.done(k, now) {
				msg = "rule restored (someone else removed it)"
			}
			later(func() {
				a.log.Info(msg, logging.Stringer(logging.FieldAddr, r.Src.Addr()), logging.Uint32(logging.FieldTable, r.Table), logging.Uint32("priority", r.Priority))
			})
		})
	}
}

// write runs one rtnetlink write unless it is backing off after a failure.
// Deleting what is already gone, or adding what is already there, is done.
func (a *routingApply) write(k opKey, now time.Time, write func() error, done func()) {
	if !a.retry.ready(k, now) || !a.repairs.allowed(k, now) {
		return
	}
	err := write()
	switch {
	case err == nil:
	case k.kind == opDeleteRule || k.kind == opDeleteRoute:
		if !errors.Is(err, nlerr.ErrNotFound) {
			a.retry.failed(k, err, now)
			return
		}
	case k.kind == opAddRule && errors.Is(err, nlerr.ErrExists):
	default:
		a.retry.failed(k, err, now)
		return
	}
	a.retry.succeeded(k)
	done()
}

func (a *routingApply) logRoute(msg string, r netstate.Route, net netstate.State) {
	f := []logging.Field{logging.Uint32(logging.FieldTable, r.Table), logging.String("dst", r.Dst.String())}
	if len(r.NextHops) > 0 {
		if l, ok := net.Links[r.NextHops[0].IfIndex]; ok {
			f = append(f, logging.String(logging.FieldIface, l.Name))
		}
		if gw := r.NextHops[0].Gateway; gw.IsValid() {
			f = append(f, logging.String(logging.FieldGateway, gw.String()))
		}
	}
	if r.IsDefault() {
		a.log.Info(msg, f...)
	} else {
		a.log.Debug(msg, f...)
	}
}
