// Package srcroute decides the source routing that lets a subflow leave
// through the interface its address belongs to: one table per interface
// (connected route and default route via the interface's gateway) and one
// rule `from ADDR lookup TABLE` per endpoint address. It is pure: it reads
// the observed network and returns what the kernel should hold.
package srcroute

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/mptcpgd/mptcpgd/internal/order"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
)

// Settings are the [routing] configuration.
type Settings struct {
	TableBase    uint32
	RulePriority uint32
	Protocol     uint8
}

// Table is the routing table of an interface.
func (s Settings) Table(ifindex int) uint32 { return s.TableBase + uint32(ifindex) }

// maxIfindex is the largest interface index (a positive int32).
const maxIfindex = 1<<31 - 1

// ownsTable tells whether a table is one of ours: table_base + an ifindex.
func (s Settings) ownsTable(t uint32) bool {
	return t > s.TableBase && uint64(t-s.TableBase) <= maxIfindex
}

// OwnsRoute tells whether a route is ours: it carries our protocol AND
// lives in one of our tables. A protocol number alone proves nothing: other
// programs may tag routes with it.
func (s Settings) OwnsRoute(r netstate.Route) bool {
	return r.Protocol == s.Protocol && s.ownsTable(r.Table)
}

// OwnsRule tells whether a rule is ours: our protocol, at our priority,
// pointing into one of our tables.
func (s Settings) OwnsRule(r netstate.Rule) bool {
	return r.Protocol == s.Protocol && r.Priority == s.RulePriority && s.ownsTable(r.Table)
}

// RouteMetric is the metric of every route we write. IPv6 stores metric 0
// as 1024; writing 1024 for both families keeps a route's key equal to what
// the kernel reports back.
const RouteMetric = 1024

// Source is one endpoint address that gets source routing.
type Source struct {
	Addr netstate.Addr
	Link netstate.Link
	// Gateway4 and Gateway6 are configured gateways; zero means learn.
	Gateway4, Gateway6 netip.Addr
	// OnLink says the configured gateways are reached on the link although
	// outside its prefixes (the [[interface]] entry's onlink).
	OnLink bool
}

// GatewayOrigin says where a gateway came from.
type GatewayOrigin uint8

// Gateway origins, in the order they are tried.
const (
	GatewayNone       GatewayOrigin = iota // nothing found: no default route
	GatewayConfigured                      // gateway4/gateway6 in the configuration
	GatewayLearned                         // a default route of this interface we do not own
	GatewayShared                          // another interface's gateway inside this interface's prefix
	GatewayOnLink                          // point-to-point or on-link: default dev IFACE
)

var originNames = [...]string{
	GatewayNone: "none", GatewayConfigured: "configured", GatewayLearned: "learned",
	GatewayShared: "shared", GatewayOnLink: "on-link",
}

func (o GatewayOrigin) String() string {
	if int(o) < len(originNames) {
		return originNames[o]
	}
	return fmt.Sprintf("origin(%d)", uint8(o))
}

// MarshalText is String, for JSON.
func (o GatewayOrigin) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (o *GatewayOrigin) UnmarshalText(b []byte) error {
	for i, n := range originNames {
		if n == string(b) {
			*o = GatewayOrigin(i)
			return nil
		}
	}
	return fmt.Errorf("unknown gateway origin %q", b)
}

// Gateway is the default route chosen for an interface and family.
type Gateway struct {
	IfIndex int    `json:"ifindex"`
	IfName  string `json:"ifname"`
	IPv6    bool   `json:"ipv6"`
	// Addr is the next hop; zero for on-link and none.
	Addr netip.Addr `json:"addr,omitzero"`
	// OnLink: Addr lies outside the link's prefixes and is reached on the
	// link anyway (RTNH_F_ONLINK).
	OnLink bool          `json:"onlink,omitempty"`
	Origin GatewayOrigin `json:"origin"`
	// Detail explains the choice for `mptcpgd show`.
	Detail string `json:"detail"`
}

// Plan is the source routing the kernel should hold.
type Plan struct {
	Rules    []netstate.Rule
	Routes   []netstate.Route
	Gateways []Gateway
}

type linkFamily struct {
	ifindex int
	ipv6    bool
}

// Decide returns the rules, routes and gateway choices for sources, given
// the observed network.
func Decide(set Settings, sources []Source, net netstate.State) Plan {
	var p Plan
	groups := map[linkFamily][]Source{}
	var keys []linkFamily
	for _, src := range sources {
		k := linkFamily{src.Link.Index, src.Addr.Addr.Is6()}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], src)
	}
	slices.SortFunc(keys, func(a, b linkFamily) int {
		return cmp.Or(cmp.Compare(a.ifindex, b.ifindex), order.FalseFirst(a.ipv6, b.ipv6))
	})
	defs := NewDefaults(set, net)
	defaults := [2][]defaultHop{defs.of(false), defs.of(true)}
	for _, k := range keys {
		srcs := groups[k]
		link := srcs[0].Link
		table := set.Table(link.Index)
		seen := map[netip.Prefix]bool{}
		for _, src := range srcs {
			a := src.Addr.Addr
			p.Rules = append(p.Rules, netstate.Rule{
				Priority: set.RulePriority,
				Src:      netip.PrefixFrom(a, a.BitLen()),
				Table:    table,
				Protocol: set.Protocol,
			})
			pfx := src.Addr.Prefix.Masked()
			// A host prefix (/32, /128) has no neighbours to route to.
			if pfx.Bits() == pfx.Addr().BitLen() || seen[pfx] {
				continue
			}
			seen[pfx] = true
			p.Routes = append(p.Routes, netstate.Route{
				Table: table, Protocol: set.Protocol, Type: netstate.RouteTypeUnicast,
				Scope: netstate.ScopeLink, Dst: pfx, Priority: RouteMetric,
				NextHops: []netstate.NextHop{{IfIndex: link.Index}},
			})
		}
		gw := chooseGateway(srcs, net, defaults[b2i(k.ipv6)])
		p.Gateways = append(p.Gateways, gw)
		if gw.Origin == GatewayNone {
			continue
		}
		def := netstate.Route{
			Table: table, Protocol: set.Protocol, Type: netstate.RouteTypeUnicast,
			Dst: defaultPrefix(k.ipv6), Priority: RouteMetric,
			NextHops: []netstate.NextHop{{Gateway: gw.Addr, IfIndex: link.Index, OnLink: gw.OnLink}},
		}
		if !gw.Addr.IsValid() {
			def.Scope = netstate.ScopeLink
		}
		p.Routes = append(p.Routes, def)
	}
	return p
}

// Defaults answers gateway questions about one network state; it sorts
// each family's default routes once, however many addresses ask (a burst
// of 256 addresses asked for each of them, and sorted each time).
type Defaults struct {
	set    Settings
	net    netstate.State
	byFam  [2][]defaultHop
	sorted [2]bool
}

// NewDefaults returns the questions' answers for net, computed as asked.
func NewDefaults(set Settings, net netstate.State) *Defaults {
	return &Defaults{set: set, net: net}
}

func (d *Defaults) of(ipv6 bool) []defaultHop {
	i := 0
	if ipv6 {
		i = 1
	}
	if !d.sorted[i] {
		d.byFam[i], d.sorted[i] = foreignDefaults(d.set, d.net, ipv6), true
	}
	return d.byFam[i]
}

// GatewayFor is the gateway Decide would choose for src's interface and
// family if src were its only source.
func (d *Defaults) GatewayFor(src Source) Gateway {
	return chooseGateway([]Source{src}, d.net, d.of(src.Addr.Addr.Is6()))
}

// HasDefaultRoute tells whether an interface has a unicast default route of
// the given family in a table we do not own (require_default_route).
func (d *Defaults) HasDefaultRoute(ifindex int, ipv6 bool) bool {
	for _, h := range d.of(ipv6) {
		if h.hop.IfIndex == ifindex {
			return true
		}
	}
	return false
}

// chooseGateway picks the gateway of srcs' link and family from defaults,
// the foreign default routes of that family, best first.
func chooseGateway(srcs []Source, net netstate.State, defaults []defaultHop) Gateway {
	link := srcs[0].Link
	ipv6 := srcs[0].Addr.Addr.Is6()
	gw := Gateway{IfIndex: link.Index, IfName: link.Name, IPv6: ipv6}
	configured := srcs[0].Gateway4
	key := "gateway4"
	if ipv6 {
		configured, key = srcs[0].Gateway6, "gateway6"
	}
	if configured.IsValid() {
		gw.Addr, gw.Origin, gw.Detail = configured, GatewayConfigured, key+" in the configuration"
		if !insideLink(net, link.Index, configured) {
			// The kernel refuses a gateway it cannot reach through a
			// prefix of the link, unless the route says it is on-link:
			// cloud hosts with a /32 (/128) address, or the entry says so.
			host := srcs[0].Addr.Prefix.Bits() == configured.BitLen()
			switch {
			case host || srcs[0].OnLink:
				gw.OnLink = true
				gw.Detail += ", on-link"
			default:
				gw.Detail += fmt.Sprintf(", outside %s's prefixes: the kernel refuses it unless onlink = true is set for %s", link.Name, link.Name)
			}
		}
		return gw
	}
	for _, d := range defaults {
		if d.hop.IfIndex == link.Index {
			gw.Addr, gw.Origin = d.hop.Gateway, GatewayLearned
			gw.Detail = fmt.Sprintf("default route in table %d, metric %d", d.route.Table, d.route.Priority)
			if !d.hop.Gateway.IsValid() {
				gw.Origin = GatewayOnLink
				gw.Detail = fmt.Sprintf("on-link default route in table %d", d.route.Table)
			}
			return gw
		}
	}
	for _, d := range defaults {
		if !d.hop.Gateway.IsValid() || d.hop.Gateway.IsLinkLocalUnicast() {
			continue
		}
		for _, src := range srcs {
			if src.Addr.Prefix.Contains(d.hop.Gateway) {
				other := net.Links[d.hop.IfIndex].Name
				gw.Addr, gw.Origin = d.hop.Gateway, GatewayShared
				gw.Detail = fmt.Sprintf("default gateway of %s, inside %s", other, src.Addr.Prefix.Masked())
				return gw
			}
		}
	}
	if link.OnLink() {
		gw.Origin, gw.Detail = GatewayOnLink, "point-to-point interface"
		return gw
	}
	gw.Detail = fmt.Sprintf("no default route found for %s: set %s in an [[interface]] entry matching it", link.Name, key)
	return gw
}

// insideLink tells whether one of the link's prefixes holds a.
func insideLink(net netstate.State, ifindex int, a netip.Addr) bool {
	for k, ad := range net.Addrs {
		if k.IfIndex == ifindex && ad.Prefix.Masked().Contains(a) {
			return true
		}
	}
	return false
}

type defaultHop struct {
	route netstate.Route
	hop   netstate.NextHop
}

// foreignDefaults lists the unicast default routes of one family that we do
// not own, best first: the main table, then lower metric, then lower table,
// then lower gateway address, so the choice is deterministic.
func foreignDefaults(set Settings, net netstate.State, ipv6 bool) []defaultHop {
	const mainTable = 254
	var out []defaultHop
	for _, r := range net.Routes {
		if !r.IsDefault() || r.Dst.Addr().Is6() != ipv6 || set.OwnsRoute(r) || r.Type != netstate.RouteTypeUnicast {
			continue
		}
		for _, nh := range r.NextHops {
			out = append(out, defaultHop{r, nh})
		}
	}
	slices.SortFunc(out, func(a, b defaultHop) int {
		return cmp.Or(
			order.FalseFirst(a.route.Table != mainTable, b.route.Table != mainTable),
			cmp.Compare(a.route.Priority, b.route.Priority),
			cmp.Compare(a.route.Table, b.route.Table),
			cmp.Compare(a.hop.IfIndex, b.hop.IfIndex),
			a.hop.Gateway.Compare(b.hop.Gateway),
		)
	})
	return out
}

func defaultPrefix(ipv6 bool) netip.Prefix {
	if ipv6 {
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
