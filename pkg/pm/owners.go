package pm

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

// Who an endpoint belongs to (docs/architecture.md, "Ownership"). The kernel
// tags endpoints with no owner, so ours are the ones the state file
// records; an unrecorded endpoint becomes ours only when it is exactly what
// we would create (adopted, e.g. after a lost state file); anything else is
// someone else's and is never deleted or changed. IMPLICIT endpoints, made
// by the kernel for a peer's join, are replaced in place on an address we
// manage and left alone elsewhere.

// recordedEndpoints returns the ids of the kernel endpoints the state file
// records as ours: same id and address (an id alone may have been recycled
// by someone else since).
func recordedEndpoints(in Input) map[uint8]bool {
	recorded := make(map[uint8]netip.Addr, len(in.Records))
	for _, r := range in.Records {
		recorded[r.ID] = r.Addr
	}
	owned := map[uint8]bool{}
	for _, ep := range in.Kernel {
		if a, ok := recorded[ep.ID]; ok && a == ep.Addr {
			owned[ep.ID] = true
		}
	}
	return owned
}

// exactEndpoint tells whether a kernel endpoint is exactly the one we would
// create: address, flags, port and device.
func exactEndpoint(have netlinkmptcp.Endpoint, want Endpoint) bool {
	return have.Addr == want.Addr && have.Port == want.Port && int(have.IfIndex) == want.IfIndex &&
		have.Flags&knownFlags == want.Flags&knownFlags
}

// foreignHolder says why an address is left to an endpoint that is not
// ours.
func foreignHolder(ep netlinkmptcp.Endpoint) string {
	return fmt.Sprintf("a foreign endpoint id %d (%s) holds this address; mptcpgd leaves it alone (`mptcpgd adopt` takes it over)", ep.ID, ep.Flags)
}

// foreignEndpoints are the kernel endpoints that are not ours and use a
// slot of the kernel's MaxEndpoints: all but ours and the IMPLICIT ones on
// an address we manage, which our endpoint replaces in their slot.
func foreignEndpoints(kernel []netlinkmptcp.Endpoint, owned map[uint8]bool, managed map[netip.Addr]string) []netlinkmptcp.Endpoint {
	var out []netlinkmptcp.Endpoint
	for _, ep := range kernel {
		if owned[ep.ID] {
			continue
		}
		if _, ok := managed[ep.Addr]; ok && ep.Flags&netlinkmptcp.FlagImplicit != 0 {
			continue
		}
		out = append(out, ep)
	}
	return out
}

// RoutingOwner tells which routes and rules are ours; srcroute.Settings is
// one.
type RoutingOwner interface {
	OwnsRoute(netstate.Route) bool
	OwnsRule(netstate.Rule) bool
}

// routingOwners are the current [routing] settings and, until nothing of
// theirs is left, the ones an earlier run recorded: what either tags is
// ours, so a change of protocol, table base or rule priority (or a link
// that vanished while we were stopped) still finds what was ours.
type routingOwners []srcroute.Settings

func (o routingOwners) OwnsRoute(r netstate.Route) bool {
	return slices.ContainsFunc(o, func(s srcroute.Settings) bool { return s.OwnsRoute(r) })
}

func (o routingOwners) OwnsRule(r netstate.Rule) bool {
	return slices.ContainsFunc(o, func(s srcroute.Settings) bool { return s.OwnsRule(r) })
}

// ownersOf are the owners of routing under cfg, given the settings an
// earlier run recorded (nil if none).
func ownersOf(cfg *config.Config, recorded *statefile.Routing) routingOwners {
	cur := RoutingSettings(cfg)
	o := routingOwners{cur}
	if recorded != nil {
		if prev := settingsOf(*recorded); prev != cur {
			o = append(o, prev)
		}
	}
	return o
}

func settingsOf(r statefile.Routing) srcroute.Settings {
	return srcroute.Settings{Protocol: r.Protocol, TableBase: r.TableBase, RulePriority: r.RulePriority}
}

func recordOf(s srcroute.Settings) statefile.Routing {
	return statefile.Routing{Protocol: s.Protocol, TableBase: s.TableBase, RulePriority: s.RulePriority}
}

// leftBehind tells whether the network still holds a route or rule that
// prev owns and cur does not: what an earlier run's settings left.
func leftBehind(net netstate.State, prev, cur RoutingOwner) bool {
	for r := range net.Rules {
		if prev.OwnsRule(r) && !cur.OwnsRule(r) {
			return true
		}
	}
	for _, r := range net.Routes {
		if prev.OwnsRoute(r) && !cur.OwnsRoute(r) {
			return true
		}
	}
	return false
}
