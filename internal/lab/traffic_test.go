package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestMPTCPJoinedSubflow makes a real MPTCP connection join a second
// subflow over uplink 2 (endpoint, limits and source routing set by hand,
// as no daemon runs here) and checks what the lab reads from it: subflow
// addresses, MPTCP_INFO, counters, link statistics and stream integrity.
func TestMPTCPJoinedSubflow(t *testing.T) {
	topo := NewTopology(t, TopologyOptions{Variant: Static, IPv6: true, RateMbit: 200, Checksums: true})
	for _, ns := range []*NS{topo.Client, topo.Server} {
		ns.IP("mptcp", "limits", "set", "subflow", "2", "add_addr_accepted", "2")
	}
	second := topo.Uplinks[1]
	for _, f := range topo.Families() {
		topo.Client.IP("mptcp", "endpoint", "add", second.Addr(f).String(), "dev", second.Dev, "subflow")
	}
	topo.ClientSourceRouting(1)

	for _, f := range topo.Families() {
		t.Run(f.String(), func(t *testing.T) {
			const n = 16 << 20
			l, err := topo.Server.ListenMPTCP(f.Network(), netip.AddrPortFrom(topo.ServerAddr(f), 0).String())
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			type accepted struct {
				subflows []SubflowAddrs
				report   StreamReport
				err      error
			}
			done := make(chan accepted, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					done <- accepted{err: err}
					return
				}
				defer c.Close()
				rep := VerifyStream(c, n)
				// Read the subflows before closing, while they exist.
				sfs, err := MPTCPSubflows(c.(*net.TCPConn))
				done <- accepted{subflows: sfs, report: rep, err: err}
			}()

			_, tx1 := linkStats(t, topo.Client, topo.Uplinks[0].Dev)
			_, tx2 := linkStats(t, topo.Client, second.Dev)
			before, clientBefore := nstat(t, topo.Server), nstat(t, topo.Client)

			ctx, cancel := context.WithTimeout(context.Background(), workTimeout)
			defer cancel()
			c, err := topo.Client.DialMPTCP(ctx, f.Network(), l.Addr().String(), topo.Uplinks[0].Addr(f))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if mp, err := c.MultipathTCP(); err != nil || !mp {
				t.Fatalf("connection is not MPTCP: %t, %v", mp, err)
			}
			// The client's path manager adds subflows once the connection
			// is fully established, which takes data from both sides.
			wrote := make(chan error, 1)
			go func() { wrote <- WriteStream(c, n) }()
			joined := SubflowAddrs{Local: netip.AddrPortFrom(second.Addr(f), 0), Remote: netip.AddrPortFrom(topo.ServerAddr(f), 0)}
			// A bound, not a speed: a join SYN lost while the gateway's
			// neighbour entry resolves is sent again after 1, 2, 4 and 8 s,
			// and a loaded machine (CI beside qemu guests) can need them.
			WaitFor(t, 30*time.Second, "a subflow joins over "+second.Dev, func() error {
				sfs, err := MPTCPSubflows(c)
				if err != nil {
					return err
				}
				if !hasSubflow(sfs, joined) {
					return fmt.Errorf("subflows %v", sfs)
				}
				return nil
			})
			// Limits are 2 subflows and 2 accepted addresses; the client has
			// two subflow endpoints, one per family.
			info, err := MPTCPInfo(c)
			if err != nil {
				t.Fatal(err)
			}
			if info.Subflows != 1 || info.SubflowsMax != 2 || info.AddAddrAcceptedMax != 2 ||
				info.LocalAddrMax != 2 || info.Fallback || !info.RemoteKeyReceived || !info.ChecksumsEnabled {
				t.Errorf("MPTCPInfo = %+v, want 1 extra subflow of 2, limits 2 and 2, 2 subflow endpoints, no fallback, "+
					"remote key received, checksums on", info)
			}
			// 6.10+ counts all subflows too; older kernels do not say.
			if info.HasSubflowsTotal && info.SubflowsTotal != 2 {
				t.Errorf("MPTCPInfo subflows total %d, want 2", info.SubflowsTotal)
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			sfs, err := MPTCPSubflows(c)
			if err != nil {
				t.Fatal(err)
			}
			first := SubflowAddrs{Local: netip.MustParseAddrPort(c.LocalAddr().String()), Remote: netip.MustParseAddrPort(l.Addr().String())}
			// 6.1 keeps a closed first subflow in the list, disconnected:
			// its remote port reads 0.
			closedFirst := SubflowAddrs{Local: first.Local, Remote: netip.AddrPortFrom(first.Remote.Addr(), 0)}
			serverAfter := nstat(t, topo.Server)
			lostFirst := len(sfs) == 2 && sfs[0] == closedFirst && hasSubflow(sfs, joined)
			if (len(sfs) != 2 || sfs[0] != first || !hasSubflow(sfs, joined)) &&
				!(lostFirst && CaughtByChecksum(t, before, serverAfter, first.String())) {
				// The counters say why the kernel closed a subflow (a
				// reset, an MP_FAIL, a checksum error), if it did.
				t.Errorf("client subflows = %v, want the first one %v and one %v; MPTCP counters that rose: client %q, server %q",
					sfs, first, joined,
					RisenCounters(clientBefore, nstat(t, topo.Client), "MPTcpExt"), RisenCounters(before, serverAfter, "MPTcpExt"))
			}

			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got := <-done
			if got.err != nil {
				t.Fatal(got.err)
			}
			CheckStream(t, got.report, topo.Client, topo.Server)
			// The server has read everything, so all of it left the client.
			// The byte counters are 6.5+; older kernels do not count.
			if info, err := MPTCPInfo(c); err != nil || info.ByteCounters && info.BytesSent < n {
				t.Errorf("MPTCPInfo after the transfer: %d bytes sent (%v), want >= %d", info.BytesSent, err, n)
			}
			if !hasSubflow(got.subflows, SubflowAddrs{Local: joined.Remote, Remote: joined.Local}) {
				t.Errorf("server subflows = %v, want one from %s", got.subflows, joined.Local.Addr())
			}

			if d := CounterDelta(before, nstat(t, topo.Server), "MPTcpExtMPJoinAckRx"); d != 1 {
				t.Errorf("server MPTcpExtMPJoinAckRx rose by %d, want 1", d)
			}
			// Both uplinks carried a share of the data, not just the join.
			_, tx1b := linkStats(t, topo.Client, topo.Uplinks[0].Dev)
			_, tx2b := linkStats(t, topo.Client, second.Dev)
			for dev, sent := range map[string]uint64{topo.Uplinks[0].Dev: tx1b - tx1, second.Dev: tx2b - tx2} {
				if sent < n/8 {
					t.Errorf("client %s sent %d bytes of a %d-byte transfer, want at least an eighth", dev, sent, n)
				}
			}
		})
	}
}

// hasSubflow says whether sfs has a subflow between want's addresses
// (ports are compared only where want has one).
func hasSubflow(sfs []SubflowAddrs, want SubflowAddrs) bool {
	match := func(got, want netip.AddrPort) bool {
		return got.Addr() == want.Addr() && (want.Port() == 0 || got.Port() == want.Port())
	}
	return slices.ContainsFunc(sfs, func(s SubflowAddrs) bool {
		return match(s.Local, want.Local) && match(s.Remote, want.Remote)
	})
}

func linkStats(t *testing.T, ns *NS, dev string) (rx, tx uint64) {
	t.Helper()
	rx, tx, err := ns.LinkStats(dev)
	if err != nil {
		t.Fatal(err)
	}
	return rx, tx
}

func TestLinkStatsCountsTraffic(t *testing.T) {
	topo := NewTopology(t, TopologyOptions{Variant: DHCP})
	echo := startEcho(t, topo.Server, topo.ServerLinks[0])
	crx, ctx := linkStats(t, topo.Client, "eth1")
	rrx, _ := linkStats(t, topo.Router, "r1")
	if err := tcpWorks(topo.Client, echo[V4], DialOptions{Local: topo.Uplinks[0].Addr4}, workTimeout); err != nil {
		t.Fatal(err)
	}
	crx2, ctx2 := linkStats(t, topo.Client, "eth1")
	rrx2, _ := linkStats(t, topo.Router, "r1")
	if crx2 <= crx || ctx2 <= ctx || rrx2 <= rrx {
		t.Errorf("counters did not rise: client eth1 rx %d->%d tx %d->%d, router r1 rx %d->%d", crx, crx2, ctx, ctx2, rrx, rrx2)
	}
	if _, _, err := topo.Client.LinkStats("nosuchdev"); err == nil {
		t.Error("LinkStats of a missing device returned no error")
	}
}

func TestNstatReadsNamespaceCounters(t *testing.T) {
	topo := NewTopology(t, TopologyOptions{Variant: DHCP, IPv6: true})
	echo := startEcho(t, topo.Server, topo.ServerLinks[0])
	before := nstat(t, topo.Client)
	routerBefore := nstat(t, topo.Router)
	for _, name := range []string{"TcpActiveOpens", "MPTcpExtMPJoinAckRx", "MPTcpExtDataCsumErr", "TcpExtIPReversePathFilter", "Ip6InReceives"} {
		if _, ok := before[name]; !ok {
			t.Errorf("Nstat has no %s", name)
		}
	}
	for _, f := range topo.Families() {
		if err := tcpWorks(topo.Client, echo[f], DialOptions{}, workTimeout); err != nil {
			t.Fatal(err)
		}
	}
	after := nstat(t, topo.Client)
	if d := CounterDelta(before, after, "TcpActiveOpens"); d != 2 {
		t.Errorf("client TcpActiveOpens rose by %d after two connections, want 2", d)
	}
	if d := CounterDelta(routerBefore, nstat(t, topo.Router), "TcpActiveOpens"); d != 0 {
		t.Errorf("router TcpActiveOpens rose by %d: Nstat does not read inside the namespace", d)
	}
}
