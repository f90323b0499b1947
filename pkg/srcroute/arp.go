package srcroute

import (
	"net/netip"
	"slices"
)

// ARP holds the effective ARP sysctls of one interface: the larger of the
// "all" and per-interface values for arp_ignore and arp_announce, and either
// of them for arp_filter, as the kernel combines them.
type ARP struct {
	Ignore, Announce int
	Filter           bool
}

// Safe tells whether the settings keep two NICs in one subnet apart: each
// answers ARP only for its own addresses and announces only those, or
// arp_filter ties replies to the routing decision. Without this the LAN
// may send one NIC's traffic to the other, and the source routing is moot.
func (a ARP) Safe() bool { return a.Filter || (a.Ignore >= 1 && a.Announce >= 2) }

// SharedSubnet is an IPv4 prefix that endpoint addresses of more than one
// interface lie in.
type SharedSubnet struct {
	Prefix netip.Prefix
	Links  []string
}

// SharedSubnets lists the IPv4 prefixes shared by sources on different
// links (IPv6 neighbour discovery has no such problem).
func SharedSubnets(sources []Source) []SharedSubnet {
	links := map[netip.Prefix][]string{}
	var order []netip.Prefix
	for _, s := range sources {
		if !s.Addr.Addr.Is4() {
			continue
		}
		p := s.Addr.Prefix.Masked()
		if _, ok := links[p]; !ok {
			order = append(order, p)
		}
		if !slices.Contains(links[p], s.Link.Name) {
			links[p] = append(links[p], s.Link.Name)
		}
	}
	var out []SharedSubnet
	for _, p := range order {
		if len(links[p]) > 1 {
			out = append(out, SharedSubnet{Prefix: p, Links: links[p]})
		}
	}
	return out
}
