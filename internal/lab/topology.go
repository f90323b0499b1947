package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Variant is how the client's uplinks are addressed and routed.
type Variant int

const (
	// DHCP gives every client uplink its own default route in the client's
	// main table, at metric 100 for eth1, 200 for eth2, 300 for eth3, as a
	// DHCP client or router advertisements would (proto dhcp).
	DHCP Variant = iota
	// Static gives only eth1 a default route (proto static); every other
	// uplink has its address and connected route only, so its gateway must
	// come from the configuration of the daemon under test.
	Static
	// OneLAN puts all client NICs into one subnet (192.0.2.0/24,
	// 2001:db8:1::/64) behind one gateway: the router bridges its ends into
	// br0, which holds the gateway address. The client's main table has one
	// default route, via eth1, and the client has the ARP settings two NICs
	// in one subnet need (arp_ignore=1, arp_announce=2).
	OneLAN
)

func (v Variant) String() string {
	switch v {
	case DHCP:
		return "dhcp"
	case Static:
		return "static"
	case OneLAN:
		return "onelan"
	}
	return "variant" + strconv.Itoa(int(v))
}

// Family is an address family of the lab.
type Family int

const (
	V4 Family = 4
	V6 Family = 6
)

func (f Family) String() string {
	if f == V6 {
		return "ipv6"
	}
	return "ipv4"
}

// Network is the Go network name for TCP in this family: tcp4 or tcp6.
func (f Family) Network() string {
	if f == V6 {
		return "tcp6"
	}
	return "tcp4"
}

// ipFlag is the ip(8) family option.
func (f Family) ipFlag() string {
	if f == V6 {
		return "-6"
	}
	return "-4"
}

// TopologyOptions selects the lab's shape.
type TopologyOptions struct {
	Variant Variant
	// IPv6 adds IPv6 addresses and routes beside the IPv4 ones.
	IPv6 bool
	// RateMbit shapes every client uplink to this rate in both directions:
	// tbf as root qdisc of the client's end and the router's end, with a
	// burst of max(64 KiB, 4 ms at the rate) and latency 50ms. 0 leaves
	// them unshaped.
	RateMbit int
	// ServerSecondUplink gives the server a second link to the router
	// (server eth2, router rs2), so a signal endpoint on its second
	// address can be announced and joined.
	ServerSecondUplink bool
	// Checksums sets net.mptcp.checksum_enabled=1 on client and server,
	// which makes the kernel's known misdelivery rarer (docs/architecture.md).
	Checksums bool
	// Client, if set, is the client instead of a new namespace: Machine,
	// in a test guest, where the daemon under test runs as a service.
	Client *NS
}

// Uplink is one link between a host (client or server) and the router.
// Addresses of a family the topology does not use are the zero value.
type Uplink struct {
	// Dev is the host's end (client eth1, eth2, ...; server eth1, eth2).
	Dev string
	// RouterDev is the router's end (r1, r2, ...; rs1, rs2). In OneLAN
	// the client-side ends are ports of the router's bridge br0.
	RouterDev string
	// Addr4 and Addr6 are the host's addresses, Gateway4 and Gateway6 the
	// router's on this link, Prefix4 and Prefix6 the link's prefixes.
	Addr4, Gateway4 netip.Addr
	Prefix4         netip.Prefix
	Addr6, Gateway6 netip.Addr
	Prefix6         netip.Prefix
	// DefaultRoute says whether the host's main table has a default route
	// via this link, and Metric is that route's metric.
	DefaultRoute bool
	Metric       int
}

// Addr is the host's address in family f.
func (u Uplink) Addr(f Family) netip.Addr {
	if f == V6 {
		return u.Addr6
	}
	return u.Addr4
}

// Gateway is the router's address on this link in family f.
func (u Uplink) Gateway(f Family) netip.Addr {
	if f == V6 {
		return u.Gateway6
	}
	return u.Gateway4
}

// Prefix is the link's prefix in family f.
func (u Uplink) Prefix(f Family) netip.Prefix {
	if f == V6 {
		return u.Prefix6
	}
	return u.Prefix4
}

// Topology is a client with several uplinks to a router with strict
// reverse-path filtering, and a server behind the router:
//
//	client eth1 ---- r1  \
//	client eth2 ---- r2   router  rs1 ---- eth1 server
//	client eth3 ---- r3  /        rs2 ---- eth2 server
//	(eth3: AddUplink)             (eth2: ServerSecondUplink)
//
// Addresses (host .2 and ::2, router .1 and ::1):
//
//	client eth1 / r1    192.0.2.0/24     2001:db8:1::/64
//	client eth2 / r2    198.51.100.0/24  2001:db8:2::/64
//	client eth3 / r3    198.18.0.0/24    2001:db8:5::/64  (AddUplink)
//	client eth4..eth6   198.18.2-4.0/24  2001:db8:6-8::/64 (AddUplink)
//	server eth1 / rs1   203.0.113.0/24   2001:db8:3::/64
//	server eth2 / rs2   198.18.1.0/24    2001:db8:4::/64  (ServerSecondUplink)
//
// In OneLAN every client NIC is in 192.0.2.0/24 and 2001:db8:1::/64 (eth1
// .2 and ::2, eth2 .3 and ::3, eth3 .4 and ::4, ...), and r1, r2, ... are
// ports of the router's bridge br0, which holds .1 and ::1.
//
// The router drops what a strict reverse-path check drops: IPv4 through
// rp_filter=1 (all, default and every interface); IPv6, which has no such
// sysctl, through policy rules `iif DEV from PREFIX blackhole` (pref 100)
// for every lab prefix that does not belong to DEV's link. Blackhole,
// unlike prohibit, drops silently as rp_filter does, so a wrongly routed
// subflow times out in both families. IPv6 sources outside the lab's
// prefixes are not checked.
//
// The server's main table has one default route, via eth1; traffic from
// its second address needs source routing (ServerSourceRouting, or the
// daemon under test) to leave through eth2, or the router drops it.
//
// Methods without a tb argument report failures to the tb given to
// NewTopology, so call them from that test's goroutine, not a subtest's.
type Topology struct {
	Client, Router, Server *NS
	Options                TopologyOptions
	// Uplinks are the client's links, Uplinks[0] is eth1.
	Uplinks []Uplink
	// ServerLinks are the server's links: [0] is eth1, [1] is eth2 when
	// ServerSecondUplink is set.
	ServerLinks []Uplink
	// Bridge is the router's bridge in OneLAN ("br0"), else empty.
	Bridge string

	tb       TB
	routerL3 []routerLink
}

// routerLink is a router interface that routes, with its IPv6 prefix, for
// the reverse-path rules.
type routerLink struct {
	dev     string
	prefix6 netip.Prefix
}

// uplinkNets are the client uplinks' prefixes in order: eth1, eth2, then
// the ones AddUplink plugs in.
var uplinkNets = []struct{ v4, v6 netip.Prefix }{
	{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8:1::/64")},
	{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:2::/64")},
	{netip.MustParsePrefix("198.18.0.0/24"), netip.MustParsePrefix("2001:db8:5::/64")},
	{netip.MustParsePrefix("198.18.2.0/24"), netip.MustParsePrefix("2001:db8:6::/64")},
	{netip.MustParsePrefix("198.18.3.0/24"), netip.MustParsePrefix("2001:db8:7::/64")},
	{netip.MustParsePrefix("198.18.4.0/24"), netip.MustParsePrefix("2001:db8:8::/64")},
}

// serverNets are the server links' prefixes: eth1, then eth2.
var serverNets = []struct{ v4, v6 netip.Prefix }{
	{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:3::/64")},
	{netip.MustParsePrefix("198.18.1.0/24"), netip.MustParsePrefix("2001:db8:4::/64")},
}

// Shaping: tbf's bucket holds 64 KiB at least, and 4 ms of traffic at high
// rates, so that a 64 KiB GSO packet passes whole; the queue holds 50 ms of
// traffic before tbf drops. With these one TCP flow over veth reached
// 93-96% of 50 and 200 mbit/s here (20 ms queues gave 80-96%).
const (
	shapeBurst     = 64 << 10
	shapeBurstTime = 4 // milliseconds
	shapeLatency   = "50ms"
)

// labTable and labRulePref are used by the source routing that tests
// install by hand; they stay clear of mptcpgd's defaults (10000+).
const (
	labTableBase = 200
	labRulePref  = 1000
	rpfRulePref  = 100
)

// NewTopology builds the lab in three new namespaces (client, router,
// server; the client may be given), all deleted when tb ends.
func NewTopology(tb TB, opt TopologyOptions) *Topology {
	tb.Helper()
	client := opt.Client
	if client == nil {
		client = New(tb, "client")
	}
	t := &Topology{
		Client:  client,
		Router:  New(tb, "router"),
		Server:  New(tb, "server"),
		Options: opt,
		tb:      tb,
	}
	// Set before any interface exists, so that every new one inherits them.
	// The router (and server) skip duplicate address detection on their
	// link-local addresses too: the kernel sends neighbour solicitations for
	// forwarded packets only from a link-local address that is no longer
	// tentative, so IPv6 would not forward for the first second or two.
	// The router keeps its IPv6 addresses when CablePull sets its end
	// down, as a real router's port keeps them when a cable is pulled.
	noDAD := []string{"net.ipv6.conf.all.accept_dad", "0", "net.ipv6.conf.default.accept_dad", "0"}
	t.Router.sysctls(tb, append(noDAD,
		"net.ipv6.conf.all.keep_addr_on_down", "1",
		"net.ipv6.conf.default.keep_addr_on_down", "1",
		"net.ipv4.ip_forward", "1",
		"net.ipv6.conf.all.forwarding", "1",
		"net.ipv4.conf.all.rp_filter", "1",
		"net.ipv4.conf.default.rp_filter", "1",
	)...)
	t.Server.sysctls(tb, noDAD...)
	if opt.Variant == OneLAN {
		t.Client.sysctls(tb,
			"net.ipv4.conf.all.arp_ignore", "1",
			"net.ipv4.conf.all.arp_announce", "2",
			"net.ipv4.conf.default.arp_ignore", "1",
			"net.ipv4.conf.default.arp_announce", "2",
		)
		t.Bridge = "br0"
		t.Router.tool(tb, "ip", "link", "add", t.Bridge, "type", "bridge", "mcast_snooping", "0")
		t.Router.tool(tb, "ip", "link", "set", t.Bridge, "up")
		t.Router.sysctls(tb, "net.ipv4.conf."+t.Bridge+".rp_filter", "1")
		t.routerAddrs(tb, t.Bridge, t.uplinkPlan(0))
	}
	if opt.Checksums {
		t.Client.sysctls(tb, "net.mptcp.checksum_enabled", "1")
		t.Server.sysctls(tb, "net.mptcp.checksum_enabled", "1")
	}
	for range 2 {
		t.AddUplink(tb)
	}
	t.addServerLink(tb)
	if opt.ServerSecondUplink {
		t.addServerLink(tb)
	}
	return t
}

// Families are the address families the topology uses.
func (t *Topology) Families() []Family {
	if t.Options.IPv6 {
		return []Family{V4, V6}
	}
	return []Family{V4}
}

// ServerAddr is the server's address on eth1 in family f.
func (t *Topology) ServerAddr(f Family) netip.Addr { return t.ServerLinks[0].Addr(f) }

// uplinkPlan is the addressing of client uplink i (0 is eth1) before it
// exists.
func (t *Topology) uplinkPlan(i int) Uplink {
	u := Uplink{Dev: fmt.Sprintf("eth%d", i+1), RouterDev: fmt.Sprintf("r%d", i+1)}
	nets, host := uplinkNets[i], byte(2)
	if t.Options.Variant == OneLAN {
		nets, host = uplinkNets[0], byte(2+i)
	}
	u.Prefix4, u.Addr4, u.Gateway4 = nets.v4, HostIn(nets.v4, host), HostIn(nets.v4, 1)
	if t.Options.IPv6 {
		u.Prefix6, u.Addr6, u.Gateway6 = nets.v6, HostIn(nets.v6, host), HostIn(nets.v6, 1)
	}
	switch t.Options.Variant {
	case DHCP:
		u.DefaultRoute, u.Metric = true, 100*(i+1)
	case Static, OneLAN:
		u.DefaultRoute = i == 0
	}
	return u
}

// AddUplink plugs in the next client uplink (eth3/r3 first, then eth4/r4,
// up to eth6) as a hot-plugged NIC would appear: link, carrier, addresses,
// then, in DHCP, its default route at metric 100 x its number. In Static
// it gets its address only; in OneLAN it joins the LAN (192.0.2.4,
// 2001:db8:1::4 for eth3) without a route. Shaping and the router's
// reverse-path strictness apply to it as to the others.
func (t *Topology) AddUplink(tb TB) Uplink {
	tb.Helper()
	i := len(t.Uplinks)
	if i >= len(uplinkNets) {
		tb.Fatalf("add uplink eth%d: the lab has prefixes for %d uplinks", i+1, len(uplinkNets))
	}
	u := t.uplinkPlan(i)
	veth(tb, t.Client, u.Dev, t.Router, u.RouterDev)
	t.Router.sysctls(tb, "net.ipv4.conf."+u.RouterDev+".rp_filter", "1")
	if t.Options.Variant == OneLAN {
		t.Router.tool(tb, "ip", "link", "set", u.RouterDev, "master", t.Bridge)
		t.Client.sysctls(tb,
			"net.ipv4.conf."+u.Dev+".arp_ignore", "1",
			"net.ipv4.conf."+u.Dev+".arp_announce", "2",
		)
	} else {
		t.routerAddrs(tb, u.RouterDev, u)
	}
	t.shape(tb, t.Client, u.Dev)
	t.shape(tb, t.Router, u.RouterDev)
	hostAddrs(tb, t.Client, u)
	if u.DefaultRoute {
		proto := "static"
		if t.Options.Variant == DHCP {
			proto = "dhcp"
		}
		for _, f := range t.Families() {
			args := []string{f.ipFlag(), "route", "add", "default", "via", u.Gateway(f).String(), "dev", u.Dev, "proto", proto}
			if u.Metric != 0 {
				args = append(args, "metric", strconv.Itoa(u.Metric))
			}
			t.Client.tool(tb, "ip", args...)
		}
	}
	t.Uplinks = append(t.Uplinks, u)
	return u
}

// addServerLink connects the server's next link: eth1/rs1, then eth2/rs2.
// Only eth1 gets the server's default route.
func (t *Topology) addServerLink(tb TB) {
	tb.Helper()
	i := len(t.ServerLinks)
	nets := serverNets[i]
	u := Uplink{
		Dev: fmt.Sprintf("eth%d", i+1), RouterDev: fmt.Sprintf("rs%d", i+1),
		Prefix4: nets.v4, Addr4: HostIn(nets.v4, 2), Gateway4: HostIn(nets.v4, 1),
		DefaultRoute: i == 0,
	}
	if t.Options.IPv6 {
		u.Prefix6, u.Addr6, u.Gateway6 = nets.v6, HostIn(nets.v6, 2), HostIn(nets.v6, 1)
	}
	veth(tb, t.Server, u.Dev, t.Router, u.RouterDev)
	t.Router.sysctls(tb, "net.ipv4.conf."+u.RouterDev+".rp_filter", "1")
	t.routerAddrs(tb, u.RouterDev, u)
	hostAddrs(tb, t.Server, u)
	if u.DefaultRoute {
		for _, f := range t.Families() {
			t.Server.tool(tb, "ip", f.ipFlag(), "route", "add", "default", "via", u.Gateway(f).String(), "dev", u.Dev, "proto", "static")
		}
	}
	t.ServerLinks = append(t.ServerLinks, u)
}

// routerAddrs gives router interface dev the gateway addresses of u and
// makes IPv6 reverse-path checks on it strict.
func (t *Topology) routerAddrs(tb TB, dev string, u Uplink) {
	tb.Helper()
	t.Router.tool(tb, "ip", "addr", "add", prefixed(u.Gateway4, u.Prefix4), "dev", dev)
	if !t.Options.IPv6 {
		return
	}
	t.Router.tool(tb, "ip", "addr", "add", prefixed(u.Gateway6, u.Prefix6), "dev", dev, "nodad")
	link := routerLink{dev: dev, prefix6: u.Prefix6}
	for _, other := range t.routerL3 {
		t.blackholeFrom(tb, link.dev, other.prefix6)
		t.blackholeFrom(tb, other.dev, link.prefix6)
	}
	t.routerL3 = append(t.routerL3, link)
}

// blackholeFrom drops IPv6 packets from prefix that arrive on dev: the
// strict reverse-path check IPv6 lacks.
func (t *Topology) blackholeFrom(tb TB, dev string, prefix netip.Prefix) {
	tb.Helper()
	t.Router.tool(tb, "ip", "-6", "rule", "add", "pref", strconv.Itoa(rpfRulePref), "iif", dev, "from", prefix.String(), "blackhole")
}

// hostAddrs gives a host's end of u its addresses; IPv6 ones skip duplicate
// address detection so that they are usable at once.
func hostAddrs(tb TB, host *NS, u Uplink) {
	tb.Helper()
	host.tool(tb, "ip", "addr", "add", prefixed(u.Addr4, u.Prefix4), "dev", u.Dev)
	if u.Addr6.IsValid() {
		host.tool(tb, "ip", "addr", "add", prefixed(u.Addr6, u.Prefix6), "dev", u.Dev, "nodad")
	}
}

// shape limits dev's egress to the topology's rate with tbf.
func (t *Topology) shape(tb TB, n *NS, dev string) {
	tb.Helper()
	if t.Options.RateMbit <= 0 {
		return
	}
	burst := max(shapeBurst, t.Options.RateMbit*1_000_000/8*shapeBurstTime/1000)
	n.tool(tb, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
		"rate", strconv.Itoa(t.Options.RateMbit)+"mbit", "burst", strconv.Itoa(burst), "latency", shapeLatency)
}

// CablePull takes Uplinks[i]'s carrier away as a pulled cable does: the
// router's end goes down, so the client's end reports NO-CARRIER.
// CablePull(0) pulls eth1.
func (t *Topology) CablePull(i int) {
	t.tb.Helper()
	t.Router.tool(t.tb, "ip", "link", "set", t.Uplinks[i].RouterDev, "down")
}

// CablePlug gives Uplinks[i] its carrier back.
func (t *Topology) CablePlug(i int) {
	t.tb.Helper()
	t.Router.tool(t.tb, "ip", "link", "set", t.Uplinks[i].RouterDev, "up")
}

// ClientSourceRouting installs by hand, on the client, the source routing
// that makes Uplinks[i] usable from its own addresses (what mptcpgd does),
// for tests of things other than the daemon. Table 200+i+1, rule pref 1000.
func (t *Topology) ClientSourceRouting(i int) {
	t.tb.Helper()
	t.Client.sourceRouting(t.tb, labTableBase+i+1, t.Uplinks[i])
}

// ServerSourceRouting installs by hand, on the server, the source routing
// that makes traffic from the server's second address leave through eth2
// (ServerSecondUplink). Table 211, rule pref 1000.
func (t *Topology) ServerSourceRouting() {
	t.tb.Helper()
	if len(t.ServerLinks) < 2 {
		t.tb.Fatal("server source routing: the topology has no second server link (ServerSecondUplink)")
	}
	t.Server.sourceRouting(t.tb, labTableBase+11, t.ServerLinks[1])
}

// sourceRouting adds `from ADDR lookup table` and a table with u's connected
// route and a default route via u's gateway, for every address of u.
func (n *NS) sourceRouting(tb TB, table int, u Uplink) {
	tb.Helper()
	tab := strconv.Itoa(table)
	for _, f := range []Family{V4, V6} {
		addr := u.Addr(f)
		if !addr.IsValid() {
			continue
		}
		n.tool(tb, "ip", f.ipFlag(), "route", "add", u.Prefix(f).String(), "dev", u.Dev, "src", addr.String(), "table", tab)
		n.tool(tb, "ip", f.ipFlag(), "route", "add", "default", "via", u.Gateway(f).String(), "dev", u.Dev, "table", tab)
		n.tool(tb, "ip", f.ipFlag(), "rule", "add", "pref", strconv.Itoa(labRulePref), "from", addr.String(), "lookup", tab)
	}
}

// sysctls sets key/value pairs in the namespace by writing /proc/sys from a
// thread inside it, which is much faster than running sysctl(8).
func (n *NS) sysctls(tb TB, kv ...string) {
	tb.Helper()
	err := n.Do(func() error {
		for i := 0; i+1 < len(kv); i += 2 {
			if err := os.WriteFile(sysctlPath(kv[i]), []byte(kv[i+1]), 0o644); err != nil {
				return fmt.Errorf("set sysctl %s=%s: %w", kv[i], kv[i+1], err)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("in %s: %v", n.Name, err)
	}
}

// SysctlValue reads a sysctl (dotted name) in the namespace.
func (n *NS) SysctlValue(key string) (string, error) {
	var v []byte
	err := n.Do(func() error {
		var err error
		v, err = os.ReadFile(sysctlPath(key))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read sysctl %s in %s: %w", key, n.Name, err)
	}
	return strings.TrimSpace(string(v)), nil
}

// sysctlPath maps a dotted sysctl name to its /proc/sys file; the lab's
// interface names have no dots.
func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

// HostIn is the address of prefix p whose last byte is last: HostIn of
// 192.0.2.0/24 and 1 is 192.0.2.1.
func HostIn(p netip.Prefix, last byte) netip.Addr {
	if p.Addr().Is4() {
		a := p.Addr().As4()
		a[3] = last
		return netip.AddrFrom4(a)
	}
	a := p.Addr().As16()
	a[15] = last
	return netip.AddrFrom16(a)
}

// prefixed writes addr with p's length, as ip addr add wants it.
func prefixed(addr netip.Addr, p netip.Prefix) string {
	return netip.PrefixFrom(addr, p.Bits()).String()
}
