package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

// Rejoin with the timing of real networks (docs/architecture.md,
// "Rejoin"): long outages that leave the gateway's neighbour entry FAILED,
// a router that answers ARP late, a middlebox that resets joins. Every
// transfer's bytes are checked.

// startRejoinSeed is the seed lab (static variant: eth2's gateway comes from
// the configuration) with extra TOML appended to the client's
// configuration.
func startRejoinSeed(t *testing.T, fam lab.Family, extra string) *seed {
	t.Helper()
	top := lab.NewTopology(t, lab.TopologyOptions{Variant: lab.Static, IPv6: fam == lab.V6, RateMbit: rate, Checksums: true})
	s := &seed{top: top}
	s.server = daemonlab.Start(t, top.Server, daemonlab.Options{Config: configPath(t, "server.toml")})
	base, err := os.ReadFile(configPath(t, "client.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s.client = daemonlab.Start(t, top.Client, daemonlab.Options{Config: daemonlab.WriteConfig(t, string(base)+"\n"+extra)})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the client's mptcpgd logged:\n%s", s.client.Stderr())
		}
	})
	return s
}

// neighState is the state `ip neigh` shows for gw on dev, "" if none.
func neighState(ns *lab.NS, dev string, gw netip.Addr) string {
	out, err := ns.Exec("ip", "neigh", "show", gw.String(), "dev", dev)
	if err != nil {
		return ""
	}
	f := strings.Fields(out)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// waitFor polls cond until it holds; it bounds a wait and measures nothing.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last seen: %s", what, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outageUntilFailed pulls uplink i's cable and keeps it out until the
// client's neighbour entry for its gateway is FAILED, as a long outage
// leaves it on real networks: something on the host (a DHCP renewal, the
// last packets of a closed subflow) tried the gateway meanwhile. Here a
// ping over the dead link is that something.
func outageUntilFailed(t *testing.T, s *seed, i int, fam lab.Family) {
	t.Helper()
	u := s.top.Uplinks[i]
	s.top.CablePull(i)
	waitFor(t, "the gateway's neighbour entry FAILED during the outage", 40*time.Second, func() (bool, string) {
		st := neighState(s.top.Client, u.Dev, u.Gateway(fam))
		if st == "" {
			_, _ = s.top.Client.Exec("ping", pingFamily(fam), "-c", "1", "-W", "1", "-I", u.Dev, u.Gateway(fam).String())
		}
		return st == "FAILED", st
	})
}

func pingFamily(f lab.Family) string {
	if f == lab.V6 {
		return "-6"
	}
	return "-4"
}

func txBytes(t *testing.T, ns *lab.NS, dev string) uint64 {
	t.Helper()
	_, tx, err := ns.LinkStats(dev)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func hasEndpoint(ns *lab.NS, a netip.Addr) bool {
	out, _ := ns.Exec("ip", "mptcp", "endpoint", "show")
	return strings.Contains(out, a.String()+" ")
}

// A long outage while sending leaves the gateway FAILED; after the plug the
// same connection regains a subflow over the uplink and carries data on it.
func TestRejoinAfterLongOutage(t *testing.T) {
	for _, fam := range []lab.Family{lab.V4, lab.V6} {
		t.Run(fam.String(), func(t *testing.T) {
			s := startRejoinSeed(t, fam, "")
			u := s.top.Uplinks[1]
			st := s.startStream(t, s.top.ServerAddr(fam), 256<<20)
			st.waitSubflow("a subflow over eth2", u.Addr(fam), netip.Addr{})
			outageUntilFailed(t, s, 1, fam)
			st.waitNoSubflow("the subflow over eth2 closed", u.Addr(fam))
			plugged := time.Now()
			s.top.CablePlug(1)
			before := txBytes(t, s.top.Client, u.Dev)
			st.waitSubflow("the same connection regains a subflow over eth2", u.Addr(fam), netip.Addr{})
			back := time.Since(plugged)
			res := st.wait()
			if sent := txBytes(t, s.top.Client, u.Dev) - before; sent < 1<<20 {
				t.Errorf("eth2 sent %d bytes after the plug, want the connection's data over it again", sent)
			}
			t.Logf("gateway FAILED at the plug; subflow back %v after it; longest stall %v", back.Round(time.Millisecond), res.Stall.Round(time.Millisecond))
		})
	}
}

// A router that ignores ARP for a while after the plug: the endpoint waits
// for its gateway to answer (show says so) and the connection regains its
// path once ARP answers.
func TestRejoinWaitsForTheGatewayToAnswer(t *testing.T) {
	s := startRejoinSeed(t, lab.V4, "")
	u := s.top.Uplinks[1]
	st := s.startStream(t, s.top.ServerAddr(lab.V4), 256<<20)
	st.waitSubflow("a subflow over eth2", u.Addr4, netip.Addr{})
	outageUntilFailed(t, s, 1, lab.V4)
	s.top.Router.IP("link", "set", u.RouterDev, "arp", "off")
	t.Cleanup(func() { _, _ = s.top.Router.Exec("ip", "link", "set", u.RouterDev, "arp", "on") })
	s.top.CablePlug(1)
	waitFor(t, "show saying eth2's address waits for its gateway", 20*time.Second, func() (bool, string) {
		for _, a := range s.client.Show().Status.Addresses {
			if a.Addr.Addr == u.Addr4 {
				return strings.Contains(a.Reason, "waiting for gateway "+u.Gateway4.String()+" to answer ARP"), a.Reason
			}
		}
		return false, "no such address"
	})
	if hasEndpoint(s.top.Client, u.Addr4) {
		t.Fatal("eth2's endpoint was added while its gateway did not answer ARP")
	}
	s.top.Router.IP("link", "set", u.RouterDev, "arp", "on")
	before := txBytes(t, s.top.Client, u.Dev)
	st.waitSubflow("the connection regains eth2 once ARP answers", u.Addr4, netip.Addr{})
	st.wait()
	if sent := txBytes(t, s.top.Client, u.Dev) - before; sent < 1<<20 {
		t.Errorf("eth2 sent %d bytes after ARP came back", sent)
	}
}

// resetJoins makes the router reset joins (SYNs) from src, to port if it
// is not 0, as a middlebox that is not ready does; it returns the undo.
func resetJoins(t *testing.T, router *lab.NS, src netip.Addr, port uint16) func() {
	t.Helper()
	fam := "ip"
	if src.Is6() {
		fam = "ip6"
	}
	match := fmt.Sprintf("%s saddr %s", fam, src)
	if port != 0 {
		match += fmt.Sprintf(" tcp dport %d", port)
	}
	rules := fmt.Sprintf("table inet mptcpgd_test {\n chain joins {\n  type filter hook forward priority 0; policy accept;\n  %s tcp flags & (syn | ack) == syn reject with tcp reset\n }\n}\n", match)
	cmd := router.Command(t.Context(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	undone := false
	undo := func() {
		if !undone {
			undone = true
			router.MustExec("nft", "delete", "table", "inet", "mptcpgd_test")
		}
	}
	t.Cleanup(undo)
	return undo
}

// streamThroughResetsAfterOutage starts a long IPv4 transfer that joins
// over eth2, pulls eth2's cable until the subflow closed, has the router
// reset every join from eth2's address, and plugs the cable back; it
// returns the transfer and the undo of the resets.
func streamThroughResetsAfterOutage(t *testing.T, s *seed) (*stream, func()) {
	t.Helper()
	u := s.top.Uplinks[1]
	st := s.startStream(t, s.top.ServerAddr(lab.V4), 256<<20)
	st.waitSubflow("a subflow over eth2", u.Addr4, netip.Addr{})
	s.top.CablePull(1)
	st.waitNoSubflow("the subflow over eth2 closed", u.Addr4)
	stop := resetJoins(t, s.top.Router, u.Addr4, 0)
	s.top.CablePlug(1)
	return st, stop
}

// A middlebox resets the joins from eth2's address for a while after the
// plug: the failed join is retried, and once the resets stop the
// connection joins over eth2 again.
func TestRejoinAfterJoinsWereReset(t *testing.T) {
	s := startRejoinSeed(t, lab.V4, "")
	u := s.top.Uplinks[1]
	st, stop := streamThroughResetsAfterOutage(t, s)
	waitFor(t, "show reporting the reset join", 20*time.Second, func() (bool, string) {
		ms := s.client.Show().Status.Missing
		return len(ms) > 0 && strings.Contains(ms[0].Reason, "join failed: ECONNREFUSED"), fmt.Sprint(ms)
	})
	stop()
	before := txBytes(t, s.top.Client, u.Dev)
	took := st.waitSubflow("a subflow over eth2 once the resets stopped", u.Addr4, netip.Addr{})
	st.wait()
	if sent := txBytes(t, s.top.Client, u.Dev) - before; sent < 1<<20 {
		t.Errorf("eth2 sent %d bytes after the resets stopped", sent)
	}
	t.Logf("joined over eth2 %v after the resets stopped", took.Round(time.Millisecond))
}

// subflowPorts are the local ports of conn's established subflows from a.
func subflowPorts(t *testing.T, ns *lab.NS, local netip.AddrPort, a netip.Addr) []uint16 {
	t.Helper()
	conns, err := sockdiag.ListMPTCP(&sockdiag.Config{NetNS: ns.FD()})
	if err != nil {
		t.Fatal(err)
	}
	var ports []uint16
	for _, c := range conns {
		if c.Local.Port() != local.Port() {
			continue
		}
		for _, sf := range c.Subflows {
			if sf.State == sockdiag.StateEstablished && sf.Local.Addr().Unmap() == a {
				ports = append(ports, sf.Local.Port())
			}
		}
	}
	return ports
}

// Two connections, and a middlebox that resets only the first one's joins
// over eth2: the second joins and keeps its subflow untouched throughout
// (re-adding the endpoint would cut it), and the first is reported as
// missing the path, with the reason.
func TestRejoinNeverCutsAWorkingSubflow(t *testing.T) {
	s := startRejoinSeed(t, lab.V4, "")
	u := s.top.Uplinks[1]
	const blocked, open = 40001, 40002
	resetJoins(t, s.top.Router, u.Addr4, blocked)
	serverBefore := counters(t, s.top.Server)
	good := &stream{Transfer: lab.StartTransferTo(t, s.top, s.top.ServerAddr(lab.V4), open, 192<<20), t: t, seed: s}
	good.waitSubflow("the open connection's subflow over eth2", u.Addr4, netip.Addr{})
	goodLocal := good.Conn.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort()
	ports := subflowPorts(t, s.top.Client, goodLocal, u.Addr4)
	bad := &stream{Transfer: lab.StartTransferTo(t, s.top, s.top.ServerAddr(lab.V4), blocked, 64<<20), t: t, seed: s}
	waitFor(t, "show reporting the blocked connection's missing path with its reason", 20*time.Second, func() (bool, string) {
		for _, m := range s.client.Show().Status.Missing {
			if m.Addr == u.Addr4 && strings.Contains(m.Reason, "join failed: ECONNREFUSED") && strings.Contains(m.Reason, "not retried") {
				return true, m.Reason
			}
		}
		return false, fmt.Sprint(s.client.Show().Status.Missing)
	})
	// Long enough for several retries, had the endpoint been re-added.
	time.Sleep(6 * time.Second)
	// A subflow the server's DSS checksum reset (the kernel's known
	// defect) is joined again, with a new port.
	if now := subflowPorts(t, s.top.Client, goodLocal, u.Addr4); fmt.Sprint(now) != fmt.Sprint(ports) &&
		!lab.CaughtByChecksum(t, serverBefore, counters(t, s.top.Server), fmt.Sprintf("of the open connection over eth2 (ports %v -> %v)", ports, now)) {
		t.Errorf("the open connection's subflows over eth2 changed: ports %v -> %v", ports, now)
	}
	bad.wait()
	good.wait()
}

// A gateway that never answers: the endpoint is added after the bound
// (rejoin.gateway_timeout), with one warning.
func TestRejoinGatewayTimeout(t *testing.T) {
	s := startRejoinSeed(t, lab.V4, "[rejoin]\ngateway_timeout = \"3s\"\n")
	u := s.top.Uplinks[1]
	outageUntilFailed(t, s, 1, lab.V4)
	s.top.Router.IP("link", "set", u.RouterDev, "arp", "off")
	t.Cleanup(func() { _, _ = s.top.Router.Exec("ip", "link", "set", u.RouterDev, "arp", "on") })
	s.top.CablePlug(1)
	waitFor(t, "eth2's endpoint once the gateway wait is over", 20*time.Second, func() (bool, string) {
		return hasEndpoint(s.top.Client, u.Addr4), ""
	})
	n := 0
	for _, l := range s.client.Logs() {
		if l["msg"] == "gateway did not answer in time: adding its endpoint anyway" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d warnings that the gateway did not answer, want one", n)
	}
}
