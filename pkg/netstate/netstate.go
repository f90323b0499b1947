// Package netstate models what the kernel's rtnetlink side holds that the
// path manager decides on: links, addresses, default routes, and the routes
// and rules that carry our protocol tag. It is plain data with pure update
// methods, fed by a dump and then by events; no I/O happens here.
package netstate

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/mptcpgd/mptcpgd/internal/bitnames"
)

// LinkFlags are the IFF_* bits of a link that matter to us.
type LinkFlags uint32

// Link flag bits, as the kernel numbers them (IFF_*).
const (
	LinkUp           LinkFlags = 0x1     // administratively up
	LinkLoopback     LinkFlags = 0x8     // loopback device
	LinkPointToPoint LinkFlags = 0x10    // point-to-point link (no gateway needed)
	LinkRunning      LinkFlags = 0x40    // operationally up: carrier and not dormant
	LinkNoARP        LinkFlags = 0x80    // no link-layer resolution (e.g. raw-IP modems)
	LinkLowerUp      LinkFlags = 0x10000 // carrier present
)

// Link is a network interface.
type Link struct {
	Index int       `json:"index"`
	Name  string    `json:"name"`
	Flags LinkFlags `json:"flags"`
}

var linkFlagNames = []bitnames.Name{
	{Bit: uint32(LinkUp), Word: "up"},
	{Bit: uint32(LinkLoopback), Word: "loopback"},
	{Bit: uint32(LinkPointToPoint), Word: "pointopoint"},
	{Bit: uint32(LinkRunning), Word: "running"},
	{Bit: uint32(LinkNoARP), Word: "noarp"},
	{Bit: uint32(LinkLowerUp), Word: "lower_up"},
}

// String lists the flags as `ip link` words ("up,running,lower_up").
func (f LinkFlags) String() string { return bitnames.Format(uint32(f), linkFlagNames) }

// MarshalText is String, for JSON.
func (f LinkFlags) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (f *LinkFlags) UnmarshalText(b []byte) error {
	v, err := bitnames.Parse(string(b), linkFlagNames)
	*f = LinkFlags(v)
	return err
}

// Carrier tells whether the link can carry traffic: up and running. A
// pulled cable, a peer that went down or a dormant Wi-Fi clear IFF_RUNNING.
func (l Link) Carrier() bool {
	return l.Flags&LinkUp != 0 && l.Flags&LinkRunning != 0
}

// OnLink tells whether the link reaches everything directly, so a default
// route needs no gateway (point-to-point links, raw-IP modems).
func (l Link) OnLink() bool {
	return l.Flags&(LinkPointToPoint|LinkNoARP) != 0 && l.Flags&LinkLoopback == 0
}

// AddrFlags are the IFA_F_* bits of an address.
type AddrFlags uint32

// Address flag bits (IFA_F_*). Bit 0x01 means "temporary" for IPv6 and
// "secondary" for IPv4: use Addr.Temporary, never the bit alone.
const (
	AddrTemporary     AddrFlags = 0x01
	AddrNoDAD         AddrFlags = 0x02
	AddrOptimistic    AddrFlags = 0x04
	AddrDADFailed     AddrFlags = 0x08
	AddrDeprecated    AddrFlags = 0x20
	AddrTentative     AddrFlags = 0x40
	AddrPermanent     AddrFlags = 0x80
	AddrNoPrefixRoute AddrFlags = 0x200
)

var addrFlagNames = []bitnames.Name{
	{Bit: uint32(AddrTemporary), Word: "temporary"},
	{Bit: uint32(AddrNoDAD), Word: "nodad"},
	{Bit: uint32(AddrOptimistic), Word: "optimistic"},
	{Bit: uint32(AddrDADFailed), Word: "dadfailed"},
	{Bit: uint32(AddrDeprecated), Word: "deprecated"},
	{Bit: uint32(AddrTentative), Word: "tentative"},
	{Bit: uint32(AddrPermanent), Word: "permanent"},
	{Bit: uint32(AddrNoPrefixRoute), Word: "noprefixroute"},
}

// String lists the flags as `ip addr` words ("permanent,noprefixroute");
// the temporary bit reads "secondary" on IPv4, which `ip` shows instead.
func (f AddrFlags) String() string { return bitnames.Format(uint32(f), addrFlagNames) }

// MarshalText is String, for JSON.
func (f AddrFlags) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (f *AddrFlags) UnmarshalText(b []byte) error {
	v, err := bitnames.Parse(string(b), addrFlagNames)
	*f = AddrFlags(v)
	return err
}

// Address scopes (RT_SCOPE_*).
const (
	ScopeUniverse uint8 = 0
	ScopeLink     uint8 = 253
	ScopeHost     uint8 = 254
)

// Addr is an address assigned to a link.
type Addr struct {
	IfIndex int `json:"ifindex"`
	// Addr is the local address.
	Addr netip.Addr `json:"addr"`
	// Prefix is the connected network: the address's own prefix, or on a
	// point-to-point link with a peer, the peer's prefix.
	Prefix netip.Prefix `json:"prefix"`
	Scope  uint8        `json:"scope"`
	Flags  AddrFlags    `json:"flags"`
}

// Temporary tells whether the address is an IPv6 privacy address.
func (a Addr) Temporary() bool { return a.Addr.Is6() && a.Flags&AddrTemporary != 0 }

// AddrKey identifies an address on a link.
type AddrKey struct {
	IfIndex int
	Addr    netip.Addr
}

// Key returns the address's identity.
func (a Addr) Key() AddrKey { return AddrKey{a.IfIndex, a.Addr} }

// NextHop is one way out of a route.
type NextHop struct {
	Gateway netip.Addr `json:"gateway,omitzero"`
	IfIndex int        `json:"ifindex"`
	// OnLink says the gateway is reached on the link although no prefix of
	// the link holds it (RTNH_F_ONLINK): cloud hosts with /32 addresses.
	OnLink bool `json:"onlink,omitempty"`
}

// Route is a routing-table entry. Only default routes (for gateways and
// require_default_route) and routes carrying our protocol are kept.
type Route struct {
	Table    uint32       `json:"table"`
	Protocol uint8        `json:"protocol"`
	Type     uint8        `json:"type"`
	Scope    uint8        `json:"scope"`
	Dst      netip.Prefix `json:"dst"`
	Priority uint32       `json:"priority"`
	// NextHops has one entry for a plain route, several for multipath.
	NextHops []NextHop `json:"next_hops"`
}

// RouteTypeUnicast is RTN_UNICAST.
const RouteTypeUnicast uint8 = 1

// RouteKey identifies a route the way the kernel does for replace and
// delete: table, destination and metric (TOS is never used here).
type RouteKey struct {
	Table    uint32
	Dst      netip.Prefix
	Priority uint32
}

// Key returns the route's identity.
func (r Route) Key() RouteKey { return RouteKey{r.Table, r.Dst, r.Priority} }

// IsDefault tells whether the route is a default route.
func (r Route) IsDefault() bool { return r.Dst.IsValid() && r.Dst.Bits() == 0 }

// Equal reports whether two routes are the same in every field we write.
func (r Route) Equal(o Route) bool {
	return r.Key() == o.Key() && r.Protocol == o.Protocol && r.Type == o.Type &&
		r.Scope == o.Scope && slices.Equal(r.NextHops, o.NextHops)
}

func (r Route) String() string {
	s := r.Dst.String()
	if r.IsDefault() {
		s = "default"
	}
	for _, nh := range r.NextHops {
		if nh.Gateway.IsValid() {
			s += " via " + nh.Gateway.String()
		}
		s += fmt.Sprintf(" ifindex %d", nh.IfIndex)
		if nh.OnLink {
			s += " onlink"
		}
	}
	return fmt.Sprintf("%s table %d proto %d metric %d", s, r.Table, r.Protocol, r.Priority)
}

// Rule is a routing policy rule of the simple form we write:
// `from SRC lookup TABLE` at a priority. Rules with other selectors are
// never ours and are not kept.
type Rule struct {
	Priority uint32       `json:"priority"`
	Src      netip.Prefix `json:"src"`
	Table    uint32       `json:"table"`
	Protocol uint8        `json:"protocol"`
}

func (r Rule) String() string {
	return fmt.Sprintf("%d: from %s lookup %d proto %d", r.Priority, r.Src, r.Table, r.Protocol)
}

// State is a snapshot of the observed network.
type State struct {
	Links  map[int]Link
	Addrs  map[AddrKey]Addr
	Routes map[RouteKey]Route
	Rules  map[Rule]struct{}
}

// New returns an empty State.
func New() State {
	return State{
		Links:  map[int]Link{},
		Addrs:  map[AddrKey]Addr{},
		Routes: map[RouteKey]Route{},
		Rules:  map[Rule]struct{}{},
	}
}

// Clone returns a deep copy, so a decision can read it while the owner
// keeps updating the original.
func (s State) Clone() State {
	c := State{
		Links:  maps.Clone(s.Links),
		Addrs:  maps.Clone(s.Addrs),
		Routes: make(map[RouteKey]Route, len(s.Routes)),
		Rules:  maps.Clone(s.Rules),
	}
	for k, r := range s.Routes {
		r.NextHops = slices.Clone(r.NextHops)
		c.Routes[k] = r
	}
	return c
}

// LinkByName finds a link by name.
func (s State) LinkByName(name string) (Link, bool) {
	for _, l := range s.Links {
		if l.Name == name {
			return l, true
		}
	}
	return Link{}, false
}

// SortedLinks returns the links ordered by index.
func (s State) SortedLinks() []Link {
	links := slices.Collect(maps.Values(s.Links))
	slices.SortFunc(links, func(a, b Link) int { return cmp.Compare(a.Index, b.Index) })
	return links
}

// AddrsByLink returns each link's addresses, ordered by family (IPv4
// first) and address: one pass over the state, however many links there
// are.
func (s State) AddrsByLink() map[int][]Addr {
	by := make(map[int][]Addr, len(s.Links))
	for _, a := range s.Addrs {
		by[a.IfIndex] = append(by[a.IfIndex], a)
	}
	for _, addrs := range by {
		slices.SortFunc(addrs, func(a, b Addr) int { return a.Addr.Compare(b.Addr) })
	}
	return by
}

// NeighState is the state of a neighbour entry (NUD_*): whether the link
// layer address of a next hop is known.
type NeighState uint16

// Neighbour states, as the kernel numbers them.
const (
	NeighIncomplete NeighState = 0x01 // resolution under way
	NeighReachable  NeighState = 0x02
	NeighStale      NeighState = 0x04 // known, to be confirmed when used
	NeighDelay      NeighState = 0x08
	NeighProbe      NeighState = 0x10
	NeighFailed     NeighState = 0x20 // resolution failed: sends fail at once
	NeighNoARP      NeighState = 0x40
	NeighPermanent  NeighState = 0x80
)

var neighStateNames = []bitnames.Name{
	{Bit: uint32(NeighIncomplete), Word: "INCOMPLETE"}, {Bit: uint32(NeighReachable), Word: "REACHABLE"},
	{Bit: uint32(NeighStale), Word: "STALE"}, {Bit: uint32(NeighDelay), Word: "DELAY"},
	{Bit: uint32(NeighProbe), Word: "PROBE"}, {Bit: uint32(NeighFailed), Word: "FAILED"},
	{Bit: uint32(NeighNoARP), Word: "NOARP"}, {Bit: uint32(NeighPermanent), Word: "PERMANENT"},
}

// String is the state as `ip neigh` prints it.
func (s NeighState) String() string { return bitnames.Format(uint32(s), neighStateNames) }

// Usable tells whether the kernel can send to the neighbour now: its link
// layer address is known (perhaps to be confirmed). INCOMPLETE and FAILED
// are not: a connection attempt then waits or fails.
func (s NeighState) Usable() bool {
	return s&(NeighReachable|NeighStale|NeighDelay|NeighProbe|NeighNoARP|NeighPermanent) != 0
}

// Neigh is a neighbour entry.
type Neigh struct {
	IfIndex int
	Addr    netip.Addr
	State   NeighState
}

// Update is one observed change.
type Update struct {
	Kind    UpdateKind
	Deleted bool
	Link    Link
	Addr    Addr
	Route   Route
	Rule    Rule
	Neigh   Neigh
}

// UpdateKind says which field of an Update is set.
type UpdateKind uint8

// Update kinds.
const (
	LinkUpdate UpdateKind = iota + 1
	AddrUpdate
	RouteUpdate
	RuleUpdate
	// NeighUpdate is a neighbour entry's change; State does not keep
	// neighbours, their watchers do.
	NeighUpdate
)

func (k UpdateKind) String() string {
	switch k {
	case LinkUpdate:
		return "link"
	case AddrUpdate:
		return "address"
	case RouteUpdate:
		return "route"
	case RuleUpdate:
		return "rule"
	case NeighUpdate:
		return "neighbour"
	}
	return fmt.Sprintf("update(%d)", uint8(k))
}

// Apply records one change. A deleted link takes its addresses and routes
// with it, and a link taken down its routes, as the kernel does without
// sending those deletions.
func (s State) Apply(u Update) {
	switch u.Kind {
	case LinkUpdate:
		old, known := s.Links[u.Link.Index]
		if !u.Deleted {
			s.Links[u.Link.Index] = u.Link
			if known && old.Flags&LinkUp != 0 && u.Link.Flags&LinkUp == 0 {
				s.dropRoutesOnlyVia(u.Link.Index)
			}
			return
		}
		delete(s.Links, u.Link.Index)
		for k := range s.Addrs {
			if k.IfIndex == u.Link.Index {
				delete(s.Addrs, k)
			}
		}
		s.dropRoutesOnlyVia(u.Link.Index)
	case AddrUpdate:
		if u.Deleted {
			delete(s.Addrs, u.Addr.Key())
		} else {
			s.Addrs[u.Addr.Key()] = u.Addr
		}
	case RouteUpdate:
		if u.Deleted {
			if cur, ok := s.Routes[u.Route.Key()]; ok && cur.Protocol == u.Route.Protocol {
				delete(s.Routes, u.Route.Key())
			}
		} else {
			s.Routes[u.Route.Key()] = u.Route
		}
	case RuleUpdate:
		if u.Deleted {
			delete(s.Rules, u.Rule)
		} else {
			s.Rules[u.Rule] = struct{}{}
		}
	}
}

func (s State) dropRoutesOnlyVia(ifindex int) {
	for k, r := range s.Routes {
		if r.usesOnly(ifindex) {
			delete(s.Routes, k)
		}
	}
}

func (r Route) usesOnly(ifindex int) bool {
	if len(r.NextHops) == 0 {
		return false
	}
	for _, nh := range r.NextHops {
		if nh.IfIndex != ifindex {
			return false
		}
	}
	return true
}
