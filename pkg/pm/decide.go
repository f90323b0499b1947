package pm

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/order"
	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

// Input is everything a decision reads.
type Input struct {
	Config *config.Config
	Net    netstate.State
	// Kernel is the kernel's endpoint table as far as we know it.
	Kernel []netlinkmptcp.Endpoint
	// Records are the endpoints the state file says we created or adopted.
	Records []statefile.Endpoint
	// HeldUntil holds links back after flapping (see flapTracker) until the
	// given time; Now is compared with it.
	HeldUntil map[int]time.Time
	Now       time.Time
	// FirstSeen says when each address appeared while we watched; an
	// address present at start has none. See GatewayWait.
	FirstSeen map[netstate.AddrKey]time.Time
	// GatewayWait is how long a new address on an interface without a
	// gateway waits for one before it becomes an endpoint anyway.
	GatewayWait time.Duration
	// ARP reads an interface's effective ARP sysctls; it is asked only
	// about interfaces that share a subnet. Nil never warns.
	ARP func(ifname string) srcroute.ARP
	// Left are interfaces another program manages MPTCP on, and why
	// (Engine.LeaveTo).
	Left map[string]string
	// LeftAsOf is when the look at NetworkManager that Left comes from
	// began; zero when NetworkManager does not run. A new address that
	// appeared after it waits (up to NetworkManagerWait) for a later look:
	// NetworkManager may be configuring the device, and an endpoint added
	// meanwhile would be taken back a moment later.
	LeftAsOf time.Time
}

// NetworkManagerWait bounds how long a new address waits for NetworkManager
// to be asked about its device, when it runs: one D-Bus read normally takes
// milliseconds.
const NetworkManagerWait = 2 * time.Second

// Endpoint is an endpoint the configuration asks for.
type Endpoint struct {
	Addr     netip.Addr
	Port     uint16
	Flags    netlinkmptcp.Flags
	IfIndex  int
	IfName   string
	Priority int
}

func (e Endpoint) String() string {
	s := fmt.Sprintf("%s on %s (%s)", e.Addr, e.IfName, e.Flags)
	if e.Port != 0 {
		s += fmt.Sprintf(" port %d", e.Port)
	}
	return s
}

// Kernel returns the endpoint as it is written to the kernel.
func (e Endpoint) Kernel() netlinkmptcp.Endpoint {
	return netlinkmptcp.Endpoint{Addr: e.Addr, Port: e.Port, Flags: e.Flags, IfIndex: int32(e.IfIndex)}
}

// InterfaceStatus explains what is done with one link.
type InterfaceStatus struct {
	Link    netstate.Link `json:"link"`
	Managed bool          `json:"managed"`
	// Policy says why the configuration manages the link or not.
	Policy string `json:"policy"`
	// Withdrawn says why a managed link's endpoints are withdrawn (no
	// carrier, held down after flapping); empty while in use.
	Withdrawn string             `json:"withdrawn,omitempty"`
	Carrier   bool               `json:"carrier"`
	Gateways  []srcroute.Gateway `json:"gateways,omitempty"`
}

// AddressStatus explains what is done with one address.
type AddressStatus struct {
	Addr    netstate.Addr `json:"addr"`
	IfName  string        `json:"ifname"`
	Managed bool          `json:"managed"`
	// Reason says why the address is not an endpoint.
	Reason string `json:"reason,omitempty"`
}

// Decision is what the kernel should hold, and why.
type Decision struct {
	Interfaces []InterfaceStatus
	Addresses  []AddressStatus
	// Endpoints are the endpoints to hold, best first.
	Endpoints []Endpoint
	// OverCap are candidates left out by the kernel's endpoint limit.
	OverCap []Endpoint
	// Foreign are kernel endpoints that are not ours; they use slots.
	Foreign []netlinkmptcp.Endpoint
	// Owned are the ids of the kernel endpoints that are ours: recorded,
	// or Adopted.
	Owned map[uint8]bool
	// Adopted are the ids of unrecorded endpoints that are exactly what we
	// would create for a managed address: they become ours as they are.
	Adopted map[uint8]bool
	// Takeable are foreign endpoints that hold an address we would manage:
	// left alone, unless an administrator takes them over (Adopt).
	Takeable []netlinkmptcp.Endpoint
	Limits   netlinkmptcp.Limits
	Routing  srcroute.Plan
	// Warnings are conditions an administrator should fix; the same
	// warning is logged once while it lasts.
	Warnings []Warning
	// WaitingForNetworkManager: a new address waits for a look at
	// NetworkManager (Input.LeftAsOf), which the engine then asks for.
	WaitingForNetworkManager bool
}

// RoutingSettings returns the [routing] settings in srcroute's terms.
func RoutingSettings(c *config.Config) srcroute.Settings {
	return srcroute.Settings{TableBase: c.Routing.TableBase, RulePriority: c.Routing.RulePriority, Protocol: c.Routing.Protocol}
}

// Decide computes the endpoints, limits and routing the configuration asks
// for in the observed network. It is pure.
func Decide(in Input) Decision {
	var d Decision
	cfg := in.Config
	set := RoutingSettings(cfg)
	defaults := srcroute.NewDefaults(set, in.Net)
	d.Owned = recordedEndpoints(in)
	d.Adopted = map[uint8]bool{}
	byAddr := map[netip.Addr]netlinkmptcp.Endpoint{}
	for _, ep := range in.Kernel {
		byAddr[ep.Addr] = ep
	}

	var candidates []Endpoint
	seen := map[netip.Addr]string{}
	addrsByLink := in.Net.AddrsByLink()
	for _, link := range in.Net.SortedLinks() {
		pol := in.interfacePolicy(link.Name)
		st := InterfaceStatus{Link: link, Managed: pol.Managed, Policy: pol.Reason, Carrier: link.Carrier()}
		usable := ""
		switch {
		case !pol.Managed:
			usable = pol.Reason
		case !link.Carrier():
			st.Withdrawn = "no carrier"
			usable = st.Withdrawn
		case in.HeldUntil[link.Index].After(in.Now):
			st.Withdrawn = "held down after flapping until " + in.HeldUntil[link.Index].Format(time.TimeOnly)
			usable = st.Withdrawn
		}
		d.Interfaces = append(d.Interfaces, st)
		for _, a := range addrsByLink[link.Index] {
			as := AddressStatus{Addr: a, IfName: link.Name}
			as.Reason = usable
			if as.Reason == "" {
				as.Reason = skipReason(cfg, defaults, link, a)
			}
			if as.Reason == "" {
				if other, dup := seen[a.Addr]; dup {
					as.Reason = "address already managed on " + other
				}
			}
			c := Endpoint{
				Addr: a.Addr, Port: pol.Port, Flags: pol.Flags,
				IfIndex: link.Index, IfName: link.Name, Priority: pol.Priority,
			}
			if as.Reason == "" {
				if ep, ok := byAddr[a.Addr]; ok && !d.Owned[ep.ID] && ep.Flags&netlinkmptcp.FlagImplicit == 0 {
					// Not ours: adopted only if it is exactly what we
					// would create, else left to whoever made it.
					if exactEndpoint(ep, c) {
						d.Owned[ep.ID], d.Adopted[ep.ID] = true, true
					} else {
						as.Reason = foreignHolder(ep)
						d.Takeable = append(d.Takeable, ep)
					}
				}
			}
			if as.Reason == "" {
				seen[a.Addr] = link.Name
				candidates = append(candidates, c)
			}
			d.Addresses = append(d.Addresses, as)
		}
	}

	d.Foreign = foreignEndpoints(in.Kernel, d.Owned, seen)
	candidates, d.WaitingForNetworkManager = waitForNetworkManager(in, candidates, d.Addresses)
	if cfg.Routing.Enabled {
		candidates = waitForGateways(in, defaults, candidates, d.Addresses)
	}
	SortCandidates(candidates)
	budget := max(netlinkmptcp.MaxEndpoints-len(d.Foreign), 0)
	if len(candidates) > budget {
		d.OverCap = candidates[budget:]
		candidates = candidates[:budget]
		over := map[netip.Addr]bool{}
		for _, e := range d.OverCap {
			over[e.Addr] = true
		}
		reason := fmt.Sprintf("over the kernel's %d-endpoint limit (%d held by others)", netlinkmptcp.MaxEndpoints, len(d.Foreign))
		for i := range d.Addresses {
			if over[d.Addresses[i].Addr.Addr] && d.Addresses[i].Reason == "" {
				d.Addresses[i].Reason = reason
			}
		}
	}
	d.Endpoints = candidates
	chosen := map[netip.Addr]bool{}
	for _, e := range candidates {
		chosen[e.Addr] = true
	}
	for i := range d.Addresses {
		d.Addresses[i].Managed = chosen[d.Addresses[i].Addr.Addr]
	}
	d.Limits = netlinkmptcp.Limits{
		Subflows:        cfg.Limits.SubflowsFor(len(candidates)),
		AddAddrAccepted: cfg.Limits.AddAddrAccepted,
	}

	if cfg.Routing.Enabled {
		d.Routing = srcroute.Decide(set, routingSources(cfg, in.Net, candidates), in.Net)
		for _, gw := range d.Routing.Gateways {
			for i := range d.Interfaces {
				if d.Interfaces[i].Link.Index == gw.IfIndex {
					d.Interfaces[i].Gateways = append(d.Interfaces[i].Gateways, gw)
				}
			}
			if gw.Origin == srcroute.GatewayNone {
				d.Warnings = append(d.Warnings, Warning{Kind: WarnNoGateway, Iface: gw.IfName, Message: gw.Detail})
			}
		}
	}
	d.Warnings = append(d.Warnings, arpWarnings(in, candidates)...)
	return d
}

// waitForGateways holds back new addresses whose interface has no gateway
// yet. A DHCP client or a router advertisement sets the address a moment
// before the default route: an endpoint added in between would send its
// subflows nowhere, and the kernel does not try again once the route is
// there. So a new address waits (up to GatewayWait) for its gateway; one
// that still has none after that becomes an endpoint without a default
// route, with a warning.
func waitForGateways(in Input, defaults *srcroute.Defaults, candidates []Endpoint, addrs []AddressStatus) []Endpoint {
	kept := candidates[:0]
	for _, c := range candidates {
		key := netstate.AddrKey{IfIndex: c.IfIndex, Addr: c.Addr}
		seen, isNew := in.FirstSeen[key]
		until := seen.Add(in.GatewayWait)
		if isNew && in.Now.Before(until) {
			pol := in.Config.Interface(c.IfName)
			src := srcroute.Source{Addr: in.Net.Addrs[key], Link: in.Net.Links[c.IfIndex], Gateway4: pol.Gateway4, Gateway6: pol.Gateway6, OnLink: pol.OnLink}
			if defaults.GatewayFor(src).Origin == srcroute.GatewayNone {
				for i := range addrs {
					if addrs[i].Addr.Key() == key {
						addrs[i].Reason = fmt.Sprintf("waiting for a default route on %s until %s", c.IfName, until.Format(time.TimeOnly))
					}
				}
				continue
			}
		}
		kept = append(kept, c)
	}
	return kept
}

// waitForNetworkManager holds back the new addresses that appeared after
// the last look at NetworkManager began (Input.LeftAsOf), for at most
// NetworkManagerWait: NetworkManager configures a device's address before
// its D-Bus view says it manages MPTCP there.
func waitForNetworkManager(in Input, candidates []Endpoint, addrs []AddressStatus) (kept []Endpoint, waiting bool) {
	if in.LeftAsOf.IsZero() {
		return candidates, false
	}
	kept = candidates[:0]
	for _, c := range candidates {
		key := netstate.AddrKey{IfIndex: c.IfIndex, Addr: c.Addr}
		if until, waits := waitsForNetworkManager(in, key); waits {
			waiting = true
			for i := range addrs {
				if addrs[i].Addr.Key() == key {
					addrs[i].Reason = fmt.Sprintf("waiting for NetworkManager to say whether it manages %s, until %s", c.IfName, until.Format(time.TimeOnly))
				}
			}
			continue
		}
		kept = append(kept, c)
	}
	return kept, waiting
}

// waitsForNetworkManager says whether the address waits for a look at
// NetworkManager, and until when.
func waitsForNetworkManager(in Input, key netstate.AddrKey) (time.Time, bool) {
	seen, isNew := in.FirstSeen[key]
	until := seen.Add(NetworkManagerWait)
	return until, isNew && !in.LeftAsOf.IsZero() && !seen.Before(in.LeftAsOf) && in.Now.Before(until)
}

// WaitingUntil returns the earliest time an address waiting for its
// gateway or for NetworkManager stops waiting, zero if none waits.
func WaitingUntil(in Input) time.Time {
	var next time.Time
	earlier := func(t time.Time) {
		if t.After(in.Now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for key, seen := range in.FirstSeen {
		earlier(seen.Add(in.GatewayWait))
		if until, waits := waitsForNetworkManager(in, key); waits {
			earlier(until)
		}
	}
	return next
}

// SortCandidates orders candidates for the endpoint slots, best first:
// configured priority (higher first); then spread across interfaces, every
// interface's best address before any interface's second (path diversity
// is the point of MPTCP); then ifindex, IPv4 before IPv6, and address, so
// the choice is the same on every run.
func SortCandidates(cs []Endpoint) {
	within := func(a, b Endpoint) int {
		return cmp.Or(order.FalseFirst(a.Addr.Is6(), b.Addr.Is6()), a.Addr.Compare(b.Addr))
	}
	slices.SortFunc(cs, func(a, b Endpoint) int { return cmp.Or(cmp.Compare(a.IfIndex, b.IfIndex), within(a, b)) })
	rank := make([]int, len(cs))
	for i := range cs {
		if i > 0 && cs[i].IfIndex == cs[i-1].IfIndex {
			rank[i] = rank[i-1] + 1
		}
	}
	type ranked struct {
		Endpoint
		rank int
	}
	rs := make([]ranked, len(cs))
	for i, c := range cs {
		rs[i] = ranked{c, rank[i]}
	}
	slices.SortFunc(rs, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.rank, b.rank),
			cmp.Compare(a.IfIndex, b.IfIndex), within(a.Endpoint, b.Endpoint))
	})
	for i := range rs {
		cs[i] = rs[i].Endpoint
	}
}

// skipReason says why an address on a managed, usable link is not a
// candidate, or "" when it is.
func skipReason(cfg *config.Config, defaults *srcroute.Defaults, link netstate.Link, a netstate.Addr) string {
	ip := a.Addr
	switch {
	case ip.Is4() && !cfg.Endpoints.IPv4:
		return "IPv4 is not in endpoints.families"
	case ip.Is6() && !cfg.Endpoints.IPv6:
		return "IPv6 is not in endpoints.families"
	case ip.IsLoopback() || a.Scope == netstate.ScopeHost:
		return "loopback address"
	case ip.IsMulticast() || ip.IsUnspecified():
		return "not a unicast address"
	case ip.IsLinkLocalUnicast() && cfg.Endpoints.SkipLinkLocal:
		return "link-local address (skip_link_local)"
	case ip.Is6() && isULA(ip) && cfg.Endpoints.SkipULA:
		return "unique local address (skip_ula)"
	case a.Temporary() && cfg.Endpoints.SkipTemporary:
		return "temporary privacy address (skip_temporary)"
	case a.Flags&netstate.AddrDADFailed != 0:
		return "duplicate address detection failed"
	case a.Flags&netstate.AddrTentative != 0:
		return "tentative: duplicate address detection still running"
	case a.Flags&netstate.AddrDeprecated != 0:
		return "deprecated: preferred lifetime over"
	case cfg.Endpoints.RequireDefaultRoute && !defaults.HasDefaultRoute(link.Index, ip.Is6()):
		return fmt.Sprintf("no %s default route on %s (require_default_route)", familyName(ip), link.Name)
	}
	return ""
}

func isULA(ip netip.Addr) bool { return ip.Is6() && ip.As16()[0]&0xfe == 0xfc }

func familyName(ip netip.Addr) string {
	if ip.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// endpointLink finds the link an endpoint belongs to: its bound device, or
// else the link holding its address.
func endpointLink(net netstate.State, ep netlinkmptcp.Endpoint) (netstate.Link, bool) {
	if ep.IfIndex != 0 {
		l, ok := net.Links[int(ep.IfIndex)]
		return l, ok
	}
	for _, a := range net.Addrs {
		if a.Addr == ep.Addr {
			l, ok := net.Links[a.IfIndex]
			return l, ok
		}
	}
	return netstate.Link{}, false
}

func routingSources(cfg *config.Config, net netstate.State, eps []Endpoint) []srcroute.Source {
	var out []srcroute.Source
	for _, e := range eps {
		a := net.Addrs[netstate.AddrKey{IfIndex: e.IfIndex, Addr: e.Addr}]
		pol := cfg.Interface(e.IfName)
		out = append(out, srcroute.Source{
			Addr: a, Link: net.Links[e.IfIndex],
			Gateway4: pol.Gateway4, Gateway6: pol.Gateway6, OnLink: pol.OnLink,
		})
	}
	return out
}

func arpWarnings(in Input, eps []Endpoint) []Warning {
	if in.ARP == nil {
		return nil
	}
	var sources []srcroute.Source
	for _, e := range eps {
		sources = append(sources, srcroute.Source{Addr: in.Net.Addrs[netstate.AddrKey{IfIndex: e.IfIndex, Addr: e.Addr}], Link: in.Net.Links[e.IfIndex]})
	}
	var out []Warning
	for _, sh := range srcroute.SharedSubnets(sources) {
		var unsafe []string
		for _, name := range sh.Links {
			if !in.ARP(name).Safe() {
				unsafe = append(unsafe, name)
			}
		}
		if len(unsafe) > 0 {
			out = append(out, Warning{Kind: WarnARPSettings, Iface: strings.Join(unsafe, ","),
				Message: fmt.Sprintf("%s share %s but %s lack arp_ignore=1 and arp_announce=2 (or arp_filter=1): the LAN may deliver one NIC's traffic to the other; set them with sysctl",
					strings.Join(sh.Links, " and "), sh.Prefix, strings.Join(unsafe, ", "))})
		}
	}
	return out
}
