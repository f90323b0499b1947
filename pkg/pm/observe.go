package pm

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/order"
	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
)

// ChangeKind is a kind of observed change.
type ChangeKind uint8

// Observed changes.
const (
	LinkAdded ChangeKind = iota + 1
	LinkRemoved
	LinkRenamed
	CarrierUp
	CarrierDown
	AddrNew
	AddrGone
	// GatewayChanged: the next hops of an interface's default routes that
	// are not ours (DHCP's, a router advertisement's) changed.
	GatewayChanged
	// RuleRemoved, RouteRemoved: someone else removed a rule or route of
	// ours (our own removals are not observed: their notifications are
	// dropped, and a resync's view already lacks them).
	RuleRemoved
	RouteRemoved
)

var changeNames = [...]string{
	LinkAdded: "link added", LinkRemoved: "link removed", LinkRenamed: "link renamed",
	CarrierUp: "carrier up", CarrierDown: "carrier down",
	AddrNew: "address new", AddrGone: "address gone", GatewayChanged: "gateway changed",
	RuleRemoved: "rule removed", RouteRemoved: "route removed",
}

func (k ChangeKind) String() string {
	if int(k) < len(changeNames) && changeNames[k] != "" {
		return changeNames[k]
	}
	return fmt.Sprintf("change(%d)", uint8(k))
}

// Change is one observed change of the network.
type Change struct {
	Kind ChangeKind
	// Link is the link after the change (before it, for LinkRemoved).
	Link netstate.Link
	// OldName is a renamed link's previous name.
	OldName string
	// Addr is the address that appeared or went.
	Addr netstate.Addr
	// IPv6, Gateways and OldGateways describe a GatewayChanged: the family
	// and the next hops (sorted; an invalid address is an on-link route).
	IPv6                  bool
	Gateways, OldGateways []netip.Addr
	// Rule and Route are what a RuleRemoved or RouteRemoved removed.
	Rule  netstate.Rule
	Route netstate.Route
}

// Diff returns what changed from prev to next (a resync: the old view and a
// fresh dump), links first by index, then addresses, then gateways, then
// rules and routes of ours that someone else removed. ours tells which
// routes and rules are ours; our routes are not gateways anyone learned.
func Diff(prev, next netstate.State, ours RoutingOwner) []Change {
	var out []Change
	for _, idx := range unionKeys(prev.Links, next.Links, cmp.Compare[int]) {
		old, had := prev.Links[idx]
		cur, has := next.Links[idx]
		out = appendLinkChanges(out, old, had, cur, has)
	}
	var gone, added []netstate.Addr
	for k, a := range prev.Addrs {
		if _, ok := next.Addrs[k]; !ok {
			gone = append(gone, a)
		}
	}
	for k, a := range next.Addrs {
		if _, ok := prev.Addrs[k]; !ok {
			added = append(added, a)
		}
	}
	out = appendAddrChanges(out, AddrGone, gone, prev)
	out = appendAddrChanges(out, AddrNew, added, next)
	out = appendGatewayChanges(out, learnedGateways(prev, ours), learnedGateways(next, ours), next)
	var rules []netstate.Rule
	for r := range prev.Rules {
		if _, ok := next.Rules[r]; !ok && ours.OwnsRule(r) {
			rules = append(rules, r)
		}
	}
	sortRules(rules)
	for _, r := range rules {
		out = append(out, Change{Kind: RuleRemoved, Rule: r})
	}
	var routes []netstate.Route
	for k, r := range prev.Routes {
		if _, ok := next.Routes[k]; !ok && ours.OwnsRoute(r) && removedByOthers(r, next) {
			routes = append(routes, r)
		}
	}
	sortRoutes(routes)
	for _, r := range routes {
		out = append(out, Change{Kind: RouteRemoved, Route: r})
	}
	return out
}

// removedByOthers tells whether a route of ours that went missing was
// removed by someone else rather than by the kernel, which removes routes
// itself when their link loses its carrier or the address that made the
// next hop reachable goes. s is the state after the removal.
func removedByOthers(r netstate.Route, s netstate.State) bool {
	if len(r.NextHops) == 0 {
		return false
	}
	nh := r.NextHops[0]
	link, ok := s.Links[nh.IfIndex]
	if !ok || !link.Carrier() || link.Flags&netstate.LinkUp == 0 {
		return false
	}
	target := r.Dst.Addr()
	if nh.Gateway.IsValid() {
		target = nh.Gateway
	} else if r.IsDefault() {
		return true
	}
	for k, a := range s.Addrs {
		if k.IfIndex == nh.IfIndex && a.Prefix.Masked().Contains(target) {
			return true
		}
	}
	return false
}

// ApplyUpdates applies a batch of notifications to s and returns what
// changed, as Diff defines it. Each update is compared with the state it
// changes, so a carrier that went and came back within one batch counts as
// a flap; gateways are compared across the whole batch.
func ApplyUpdates(s netstate.State, updates []netstate.Update, ours RoutingOwner) []Change {
	var out []Change
	var gwBefore map[linkFamily][]netip.Addr
	if slices.ContainsFunc(updates, func(u netstate.Update) bool {
		return u.Kind == netstate.RouteUpdate || u.Kind == netstate.LinkUpdate
	}) {
		gwBefore = learnedGateways(s, ours)
	}
	for _, u := range updates {
		switch u.Kind {
		case netstate.LinkUpdate:
			old, had := s.Links[u.Link.Index]
			if !u.Deleted {
				out = appendLinkChanges(out, old, had, u.Link, true)
				break
			}
			// The link's addresses go with it, notified or not.
			var gone []netstate.Addr
			for k, a := range s.Addrs {
				if k.IfIndex == u.Link.Index {
					gone = append(gone, a)
				}
			}
			out = appendLinkChanges(out, old, had, netstate.Link{}, false)
			out = appendAddrChanges(out, AddrGone, gone, s)
		case netstate.AddrUpdate:
			_, had := s.Addrs[u.Addr.Key()]
			switch {
			case u.Deleted && had:
				out = appendAddrChanges(out, AddrGone, []netstate.Addr{s.Addrs[u.Addr.Key()]}, s)
			case !u.Deleted && !had:
				out = appendAddrChanges(out, AddrNew, []netstate.Addr{u.Addr}, s)
			}
		case netstate.RuleUpdate:
			if _, had := s.Rules[u.Rule]; had && u.Deleted && ours.OwnsRule(u.Rule) {
				out = append(out, Change{Kind: RuleRemoved, Rule: u.Rule})
			}
		case netstate.RouteUpdate:
			if old, had := s.Routes[u.Route.Key()]; had && u.Deleted && ours.OwnsRoute(old) && old.Protocol == u.Route.Protocol {
				s.Apply(u)
				if removedByOthers(old, s) {
					out = append(out, Change{Kind: RouteRemoved, Route: old})
				}
				continue
			}
		}
		s.Apply(u)
	}
	if gwBefore != nil {
		out = appendGatewayChanges(out, gwBefore, learnedGateways(s, ours), s)
	}
	return out
}

// appendLinkChanges appends what changed of one link (had/has: it existed
// before/after).
func appendLinkChanges(out []Change, old netstate.Link, had bool, cur netstate.Link, has bool) []Change {
	switch {
	case had && !has:
		return append(out, Change{Kind: LinkRemoved, Link: old})
	case !had && has:
		return append(out, Change{Kind: LinkAdded, Link: cur})
	case !had:
		return out
	}
	if old.Name != cur.Name {
		out = append(out, Change{Kind: LinkRenamed, Link: cur, OldName: old.Name})
	}
	if old.Carrier() != cur.Carrier() {
		k := CarrierDown
		if cur.Carrier() {
			k = CarrierUp
		}
		out = append(out, Change{Kind: k, Link: cur})
	}
	return out
}

// appendAddrChanges appends one change of kind per address, ordered by
// link and address; the link is looked up in s.
func appendAddrChanges(out []Change, kind ChangeKind, addrs []netstate.Addr, s netstate.State) []Change {
	slices.SortFunc(addrs, func(a, b netstate.Addr) int {
		return cmp.Or(cmp.Compare(a.IfIndex, b.IfIndex), a.Addr.Compare(b.Addr))
	})
	for _, a := range addrs {
		out = append(out, Change{Kind: kind, Addr: a, Link: s.Links[a.IfIndex]})
	}
	return out
}

// appendGatewayChanges appends a GatewayChanged per link and family whose
// learned next hops differ, for links that exist in s.
func appendGatewayChanges(out []Change, before, after map[linkFamily][]netip.Addr, s netstate.State) []Change {
	for _, k := range unionKeys(before, after, linkFamily.compare) {
		if link, ok := s.Links[k.ifindex]; ok && !slices.Equal(before[k], after[k]) {
			out = append(out, Change{Kind: GatewayChanged, Link: link, IPv6: k.ipv6, Gateways: after[k], OldGateways: before[k]})
		}
	}
	return out
}

type linkFamily struct {
	ifindex int
	ipv6    bool
}

func (a linkFamily) compare(b linkFamily) int {
	return cmp.Or(cmp.Compare(a.ifindex, b.ifindex), order.FalseFirst(a.ipv6, b.ipv6))
}

// learnedGateways are the next hops of the unicast default routes that are
// not ours, per link and family.
func learnedGateways(s netstate.State, ours RoutingOwner) map[linkFamily][]netip.Addr {
	out := map[linkFamily][]netip.Addr{}
	for _, r := range s.Routes {
		if !r.IsDefault() || r.Type != netstate.RouteTypeUnicast || ours.OwnsRoute(r) {
			continue
		}
		for _, nh := range r.NextHops {
			k := linkFamily{nh.IfIndex, r.Dst.Addr().Is6()}
			out[k] = append(out[k], nh.Gateway)
		}
	}
	for k, gws := range out {
		slices.SortFunc(gws, netip.Addr.Compare)
		out[k] = slices.Compact(gws)
	}
	return out
}

// unionKeys returns the keys of both maps, sorted by compare.
func unionKeys[K comparable, V any](a, b map[K]V, compare func(K, K) int) []K {
	keys := make([]K, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compare)
	return keys
}

// observations keep what the engine remembers of observed changes: each
// link's flap history, when each address appeared, and the interfaces' ARP
// settings read so far. It logs one line per change.
type observations struct {
	log   *logging.Logger
	flaps *flapTracker
	// firstSeen says when addresses appeared while we watched (see
	// Input.FirstSeen).
	firstSeen map[netstate.AddrKey]time.Time
	readARP   func(ifname string) srcroute.ARP
	arpCache  map[string]srcroute.ARP
}

func newObservations(log *logging.Logger, flap FlapPolicy, readARP func(string) srcroute.ARP) *observations {
	return &observations{log: log, flaps: newFlapTracker(flap), firstSeen: map[netstate.AddrKey]time.Time{},
		readARP: readARP, arpCache: map[string]srcroute.ARP{}}
}

// observe takes in changes seen at now. The first observation (start)
// learns the links without logging and marks no address as new: those had
// their chance to get a route before we started.
func (o *observations) observe(changes []Change, now time.Time, first bool) {
	for _, c := range changes {
		switch c.Kind {
		case LinkAdded:
			o.flaps.carrier(c.Link.Index, c.Link.Carrier(), now)
			delete(o.arpCache, c.Link.Name)
			if !first {
				o.log.Info("interface added", logging.String(logging.FieldIface, c.Link.Name), logging.Bool("carrier", c.Link.Carrier()))
			}
		case LinkRemoved:
			o.flaps.forget(c.Link.Index)
			delete(o.arpCache, c.Link.Name)
			o.log.Info("interface removed", logging.String(logging.FieldIface, c.Link.Name))
		case LinkRenamed:
			delete(o.arpCache, c.OldName)
			delete(o.arpCache, c.Link.Name)
			o.log.Info("interface renamed", logging.String(logging.FieldIface, c.Link.Name), logging.String("old_name", c.OldName))
		case CarrierUp, CarrierDown:
			up := c.Kind == CarrierUp
			if up {
				o.log.Info("carrier back", logging.String(logging.FieldIface, c.Link.Name))
			} else {
				o.log.Info("carrier lost", logging.String(logging.FieldIface, c.Link.Name))
			}
			if o.flaps.carrier(c.Link.Index, up, now) {
				o.log.Warn("interface is flapping: holding back its endpoints after it returns, longer while it keeps flapping",
					logging.String(logging.FieldIface, c.Link.Name), logging.Duration("hold_down", o.flaps.holdDown(c.Link.Index)))
			} else if !up && o.flaps.holdDown(c.Link.Index) > 0 {
				o.log.Debug("interface still flapping", logging.String(logging.FieldIface, c.Link.Name), logging.Duration("hold_down", o.flaps.holdDown(c.Link.Index)))
			}
		case AddrNew:
			if !first {
				o.firstSeen[c.Addr.Key()] = now
			}
		case AddrGone:
			delete(o.firstSeen, c.Addr.Key())
		case GatewayChanged:
			if !first {
				o.log.Debug("learned gateway changed", logging.String(logging.FieldIface, c.Link.Name), logging.Bool("ipv6", c.IPv6),
					logging.Stringers("gateways", c.Gateways), logging.Stringers("old_gateways", c.OldGateways))
			}
		}
	}
}

// forgetARP drops the ARP settings read so far (a resync reads them anew).
func (o *observations) forgetARP() { clear(o.arpCache) }

// arp reads an interface's effective ARP settings, once per interface.
func (o *observations) arp(name string) srcroute.ARP {
	a, ok := o.arpCache[name]
	if !ok {
		a = o.readARP(name)
		o.arpCache[name] = a
	}
	return a
}

// expireFirstSeen forgets addresses that have waited for their gateway
// longer than wait: they are no longer new.
func (o *observations) expireFirstSeen(now time.Time, wait time.Duration) {
	for k, t := range o.firstSeen {
		if now.Sub(t) > wait {
			delete(o.firstSeen, k)
		}
	}
}

// heldUntil lists the links held back after flapping, until when.
func (o *observations) heldUntil(net netstate.State, now time.Time) map[int]time.Time {
	held := map[int]time.Time{}
	for idx := range net.Links {
		if t := o.flaps.usableAt(idx); t.After(now) {
			held[idx] = t
		}
	}
	return held
}
