package pm_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
	"github.com/mptcpgd/mptcpgd/pkg/rtnl"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

// transferResult is what one MPTCP transfer from the client showed.
type transferResult struct {
	// sent is what each client uplink (eth1, eth2, ...) transmitted.
	sent []uint64
	// joins is how many joined subflows the server acknowledged.
	joins uint64
	// remotes are the peer addresses of the connection's subflows, seen
	// while the transfer ran.
	remotes []netip.Addr
	// locals are the client addresses of those subflows.
	locals []netip.Addr
	// clientCounters are the client's TCP and MPTCP counters that moved
	// during the transfer and say how its subflows fared.
	clientCounters map[string]uint64
}

// subflowCounters are the client counters a transfer reports: timeouts,
// retransmissions and the kernel marking a subflow stale (its scheduler
// then sends nothing on it until it recovers).
var subflowCounters = []string{"TcpExtTCPTimeouts", "TcpRetransSegs", "MPTcpExtSubflowStale", "MPTcpExtSubflowRecover", "MPTcpExtMPJoinSynTx"}

// transfer sends size bytes over one MPTCP connection from the client's
// first uplink address to the server's address dst, checks the stream, and
// reports which uplinks and subflows carried it.
func transfer(t *testing.T, top *lab.Topology, dst netip.Addr, size int64) transferResult {
	t.Helper()
	c, s := top.Client, top.Server
	nsBefore, err := s.Nstat()
	if err != nil {
		t.Fatal(err)
	}
	clientBefore, err := c.Nstat()
	if err != nil {
		t.Fatal(err)
	}
	tr := lab.StartTransfer(t, top, dst, size)
	var res transferResult
	// Sample the subflows while data flows: a closed connection has none.
	for done := false; !done; {
		select {
		case <-tr.Received():
			done = true
		case <-time.After(50 * time.Millisecond):
		}
		if sfs, err := lab.MPTCPSubflows(tr.Conn); err == nil {
			for _, sf := range sfs {
				if r := sf.Remote.Addr().Unmap(); !slices.Contains(res.remotes, r) {
					res.remotes = append(res.remotes, r)
				}
				if l := sf.Local.Addr().Unmap(); !slices.Contains(res.locals, l) {
					res.locals = append(res.locals, l)
				}
			}
		}
	}
	r := tr.Wait(t)
	if r.WriteErr != nil {
		t.Fatalf("writing the stream: %v", r.WriteErr)
	}
	lab.CheckStream(t, r.Report, c, s)
	res.sent = r.Sent
	nsAfter, err := s.Nstat()
	if err != nil {
		t.Fatal(err)
	}
	res.joins = lab.CounterDelta(nsBefore, nsAfter, "MPTcpExtMPJoinAckRx")
	clientAfter, err := c.Nstat()
	if err != nil {
		t.Fatal(err)
	}
	res.clientCounters = map[string]uint64{}
	for _, name := range subflowCounters {
		if d := lab.CounterDelta(clientBefore, clientAfter, name); d > 0 {
			res.clientCounters[name] = d
		}
	}
	return res
}

func TestKernelSourceRoutingMakesSecondUplinkWork(t *testing.T) {
	for _, variant := range []lab.Variant{lab.Static, lab.OneLAN} {
		for _, fam := range []lab.Family{lab.V4, lab.V6} {
			t.Run(variant.String()+"/"+fam.String(), func(t *testing.T) {
				top := lab.NewTopology(t, lab.TopologyOptions{Variant: variant, IPv6: fam == lab.V6, RateMbit: 50, Checksums: true})
				top.Server.IP("mptcp", "limits", "set", "subflow", "4", "add_addr_accepted", "4")
				u2 := top.Uplinks[1]
				cfg := ""
				if variant == lab.Static {
					// The second uplink has no default route of its own.
					cfg = fmt.Sprintf("[[interface]]\nmatch = %q\ngateway4 = %q\n", u2.Dev, u2.Gateway4)
					if fam == lab.V6 {
						cfg += fmt.Sprintf("gateway6 = %q\n", u2.Gateway6)
					}
				}
				// Endpoints alone (routing off), as mptcpd would leave them.
				eng := startEngineIn(t, top.Client, parse(t, cfg+"[routing]\nenabled = false\n"), filepath.Join(t.TempDir(), "state.json"))
				eventually(t, "endpoints without routing", func() (bool, string) {
					got, _ := endpoints(t, top.Client)
					return len(got) >= 2, strings.Join(got, "\n")
				})
				without := transfer(t, top, top.ServerAddr(fam), 4<<20)
				if without.joins != 0 || without.sent[1] > 1<<20 {
					t.Fatalf("a subflow joined over %s without source routing (joins %d, sent per uplink %v): the lab cannot show that routing matters",
						u2.Dev, without.joins, without.sent)
				}

				if err := eng.e.Reload(context.Background(), parse(t, cfg)); err != nil {
					t.Fatal(err)
				}
				eventually(t, "rules installed", func() (bool, string) {
					rules := ourRules(top.Client)
					return len(rules) == 2*len(top.Families()), strings.Join(rules, "\n")
				})
				// Long enough that a join that comes a second or two late
				// under software emulation still leaves eth2 its share (16 MiB
				// once ended with eth2 at 11% on Linux 6.1 under TCG).
				const size = 64 << 20
				starved := func(r transferResult) bool {
					return slices.ContainsFunc(r.sent, func(n uint64) bool { return n < size/5 })
				}
				with := transfer(t, top, top.ServerAddr(fam), size)
				t.Logf("with source routing: sent per uplink %v, joins %d, client counters %v", with.sent, with.joins, with.clientCounters)
				if starved(with) {
					// Under software emulation the kernel's scheduler has
					// left one subflow of a transfer underused: 3 of ~100
					// transfers on Linux 6.12 under TCG put 5%, 18% and 19%
					// on one uplink, with no retransmission and no stale
					// subflow; the rest split 50/50. A routing defect
					// starves every transfer: the next one tells them apart.
					with = transfer(t, top, top.ServerAddr(fam), size)
					t.Logf("repeated: sent per uplink %v, joins %d, client counters %v", with.sent, with.joins, with.clientCounters)
				}
				if with.joins == 0 || !slices.Contains(with.locals, u2.Addr(fam)) || with.sent[1] < size/5 {
					t.Errorf("no subflow joined over %s with source routing: joins %d, local addresses %v", u2.Dev, with.joins, with.locals)
				}
				for i, sent := range with.sent {
					if sent < size/5 {
						t.Errorf("%s sent %d bytes of %d: want both uplinks to carry the transfer (sent per uplink: %v)",
							top.Uplinks[i].Dev, sent, size, with.sent)
					}
				}
			})
		}
	}
}

func TestKernelServerRepliesFromSecondAddressThroughSecondUplink(t *testing.T) {
	for _, routing := range []bool{false, true} {
		t.Run(fmt.Sprintf("routing=%t", routing), func(t *testing.T) {
			top := lab.NewTopology(t, lab.TopologyOptions{Variant: lab.DHCP, ServerSecondUplink: true, RateMbit: 50, Checksums: true})
			s2 := top.ServerLinks[1]
			server := fmt.Sprintf("[endpoints]\nflags = [\"signal\"]\n[[interface]]\nmatch = %q\ngateway4 = %q\n[routing]\nenabled = %t\n",
				s2.Dev, s2.Gateway4, routing)
			startEngineIn(t, top.Server, parse(t, server), filepath.Join(t.TempDir(), "server.json"))
			startEngineIn(t, top.Client, parse(t, ""), filepath.Join(t.TempDir(), "client.json"))
			_, before, err := top.Server.LinkStats(s2.Dev)
			if err != nil {
				t.Fatal(err)
			}
			res := transfer(t, top, top.ServerAddr(lab.V4), 8<<20)
			_, after, err := top.Server.LinkStats(s2.Dev)
			if err != nil {
				t.Fatal(err)
			}
			// Besides the join to the server's first address from the
			// client's eth2, a join to the announced second address must
			// be answered, and its replies (SYN-ACK, ACKs) leave eth2.
			// background is what eth2 may send without carrying the
			// join (neighbour discovery, a refused SYN-ACK): the one bound
			// both cases are judged by, since how much the join carries
			// depends on when it came.
			const background = 1 << 10
			sentBy2 := after - before
			if routing && (res.joins < 2 || !slices.Contains(res.remotes, s2.Addr4) || sentBy2 <= background) {
				t.Errorf("with source routing on the server: joins %d, subflow peers %v, server %s sent %d bytes; want a join to %s answered through %s",
					res.joins, res.remotes, s2.Dev, sentBy2, s2.Addr4, s2.Dev)
			}
			if !routing && (res.joins > 1 || sentBy2 > background) {
				t.Errorf("without the server's source routing: joins %d, server %s sent %d bytes; want the join to %s to fail (its replies leave eth1 and the router drops them)",
					res.joins, s2.Dev, sentBy2, s2.Addr4)
			}
		})
	}
}

// routesIn lists table's routes in ns as `ip route` prints them.
func routesIn(ns *lab.NS, fam string, table int) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(ns.IP(fam, "route", "show", "table", fmt.Sprint(table))), "\n") {
		if l != "" {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

func wantRoutes(t *testing.T, ns *lab.NS, fam string, table int, what string, want ...string) {
	t.Helper()
	eventually(t, what, func() (bool, string) {
		got := routesIn(ns, fam, table)
		return slices.Equal(got, want), strings.Join(got, "\n")
	})
}

func TestKernelRoutingFollowsGatewaysAddressesLinks(t *testing.T) {
	top := lab.NewTopology(t, lab.TopologyOptions{Variant: lab.DHCP, IPv6: true})
	c := top.Client
	state := filepath.Join(t.TempDir(), "state.json")
	eng := startEngineIn(t, c, parse(t, ""), state)
	t2 := 10000 + ifindex(t, c, "eth2")

	wantRoutes(t, c, "-4", t2, "the learned DHCP gateway in eth2's table",
		"default via 198.51.100.1 dev eth2 proto 177 metric 1024", "198.51.100.0/24 dev eth2 proto 177 scope link metric 1024")
	wantRoutes(t, c, "-6", t2, "the learned IPv6 gateway in eth2's table",
		"2001:db8:2::/64 dev eth2 proto 177 metric 1024 pref medium", "default via 2001:db8:2::1 dev eth2 proto 177 metric 1024 pref medium")

	// A DHCP renewal moves the gateway: our table follows.
	c.IP("route", "replace", "default", "via", "198.51.100.254", "dev", "eth2", "metric", "200", "proto", "dhcp")
	wantRoutes(t, c, "-4", t2, "the table following a gateway change",
		"default via 198.51.100.254 dev eth2 proto 177 metric 1024", "198.51.100.0/24 dev eth2 proto 177 scope link metric 1024")

	// Foreign rule and route in our table and priority: never touched.
	c.IP("rule", "add", "from", "198.51.100.77", "lookup", fmt.Sprint(t2), "priority", "10000")
	c.IP("route", "add", "unreachable", "203.0.113.0/24", "table", fmt.Sprint(t2))

	// The address goes: its rule and routes go (the foreign ones stay).
	c.IP("addr", "del", "198.51.100.2/24", "dev", "eth2")
	wantRoutes(t, c, "-4", t2, "only the foreign route after the address went", "unreachable 203.0.113.0/24")
	for _, r := range ourRules(c) {
		if strings.Contains(r, "198.51.100.2 ") {
			t.Errorf("rule %q left after its address went", r)
		}
	}

	// The link goes: its IPv6 rule and routes go too.
	c.IP("link", "del", "eth2")
	eventually(t, "eth2's IPv6 routing gone with the link", func() (bool, string) {
		rules := ourRules(c)
		return !slices.ContainsFunc(rules, func(r string) bool { return strings.Contains(r, "2001:db8:2::2") }), strings.Join(rules, "\n")
	})
	if !strings.Contains(c.IP("rule", "show"), "from 198.51.100.77 lookup") {
		t.Error("the foreign rule in our priority was deleted")
	}

	// cleanup removes what is ours and nothing else.
	eng.stop()
	k, err := netlinkmptcp.Dial(&netlinkmptcp.Config{NetNS: c.FD()})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	rt, err := rtnl.Dial(rtnl.Config{NetNS: c.FD(), Filter: rtnl.Filter{Protocols: []uint8{177}}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	c.IP("route", "add", "198.18.9.0/24", "via", "192.0.2.1", "dev", "eth1", "table", fmt.Sprint(10000+ifindex(t, c, "eth1")))
	if _, err := pm.Cleanup(parse(t, ""), k, rt, rt, statefile.File{Path: state}); err != nil {
		t.Fatal(err)
	}
	if rules := ourRules(c); len(rules) != 0 {
		t.Errorf("rules of ours left after cleanup: %q", rules)
	}
	if got, _ := endpoints(t, c); len(got) != 0 {
		t.Errorf("endpoints left after cleanup: %q", got)
	}
	if out := c.IP("route", "show", "table", "all", "proto", "177"); strings.TrimSpace(out) != "" {
		t.Errorf("routes of ours left after cleanup:\n%s", out)
	}
	if !strings.Contains(c.IP("rule", "show"), "from 198.51.100.77 lookup") ||
		!strings.Contains(c.IP("route", "show", "table", fmt.Sprint(10000+ifindex(t, c, "eth1"))), "198.18.9.0/24 via 192.0.2.1") {
		t.Error("cleanup deleted a rule or route that is not ours")
	}
}

// A configured gateway outside the interface's prefixes: the kernel
// refuses the route, so the address gets no endpoint and says why. With a
// host address (/32), as on cloud hosts, the same gateway is installed
// on-link and the endpoint follows.
func TestKernelConfiguredGatewayOutsideThePrefix(t *testing.T) {
	c, peer := lab.New(t, "client"), lab.New(t, "peer")
	lab.Veth(c, "eth1", peer, "p1")
	lab.Veth(c, "eth2", peer, "p2")
	c.IP("addr", "add", "192.0.2.2/24", "dev", "eth1")
	c.IP("route", "add", "default", "via", "192.0.2.1", "dev", "eth1")
	c.IP("addr", "add", "198.51.100.2/24", "dev", "eth2")
	cfg := parse(t, "[[interface]]\nmatch = \"eth2\"\ngateway4 = \"203.0.113.1\"\n")
	eng := startEngineIn(t, c, cfg, filepath.Join(t.TempDir(), "state.json"))
	var held string
	eventually(t, "eth2's address held with the kernel's reason", func() (bool, string) {
		st, err := eng.e.Status(context.Background())
		if err != nil {
			return false, err.Error()
		}
		for _, a := range st.Addresses {
			if a.Addr.Addr.String() == "198.51.100.2" {
				held = a.Reason
			}
		}
		return strings.HasPrefix(held, "held: route default via 203.0.113.1") && strings.Contains(held, "unreachable"), held
	})
	wantEndpoints(t, c, "only eth1's endpoint", "192.0.2.2 subflow dev eth1")

	c.IP("addr", "del", "198.51.100.2/24", "dev", "eth2")
	c.IP("addr", "add", "198.51.100.2/32", "dev", "eth2")
	t2 := 10000 + ifindex(t, c, "eth2")
	wantRoutes(t, c, "-4", t2, "an on-link default route for the host address", "default via 203.0.113.1 dev eth2 proto 177 metric 1024 onlink")
	wantEndpoints(t, c, "the endpoint once its routing is in", "192.0.2.2 subflow dev eth1", "198.51.100.2 subflow dev eth2")
}
