package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Timeouts for connection checks: one that should work gets plenty of
// time; one that should fail is given up after failTimeout, longer than a
// working connection here takes by orders of magnitude.
const (
	workTimeout = 10 * time.Second
	failTimeout = time.Second
)

func TestTopology(t *testing.T) {
	for _, v := range []Variant{DHCP, Static, OneLAN} {
		t.Run(v.String(), func(t *testing.T) {
			topo := NewTopology(t, TopologyOptions{Variant: v, IPv6: true})
			checkAddressing(t, topo)
			checkRoutes(t, topo)
			checkRouter(t, topo)
			checkUnshaped(t, topo)
			echo := startEcho(t, topo.Server, topo.ServerLinks[0])

			for _, f := range topo.Families() {
				if err := tcpWorks(topo.Client, echo[f], DialOptions{Local: topo.Uplinks[0].Addr(f)}, workTimeout); err != nil {
					t.Errorf("plain TCP from uplink 1 (%s): %v", f, err)
				}
			}
			if v != OneLAN {
				// In OneLAN every client address is in the one LAN's prefix,
				// so no address is foreign to either uplink.
				for _, f := range topo.Families() {
					checkStrictRPF(t, topo, f, 1)
				}
			}
			checkUplink2WithoutSourceRouting(t, topo, echo)
			for i := range topo.Uplinks {
				topo.ClientSourceRouting(i)
			}
			for _, f := range topo.Families() {
				for _, u := range topo.Uplinks {
					for _, opt := range []DialOptions{{Local: u.Addr(f)}, {Local: u.Addr(f), Device: u.Dev}} {
						if err := tcpWorks(topo.Client, echo[f], opt, workTimeout); err != nil {
							t.Errorf("with source routing, TCP from %s (device %q): %v", opt.Local, opt.Device, err)
						}
					}
				}
			}

			checkCable(t, topo, 1, echo)

			u := topo.AddUplink(t)
			if u.Dev != "eth3" || u.RouterDev != "r3" {
				t.Errorf("AddUplink plugged %s/%s, want eth3/r3", u.Dev, u.RouterDev)
			}
			checkAddressing(t, topo)
			checkRoutes(t, topo)
			checkRouter(t, topo)
			if v != OneLAN {
				for _, f := range topo.Families() {
					checkStrictRPF(t, topo, f, 2)
				}
			}
			topo.ClientSourceRouting(2)
			for _, f := range topo.Families() {
				if err := tcpWorks(topo.Client, echo[f], DialOptions{Local: u.Addr(f), Device: u.Dev}, workTimeout); err != nil {
					t.Errorf("TCP over the added uplink (%s): %v", f, err)
				}
			}
			checkCable(t, topo, 2, echo)
		})
	}
}

// checkUplink2WithoutSourceRouting checks what a connection from uplink
// 2's address does before anyone installs source routing: this is where
// tests of the daemon can fail. An unbound socket follows the main table;
// a device-bound one (as the subflows of a device-bound endpoint are) needs
// a route through its device.
func checkUplink2WithoutSourceRouting(t *testing.T, topo *Topology, echo map[Family]netip.AddrPort) {
	t.Helper()
	// unboundWorks, boundWorks by variant.
	want := map[Variant][2]bool{
		// Main table's best default route leaves by eth1: the router's
		// RPF drops it. eth2 has its own default route for bound sockets.
		DHCP: {false, true},
		// Only eth1 has a default route: unbound leaves by eth1 and is
		// dropped; bound finds no route through eth2.
		Static: {false, false},
		// One LAN: unbound leaves by eth1 with eth2's address, which the
		// router accepts (same prefix) and answers to eth2, as on a real
		// LAN; bound finds no route through eth2.
		OneLAN: {true, false},
	}[topo.Options.Variant]
	u := topo.Uplinks[1]
	for _, f := range topo.Families() {
		for i, opt := range []DialOptions{{Local: u.Addr(f)}, {Local: u.Addr(f), Device: u.Dev}} {
			timeout := workTimeout
			if !want[i] {
				timeout = failTimeout
			}
			err := tcpWorks(topo.Client, echo[f], opt, timeout)
			if (err == nil) != want[i] {
				t.Errorf("without source routing, TCP from %s (device %q): error %v, want works=%t", opt.Local, opt.Device, err, want[i])
			}
		}
	}
}

// checkStrictRPF sends pings from uplink src's address out of uplink 1
// and, as a control, out of uplink src itself; the router must drop the
// first and forward the second.
func checkStrictRPF(t *testing.T, topo *Topology, f Family, src int) {
	t.Helper()
	from, right, wrong := topo.Uplinks[src].Addr(f), topo.Uplinks[src], topo.Uplinks[0]
	server := topo.ServerAddr(f).String()
	// Resolve uplink 1's gateway from its own address first, so that the
	// spoofed packet is not lost to address resolution instead.
	topo.Client.MustExec("ping", f.ipFlag(), "-c1", "-W2", "-I", wrong.Addr(f).String(), wrong.Gateway(f).String())

	const table = "250"
	route := func(u Uplink) {
		topo.Client.IP(f.ipFlag(), "route", "replace", "default", "via", u.Gateway(f).String(), "dev", u.Dev, "table", table)
	}
	topo.Client.IP(f.ipFlag(), "rule", "add", "pref", "900", "from", from.String(), "lookup", table)
	defer topo.Client.IP(f.ipFlag(), "rule", "del", "pref", "900")
	defer topo.Client.IP(f.ipFlag(), "route", "flush", "table", table)

	route(wrong)
	before := nstat(t, topo.Router)
	if out, err := topo.Client.Exec("ping", f.ipFlag(), "-c1", "-W0.5", "-I", from.String(), server); err == nil {
		t.Errorf("%s ping from %s out of %s reached the server through the router's strict RPF:\n%s", f, from, wrong.Dev, out)
	}
	if f == V4 {
		if d := CounterDelta(before, nstat(t, topo.Router), "TcpExtIPReversePathFilter"); d == 0 {
			t.Errorf("router's TcpExtIPReversePathFilter did not rise for a packet from %s arriving on %s", from, wrong.RouterDev)
		}
	}
	route(right)
	if out, err := topo.Client.Exec("ping", f.ipFlag(), "-c1", "-W5", "-I", from.String(), server); err != nil {
		t.Errorf("%s ping from %s out of its own uplink %s failed: %v\n%s", f, from, right.Dev, err, out)
	}
}

// checkCable pulls uplink i's cable and plugs it back; the uplink must
// carry traffic again (it has source routing by then).
func checkCable(t *testing.T, topo *Topology, i int, echo map[Family]netip.AddrPort) {
	t.Helper()
	u := topo.Uplinks[i]
	dev := u.Dev
	topo.CablePull(i)
	WaitFor(t, 10*time.Second, "client "+dev+" loses carrier after CablePull", func() error {
		l := linkOf(t, topo.Client, dev)
		if !slices.Contains(l.Flags, "NO-CARRIER") || l.Operstate == "UP" {
			return fmt.Errorf("flags %v, operstate %s", l.Flags, l.Operstate)
		}
		return nil
	})
	topo.CablePlug(i)
	WaitFor(t, 10*time.Second, "client "+dev+" has carrier after CablePlug", func() error {
		l := linkOf(t, topo.Client, dev)
		if !slices.Contains(l.Flags, "LOWER_UP") || l.Operstate != "UP" {
			return fmt.Errorf("flags %v, operstate %s", l.Flags, l.Operstate)
		}
		return nil
	})
	for _, f := range topo.Families() {
		if err := tcpWorks(topo.Client, echo[f], DialOptions{Local: u.Addr(f), Device: u.Dev}, workTimeout); err != nil {
			t.Errorf("TCP over %s after CablePlug (%s): %v", dev, f, err)
		}
	}
}

func TestTopologyShapedIPv4Only(t *testing.T) {
	topo := NewTopology(t, TopologyOptions{Variant: Static, RateMbit: 50, Checksums: true})
	if got := topo.Families(); !slices.Equal(got, []Family{V4}) {
		t.Errorf("Families() = %v, want [ipv4]", got)
	}
	checkAddressing(t, topo)
	checkRoutes(t, topo)
	topo.AddUplink(t)
	for _, u := range topo.Uplinks {
		checkTBF(t, topo.Client, u.Dev, 50)
		checkTBF(t, topo.Router, u.RouterDev, 50)
	}
	for _, ns := range []*NS{topo.Client, topo.Server} {
		if v, err := ns.SysctlValue("net.mptcp.checksum_enabled"); err != nil || v != "1" {
			t.Errorf("%s: net.mptcp.checksum_enabled = %q (%v), want 1", ns.Name, v, err)
		}
	}
	echo := startEcho(t, topo.Server, topo.ServerLinks[0])
	if err := tcpWorks(topo.Client, echo[V4], DialOptions{Local: topo.Uplinks[0].Addr4}, workTimeout); err != nil {
		t.Errorf("plain TCP from uplink 1 over shaped links: %v", err)
	}
}

func TestTopologyServerSecondUplink(t *testing.T) {
	topo := NewTopology(t, TopologyOptions{Variant: DHCP, IPv6: true, ServerSecondUplink: true})
	checkAddressing(t, topo)
	checkRoutes(t, topo)
	checkRouter(t, topo)
	echo := startEcho(t, topo.Server, topo.ServerLinks[1])
	for _, f := range topo.Families() {
		// The server answers from its second address by its main table,
		// through eth1: the router's RPF drops the answer.
		if err := tcpWorks(topo.Client, echo[f], DialOptions{Local: topo.Uplinks[0].Addr(f)}, failTimeout); err == nil {
			t.Errorf("%s: TCP to the server's second address %s worked without the server's source routing", f, echo[f])
		}
	}
	topo.ServerSourceRouting()
	for _, f := range topo.Families() {
		if err := tcpWorks(topo.Client, echo[f], DialOptions{Local: topo.Uplinks[0].Addr(f)}, workTimeout); err != nil {
			t.Errorf("%s: TCP to the server's second address with its source routing: %v", f, err)
		}
	}
}

// checkAddressing compares every lab device's global addresses with the
// topology's description of them.
func checkAddressing(t *testing.T, topo *Topology) {
	t.Helper()
	want := func(u Uplink, router bool) []string {
		var out []string
		for _, f := range topo.Families() {
			a := u.Addr(f)
			if router {
				a = u.Gateway(f)
			}
			out = append(out, prefixed(a, u.Prefix(f)))
		}
		return out
	}
	for _, u := range topo.Uplinks {
		compareAddrs(t, topo.Client, u.Dev, want(u, false))
		if topo.Options.Variant == OneLAN {
			compareAddrs(t, topo.Router, u.RouterDev, nil)
		} else {
			compareAddrs(t, topo.Router, u.RouterDev, want(u, true))
		}
	}
	if topo.Options.Variant == OneLAN {
		compareAddrs(t, topo.Router, topo.Bridge, want(topo.Uplinks[0], true))
		for i, u := range topo.Uplinks {
			if want := fmt.Sprintf("192.0.2.%d", 2+i); u.Addr4.String() != want || u.Gateway4.String() != "192.0.2.1" {
				t.Errorf("OneLAN uplink %s: address %s gateway %s, want %s via 192.0.2.1", u.Dev, u.Addr4, u.Gateway4, want)
			}
		}
	}
	for _, u := range topo.ServerLinks {
		compareAddrs(t, topo.Server, u.Dev, want(u, false))
		compareAddrs(t, topo.Router, u.RouterDev, want(u, true))
	}
}

func compareAddrs(t *testing.T, ns *NS, dev string, want []string) {
	t.Helper()
	var got []string
	for _, a := range linkOf(t, ns, dev).AddrInfo {
		if a.Scope == "global" {
			got = append(got, a.Local+"/"+strconv.Itoa(a.Prefixlen))
		}
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s %s: global addresses %v, want %v", ns.Name, dev, got, want)
	}
}

// checkRoutes compares the client's and server's default routes in their
// main tables with the topology's description.
func checkRoutes(t *testing.T, topo *Topology) {
	t.Helper()
	for _, f := range []Family{V4, V6} {
		var want []string
		for _, u := range topo.Uplinks {
			if u.DefaultRoute && u.Gateway(f).IsValid() {
				want = append(want, routeString(u.Gateway(f).String(), u.Dev, u.Metric, f))
			}
		}
		compareDefaults(t, topo.Client, f, want)
		want = nil
		if f == V4 || topo.Options.IPv6 {
			want = []string{routeString(topo.ServerLinks[0].Gateway(f).String(), "eth1", 0, f)}
		}
		compareDefaults(t, topo.Server, f, want)
	}
}

func routeString(gw, dev string, metric int, f Family) string {
	if f == V6 && metric == 0 {
		metric = 1024 // the kernel's default for IPv6 routes
	}
	return fmt.Sprintf("via %s dev %s metric %d", gw, dev, metric)
}

func compareDefaults(t *testing.T, ns *NS, f Family, want []string) {
	t.Helper()
	var routes []struct {
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
		Metric  int    `json:"metric"`
	}
	ipJSON(t, ns, &routes, f.ipFlag(), "route", "show", "default")
	var got []string
	for _, r := range routes {
		got = append(got, routeString(r.Gateway, r.Dev, r.Metric, f))
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s %s default routes in main: %q, want %q", ns.Name, f, got, want)
	}
}

// checkRouter checks the router's forwarding and strict reverse-path
// settings.
func checkRouter(t *testing.T, topo *Topology) {
	t.Helper()
	keys := []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding",
		"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"}
	for _, u := range append(slices.Clone(topo.Uplinks), topo.ServerLinks...) {
		keys = append(keys, "net.ipv4.conf."+u.RouterDev+".rp_filter")
	}
	if topo.Bridge != "" {
		keys = append(keys, "net.ipv4.conf."+topo.Bridge+".rp_filter")
	}
	for _, k := range keys {
		if v, err := topo.Router.SysctlValue(k); err != nil || v != "1" {
			t.Errorf("router %s = %q (%v), want 1", k, v, err)
		}
	}
	if topo.Options.Variant == OneLAN {
		for _, k := range []string{"all", "default", "eth1", "eth2"} {
			for key, want := range map[string]string{"arp_ignore": "1", "arp_announce": "2"} {
				name := "net.ipv4.conf." + k + "." + key
				if v, err := topo.Client.SysctlValue(name); err != nil || v != want {
					t.Errorf("client %s = %q (%v), want %s", name, v, err, want)
				}
			}
		}
	}
}

// checkUnshaped checks that no tbf is there unless asked for.
func checkUnshaped(t *testing.T, topo *Topology) {
	t.Helper()
	for _, u := range topo.Uplinks {
		for ns, dev := range map[*NS]string{topo.Client: u.Dev, topo.Router: u.RouterDev} {
			if out := ns.tool(t, "tc", "qdisc", "show", "dev", dev); strings.Contains(out, "tbf") {
				t.Errorf("%s %s is shaped without RateMbit: %s", ns.Name, dev, out)
			}
		}
	}
}

func checkTBF(t *testing.T, ns *NS, dev string, mbit int) {
	t.Helper()
	var qdiscs []struct {
		Kind    string `json:"kind"`
		Root    bool   `json:"root"`
		Options struct {
			Rate uint64 `json:"rate"`
		} `json:"options"`
	}
	if err := json.Unmarshal([]byte(ns.tool(t, "tc", "-j", "qdisc", "show", "dev", dev)), &qdiscs); err != nil {
		t.Fatalf("tc -j qdisc show dev %s in %s: %v", dev, ns.Name, err)
	}
	for _, q := range qdiscs {
		if q.Kind == "tbf" && q.Root && q.Options.Rate == uint64(mbit)*1_000_000/8 {
			return
		}
	}
	t.Errorf("%s %s: no root tbf at %d mbit: %+v", ns.Name, dev, mbit, qdiscs)
}

// ipLink is the part of `ip -j addr show` the tests read.
type ipLink struct {
	Flags     []string `json:"flags"`
	Operstate string   `json:"operstate"`
	AddrInfo  []struct {
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
		Scope     string `json:"scope"`
	} `json:"addr_info"`
}

func linkOf(t *testing.T, ns *NS, dev string) ipLink {
	t.Helper()
	var links []ipLink
	ipJSON(t, ns, &links, "addr", "show", "dev", dev)
	if len(links) != 1 {
		t.Fatalf("%s: %d links named %s", ns.Name, len(links), dev)
	}
	return links[0]
}

func ipJSON(t *testing.T, ns *NS, v any, args ...string) {
	t.Helper()
	out := ns.tool(t, "ip", append([]string{"-j"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("ip -j %s in %s: %v: %s", strings.Join(args, " "), ns.Name, err, out)
	}
}

func nstat(t *testing.T, ns *NS) map[string]uint64 {
	t.Helper()
	c, err := ns.Nstat()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startEcho runs plain TCP echo servers on the server's addresses of link
// u, one per family, until the test ends.
func startEcho(t *testing.T, ns *NS, u Uplink) map[Family]netip.AddrPort {
	t.Helper()
	out := map[Family]netip.AddrPort{}
	for _, f := range []Family{V4, V6} {
		if !u.Addr(f).IsValid() {
			continue
		}
		l, err := ns.ListenTCP(f.Network(), netip.AddrPortFrom(u.Addr(f), 0).String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					_, _ = io.Copy(c, c)
				}()
			}
		}()
		out[f] = l.Addr().(*net.TCPAddr).AddrPort()
	}
	return out
}

// tcpWorks connects to an echo server and exchanges a few bytes within
// timeout.
func tcpWorks(ns *NS, to netip.AddrPort, opt DialOptions, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	network := V4.Network()
	if to.Addr().Is6() {
		network = V6.Network()
	}
	c, err := ns.Dial(ctx, network, to.String(), opt)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	msg := []byte("lab!")
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("write to %s: %w", to, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read echo from %s: %w", to, err)
	}
	return nil
}
