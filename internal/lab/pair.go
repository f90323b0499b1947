package lab

import (
	"fmt"
	"net/netip"
)

// PairLink is one veth link between the client and the server of NewPair.
// Zero indexes let the kernel number the devices; fixed ones keep messages
// captured from the kernel reproducible. Invalid addresses are not added.
type PairLink struct {
	ClientDev, ServerDev     string
	ClientIndex, ServerIndex int
	// Client4 and Server4 get a /24, Client6 and Server6 a /64 (no DAD).
	Client4, Server4 netip.Addr
	Client6, Server6 netip.Addr
}

// NewPair builds two namespaces, "client" and "server", joined directly by
// links, with reverse-path filtering off in both: the small network the
// netlink packages test against, without a router.
func NewPair(tb TB, links []PairLink) (client, server *NS) {
	tb.Helper()
	client, server = New(tb, "client"), New(tb, "server")
	for _, ns := range []*NS{client, server} {
		ns.Sysctl("net.ipv4.conf.all.rp_filter", "0")
		ns.Sysctl("net.ipv4.conf.default.rp_filter", "0")
	}
	for _, l := range links {
		args := []string{"link", "add", l.ClientDev}
		if l.ClientIndex != 0 {
			args = append(args, "index", fmt.Sprint(l.ClientIndex))
		}
		args = append(args, "type", "veth", "peer", "name", l.ServerDev)
		if l.ServerIndex != 0 {
			args = append(args, "index", fmt.Sprint(l.ServerIndex))
		}
		client.tool(tb, "ip", append(args, "netns", server.Name)...)
		client.tool(tb, "ip", "link", "set", l.ClientDev, "up")
		server.tool(tb, "ip", "link", "set", l.ServerDev, "up")
		for _, a := range []struct {
			ns   *NS
			dev  string
			addr netip.Addr
		}{{client, l.ClientDev, l.Client4}, {server, l.ServerDev, l.Server4}, {client, l.ClientDev, l.Client6}, {server, l.ServerDev, l.Server6}} {
			switch {
			case !a.addr.IsValid():
			case a.addr.Is4():
				a.ns.tool(tb, "ip", "addr", "add", a.addr.String()+"/24", "dev", a.dev)
			default:
				a.ns.tool(tb, "ip", "-6", "addr", "add", a.addr.String()+"/64", "dev", a.dev, "nodad")
			}
		}
	}
	return client, server
}
