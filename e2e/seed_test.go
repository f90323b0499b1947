// Package e2e runs the seed scenario end to end: a client with two uplinks
// and a server, each running the real mptcpgd with the example
// configurations from configs/, and not one manual `ip` command beyond the
// lab's addresses and default routes.
package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

// rate is each uplink's shaping, so two uplinks give 2*rate.
const rate = 50

func configPath(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "configs", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// seed builds the lab and starts both daemons. Variant OneLAN runs the
// client with the built-in defaults: its second NIC shares the first one's
// subnet and gateway, which mptcpgd finds by itself.
type seed struct {
	top            *lab.Topology
	client, server *daemonlab.Daemon
}

func startSeed(t testing.TB, opt lab.TopologyOptions) *seed {
	t.Helper()
	opt.RateMbit, opt.Checksums = rate, true
	top := lab.NewTopology(t, opt)
	s := &seed{top: top}
	s.server = daemonlab.Start(t, top.Server, daemonlab.Options{Config: configPath(t, "server.toml")})
	clientCfg := daemonlab.Options{Config: configPath(t, "client.toml")}
	if opt.Variant == lab.OneLAN {
		clientCfg.Config = ""
	}
	s.client = daemonlab.Start(t, top.Client, clientCfg)
	return s
}

// stream is one checked MPTCP transfer of the seed lab.
type stream struct {
	*lab.Transfer
	t    testing.TB
	seed *seed
}

func (s *seed) startStream(t testing.TB, dst netip.Addr, size int64) *stream {
	t.Helper()
	return &stream{Transfer: lab.StartTransfer(t, s.top, dst, size), t: t, seed: s}
}

// subflowFrom tells whether the connection has an established subflow
// from local address a (to remote r, if r is valid) right now, as the
// kernel's socket diagnostics report it: a subflow closed on a dead link
// lingers in the connection until TCP gives up, so its state matters.
func (st *stream) subflowFrom(a, r netip.Addr) (bool, string) {
	conns, err := sockdiag.ListMPTCP(&sockdiag.Config{NetNS: st.seed.top.Client.FD()})
	if err != nil {
		return false, err.Error()
	}
	local := st.Conn.LocalAddr().(*net.TCPAddr).AddrPort()
	var seen []string
	for _, c := range conns {
		if c.Local.Port() != local.Port() {
			continue
		}
		for _, sf := range c.Subflows {
			seen = append(seen, fmt.Sprintf("%s->%s %s", sf.Local, sf.Remote, sf.State))
			if sf.State == sockdiag.StateEstablished && sf.Local.Addr() == a && (!r.IsValid() || sf.Remote.Addr() == r) {
				return true, ""
			}
		}
	}
	return false, strings.Join(seen, ", ")
}

// waitSubflow waits until the connection has a subflow from a (to r).
func (st *stream) waitSubflow(what string, a, r netip.Addr) time.Duration {
	st.t.Helper()
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	for {
		ok, seen := st.subflowFrom(a, r)
		if ok {
			return time.Since(start)
		}
		select {
		case <-st.Received():
			// On a slow machine (software emulation) the daemon and the lab
			// take longer, the shaped transfer does not.
			st.t.Fatalf("the transfer ended after %v, before %s: it is too short for this machine", time.Since(st.Start).Round(time.Millisecond), what)
		default:
		}
		if time.Now().After(deadline) {
			st.t.Fatalf("timed out waiting for %s; subflows: %s", what, seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitNoSubflow waits until the connection has no subflow from a.
func (st *stream) waitNoSubflow(what string, a netip.Addr) {
	st.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, seen := st.subflowFrom(a, netip.Addr{})
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			st.t.Fatalf("timed out waiting for %s; subflows: %s", what, seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wait waits for the transfer to end and checks the stream.
func (st *stream) wait() lab.TransferResult {
	st.t.Helper()
	res := st.Wait(st.t)
	if res.WriteErr != nil {
		st.t.Fatalf("sending: %v", res.WriteErr)
	}
	lab.CheckStream(st.t, res.Report, st.seed.top.Client, st.seed.top.Server)
	return res
}

func TestSeedUsesBothUplinks(t *testing.T) {
	for _, c := range []struct {
		variant lab.Variant
		fam     lab.Family
	}{
		{lab.Static, lab.V4}, {lab.Static, lab.V6}, {lab.OneLAN, lab.V4}, {lab.OneLAN, lab.V6},
	} {
		t.Run(c.variant.String()+"/"+c.fam.String(), func(t *testing.T) {
			s := startSeed(t, lab.TopologyOptions{Variant: c.variant, IPv6: c.fam == lab.V6})
			st := s.startStream(t, s.top.ServerAddr(c.fam), 24<<20)
			st.waitSubflow("a subflow joined over eth2", s.top.Uplinks[1].Addr(c.fam), netip.Addr{})
			res := st.wait()
			for i, u := range s.top.Uplinks {
				if sh := res.Share(i); sh < 0.30 {
					t.Errorf("%s carried %.0f%% of the bytes (per uplink %v), want at least 30%%", u.Dev, 100*sh, res.Sent)
				}
			}
			t.Logf("goodput %.1f Mbit/s of %d (%.0f%%), uplink shares %.0f%% / %.0f%%",
				res.Goodput, 2*rate, res.Goodput/float64(2*rate)*100, 100*res.Share(0), 100*res.Share(1))
		})
	}
}

func TestServerAnnouncesSecondAddress(t *testing.T) {
	s := startSeed(t, lab.TopologyOptions{Variant: lab.Static, ServerSecondUplink: true})
	before, err := s.top.Client.Nstat()
	if err != nil {
		t.Fatal(err)
	}
	s2 := s.top.ServerLinks[1].Addr4
	st := s.startStream(t, s.top.ServerAddr(lab.V4), 16<<20)
	st.waitSubflow("the client joined the server's announced address", s.top.Uplinks[0].Addr4, s2)
	st.wait()
	after, err := s.top.Client.Nstat()
	if err != nil {
		t.Fatal(err)
	}
	if n := lab.CounterDelta(before, after, "MPTcpExtAddAddr"); n == 0 {
		t.Error("the client received no ADD_ADDR")
	}
	rep := s.server.Show()
	found := false
	for _, e := range rep.Status.Endpoints {
		found = found || (e.Addr == s2 && e.Owner == pm.OwnerOurs && strings.Contains(e.Flags.String(), "signal"))
	}
	if !found {
		t.Errorf("the server has no signal endpoint of its own on %s: %+v", s2, rep.Status.Endpoints)
	}
}

func TestCablePullAndPlugDuringTransfer(t *testing.T) {
	for i, dev := range []string{"eth1", "eth2"} {
		t.Run(dev, func(t *testing.T) {
			s := startSeed(t, lab.TopologyOptions{Variant: lab.Static})
			u := s.top.Uplinks[i]
			st := s.startStream(t, s.top.ServerAddr(lab.V4), 64<<20)
			st.waitSubflow("a subflow over eth2", s.top.Uplinks[1].Addr4, netip.Addr{})
			time.Sleep(time.Second)
			s.top.CablePull(i)
			st.waitNoSubflow("the kernel closing the subflow over "+dev+" once mptcpgd withdrew its endpoint", u.Addr4)
			time.Sleep(time.Second)
			s.top.CablePlug(i)
			back := st.waitSubflow("the same connection regains a subflow over "+dev, u.Addr4, netip.Addr{})
			res := st.wait()
			t.Logf("cable pulled on %s: longest stall %v; subflow back %v after the plug; goodput %.1f Mbit/s",
				dev, res.Stall.Round(time.Millisecond), back.Round(time.Millisecond), res.Goodput)
		})
	}
}

func TestHotplugThirdUplinkDuringTransfer(t *testing.T) {
	s := startSeed(t, lab.TopologyOptions{Variant: lab.DHCP})
	// Long enough to outlast plugging eth3 in under software emulation
	// (make test-kernels), where the lab's commands alone take seconds.
	st := s.startStream(t, s.top.ServerAddr(lab.V4), 128<<20)
	st.waitSubflow("a subflow over eth2", s.top.Uplinks[1].Addr4, netip.Addr{})
	u3 := s.top.AddUplink(t)
	took := st.waitSubflow("a subflow over the hot-plugged eth3", u3.Addr4, netip.Addr{})
	res := st.wait()
	if res.Sent[2] < 1<<20 {
		t.Errorf("eth3 carried %d bytes, want traffic over the new uplink", res.Sent[2])
	}
	t.Logf("eth3 joined %v after it was plugged; uplink shares %.0f%% / %.0f%% / %.0f%%",
		took.Round(time.Millisecond), 100*res.Share(0), 100*res.Share(1), 100*res.Share(2))
}

func TestRestartBothDaemonsDuringTransfer(t *testing.T) {
	s := startSeed(t, lab.TopologyOptions{Variant: lab.Static})
	idsBefore := map[string][]uint8{"client": endpointIDs(s.client), "server": endpointIDs(s.server)}
	addrsBefore := endpointAddrs(s.client)
	clientBefore, serverBefore := counters(t, s.top.Client), counters(t, s.top.Server)
	st := s.startStream(t, s.top.ServerAddr(lab.V4), 48<<20)
	st.waitSubflow("a subflow over eth2", s.top.Uplinks[1].Addr4, netip.Addr{})
	time.Sleep(500 * time.Millisecond)
	for _, d := range []*daemonlab.Daemon{s.client, s.server} {
		if err := d.Stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
	}
	s.server = daemonlab.Start(t, s.top.Server, daemonlab.Options{Config: configPath(t, "server.toml")})
	// At debug level the restarted client logs what its connection view
	// learns and why join supervision acts: a failure shows which subflow
	// the kernel closed, and why (the reset reason).
	s.client = daemonlab.Start(t, s.top.Client, daemonlab.Options{Config: configPath(t, "client.toml"), Args: []string{"-log-level", "debug"}})
	res := st.wait()
	idsAfter := map[string][]uint8{"client": endpointIDs(s.client), "server": endpointIDs(s.server)}
	serverAfter := counters(t, s.top.Server)
	for _, who := range []string{"client", "server"} {
		if slices.Equal(idsBefore[who], idsAfter[who]) {
			continue
		}
		// The kernel's known defect, caught by the server's DSS checksum,
		// resets the subflow that carried the corrupted data; the client's
		// join supervision then re-adds that uplink's endpoint, with a new
		// id, so that the connection joins over it again: mptcpgd doing
		// its job, not a restart that lost our endpoints.
		if who == "client" && slices.Equal(addrsBefore, endpointAddrs(s.client)) && lab.CaughtByChecksum(t, serverBefore, serverAfter,
			fmt.Sprintf("over a client uplink, whose endpoint mptcpgd re-added to rejoin (ids %v -> %v)", idsBefore[who], idsAfter[who])) {
			continue
		}
		t.Errorf("%s endpoint ids changed across the restart: %v -> %v; MPTCP counters that rose: client %q, server %q", who, idsBefore[who], idsAfter[who],
			lab.RisenCounters(clientBefore, counters(t, s.top.Client), "MPTcpExt"), lab.RisenCounters(serverBefore, serverAfter, "MPTcpExt"))
	}
	t.Logf("both daemons restarted mid-transfer: longest stall %v, goodput %.1f Mbit/s", res.Stall.Round(time.Millisecond), res.Goodput)
}

// endpointAddrs are the addresses of the daemon's own endpoints, sorted.
func endpointAddrs(d *daemonlab.Daemon) []netip.Addr {
	var addrs []netip.Addr
	for _, e := range d.Show().Status.Endpoints {
		if e.Owner == pm.OwnerOurs {
			addrs = append(addrs, e.Addr)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return addrs
}

func counters(t *testing.T, ns *lab.NS) map[string]uint64 {
	t.Helper()
	c, err := ns.Nstat()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func endpointIDs(d *daemonlab.Daemon) []uint8 {
	var ids []uint8
	for _, e := range d.Show().Status.Endpoints {
		if e.Owner == pm.OwnerOurs {
			ids = append(ids, e.ID)
		}
	}
	slices.Sort(ids)
	return ids
}
