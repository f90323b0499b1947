package pm

import (
	"fmt"
	"net/netip"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
)

// holdUnrouted holds back the additions of endpoints whose source routing
// is not in the kernel: a rule or route write failed (the kernel refused a
// gateway outside the link's prefixes, say) or is backing off. Their
// subflows would leave by another uplink, where a real network drops them.
// An endpoint already in the kernel stays: removing it would cut working
// subflows. why is the last failure of a write ("" if none).
func holdUnrouted(d *Decision, kernel []netlinkmptcp.Endpoint, net netstate.State, why func(opKey) string) {
	if len(d.Routing.Rules) == 0 {
		return
	}
	present := map[netip.Addr]bool{}
	for _, ep := range kernel {
		if d.Owned[ep.ID] {
			present[ep.Addr] = true
		}
	}
	kept := d.Endpoints[:0]
	for _, ep := range d.Endpoints {
		reason := ""
		if !present[ep.Addr] {
			reason = unrouted(ep, d, net, why)
		}
		if reason == "" {
			kept = append(kept, ep)
			continue
		}
		d.hold(ep.Addr, reason)
	}
	d.Endpoints = kept
}

// hold marks addr as not managed for now, and why.
func (d *Decision) hold(addr netip.Addr, why string) {
	for i := range d.Addresses {
		if d.Addresses[i].Addr.Addr == addr {
			d.Addresses[i].Managed, d.Addresses[i].Reason = false, "held: "+why
		}
	}
}

// unrouted says what of ep's source routing the kernel lacks, "" if
// nothing: its rule, or a route of its interface's table for its family.
// A route someone else holds in that place counts as present.
func unrouted(ep Endpoint, d *Decision, net netstate.State, why func(opKey) string) string {
	because := func(k opKey) string {
		if c := why(k); c != "" {
			return ": " + c
		}
		return ""
	}
	for _, r := range d.Routing.Rules {
		if r.Src.Addr() != ep.Addr {
			continue
		}
		if _, ok := net.Rules[r]; !ok {
			return "its source rule is not in the kernel yet" + because(ruleKey(opAddRule, r))
		}
	}
	for _, r := range d.Routing.Routes {
		if len(r.NextHops) == 0 || r.NextHops[0].IfIndex != ep.IfIndex || r.Dst.Addr().Is6() != ep.Addr.Is6() {
			continue
		}
		if _, ok := net.Routes[r.Key()]; !ok {
			return fmt.Sprintf("route %s of table %d is not in the kernel yet", routeText(r), r.Table) + because(routeKey(opAddRoute, r))
		}
	}
	return ""
}

// routeText names a route for a person: destination and next hop.
func routeText(r netstate.Route) string {
	s := r.Dst.String()
	if r.IsDefault() {
		s = "default"
	}
	if len(r.NextHops) > 0 && r.NextHops[0].Gateway.IsValid() {
		s += " via " + r.NextHops[0].Gateway.String()
	}
	return s
}
