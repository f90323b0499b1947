package sockdiag

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// Kernel tests: real sockets in fresh namespaces. They never run in
// parallel: the kernel's generic-netlink lock is host-wide.

// TestIntegrationListMPTCP lists, on both ends, an IPv4 and an IPv6
// connection with a joined subflow each, beside a plain TCP connection and
// an MPTCP one that fell back to TCP, and checks them against what the
// sockets themselves and ss(8) report.
func TestIntegrationListMPTCP(t *testing.T) {
	tb := newTestbed(t)
	clientCfg, serverCfg := nsConfig(t, tb.client), nsConfig(t, tb.server)
	l := tb.listen(t, "tcp", fmt.Sprintf(":%d", serverPort))
	pairs := []struct {
		name     string
		p        pair
		join     netip.Addr
		endpoint uint8
	}{
		{"IPv4 to a dual-stack listener", tb.connect(t, l, "tcp4", netip.AddrPortFrom(clientA, 0), netip.AddrPortFrom(serverA, serverPort), clientB), clientB, endpointB},
		{"IPv6", tb.connect(t, l, "tcp6", netip.AddrPortFrom(clientA6, 0), netip.AddrPortFrom(serverA6, serverPort), clientB6), clientB6, endpointB6},
	}
	plain := tb.plainTCP(t, false)
	fallback := tb.plainTCP(t, true)

	sides := []struct {
		name       string
		ns         *lab.NS
		cfg        *Config
		serverSide bool
	}{{"client", tb.client, clientCfg, false}, {"server", tb.server, serverCfg, true}}
	for _, side := range sides {
		t.Run(side.name, func(t *testing.T) {
			conns, err := ListMPTCP(side.cfg)
			if err != nil {
				t.Fatal(err)
			}
			// The client also has an MPTCP socket for the connection that fell
			// back; the plain TCP server has none.
			want := 3
			if side.serverSide {
				want = 2
			}
			if len(conns) != want {
				t.Errorf("ListMPTCP listed %d connections, want %d: %+v", len(conns), want, conns)
			}
			for _, pr := range pairs {
				sock := pr.p.client
				if side.serverSide {
					sock = pr.p.server
				}
				checkConnection(t, pr.name, conns, sock, side.serverSide, pr.join, pr.endpoint)
			}
			for _, c := range conns {
				if c.Local == addrPort(plain.client.LocalAddr()) || c.Remote == addrPort(plain.client.LocalAddr()) {
					t.Errorf("the plain TCP connection %s is listed as MPTCP: %+v", plain.client.LocalAddr(), c)
				}
			}
			if !side.serverSide {
				checkFallback(t, conns, fallback.client)
			}
			checkAgainstSS(t, side.ns, conns)
		})
	}

	t.Run("listeners", func(t *testing.T) {
		// The dual-stack MPTCP listener, not the plain TCP one plainTCP
		// opened; the client has none.
		want := map[*Config][]netip.AddrPort{
			serverCfg: {netip.AddrPortFrom(netip.IPv6Unspecified(), serverPort)},
			clientCfg: nil,
		}
		for cfg, want := range want {
			got, err := ListMPTCPListeners(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("ListMPTCPListeners = %v, want %v", got, want)
			}
		}
	})

	t.Run("caller's namespace", func(t *testing.T) {
		var inside []Connection
		if err := tb.client.Do(func() error {
			var err error
			inside, err = ListMPTCP(nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		withCfg, err := ListMPTCP(clientCfg)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := tokens(inside), tokens(withCfg); !slices.Equal(got, want) {
			t.Errorf("ListMPTCP(nil) inside the client namespace lists tokens %x, ListMPTCP with its descriptor %x", got, want)
		}
	})

	t.Run("backup", func(t *testing.T) {
		tb.client.IP("mptcp", "endpoint", "change", "id", strconv.Itoa(endpointB6), "backup")
		waitBackup(t, tb, clientB6)
		for _, cfg := range []*Config{clientCfg, serverCfg} {
			conns, err := ListMPTCP(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range conns {
				for _, sf := range c.Subflows {
					joinedV6 := !sf.Initial && sf.Local.Addr().Is6()
					if sf.Backup != joinedV6 {
						t.Errorf("subflow %s -> %s: backup %t, want %t (only the IPv6 join is)", sf.Local, sf.Remote, sf.Backup, joinedV6)
					}
				}
			}
		}
	})

	t.Run("closed", func(t *testing.T) {
		for _, pr := range pairs {
			pr.p.client.Close()
			pr.p.server.Close()
		}
		fallback.client.Close()
		fallback.server.Close()
		for _, cfg := range []*Config{clientCfg, serverCfg} {
			lab.WaitFor(t, waitTime, "no MPTCP connection is left", func() error {
				conns, err := ListMPTCP(cfg)
				if err != nil {
					return err
				}
				if len(conns) != 0 {
					return fmt.Errorf("still listed: %+v", conns)
				}
				return nil
			})
		}
	})
}

// checkConnection finds sock's connection in conns by its token and checks
// it and its subflows against what the socket reports.
func checkConnection(t *testing.T, name string, conns []Connection, sock *net.TCPConn, serverSide bool, join netip.Addr, endpoint uint8) {
	t.Helper()
	info, err := lab.MPTCPInfo(sock)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(conns, func(c Connection) bool { return c.Token == info.Token })
	if i < 0 {
		t.Errorf("%s: token %08x (MPTCP_INFO of %s) is not listed: %+v", name, info.Token, sock.LocalAddr(), conns)
		return
	}
	c := conns[i]
	local, remote := addrPort(sock.LocalAddr()), addrPort(sock.RemoteAddr())
	if c.Local != local || c.Remote != remote || c.State != StateEstablished || c.ServerSide != serverSide ||
		c.JoinedSubflows != 1 || c.MaxSubflows != 2 || c.Fallback {
		t.Errorf("%s: %+v\nwant %s -> %s established, server side %t, 1 joined subflow of 2, no fallback",
			name, c, local, remote, serverSide)
	}
	// The byte counters are known exactly where the kernel has them (6.5+).
	if want := info.ByteCounters; c.ByteCounters != want || want && (c.BytesSent != 1 || c.BytesReceived != 1) {
		t.Errorf("%s: byte counters known %t, %d sent, %d received; want known %t (as MPTCP_INFO says), 1 byte each way if known",
			name, c.ByteCounters, c.BytesSent, c.BytesReceived, want)
	}
	addrs, err := lab.MPTCPSubflows(sock)
	if err != nil {
		t.Fatal(err)
	}
	var want []Subflow
	for _, a := range addrs {
		sf := Subflow{Local: a.Local, Remote: a.Remote, State: StateEstablished, Initial: a.Local == local && a.Remote == remote}
		switch {
		case sf.Initial:
		case serverSide:
			sf.RemoteID = endpoint
		default:
			sf.LocalID, sf.IfIndex = endpoint, ifindexC2
		}
		want = append(want, sf)
	}
	slices.SortFunc(want, CompareSubflows)
	// The test's byte each way crossed one subflow; tcpi_bytes_acked also
	// counts the SYN of each subflow the client opened.
	wantSent := uint64(1)
	if !serverSide {
		wantSent += uint64(len(c.Subflows))
	}
	var sent, received uint64
	got := slices.Clone(c.Subflows)
	for i := range got {
		sent += got[i].BytesSent
		received += got[i].BytesReceived
		got[i].BytesSent, got[i].BytesReceived = 0, 0
	}
	if sent != wantSent || received != 1 {
		t.Errorf("%s: the subflows count %d bytes sent and %d received, want %d and 1: %+v", name, sent, received, wantSent, c.Subflows)
	}
	if diff := cmp.Diff(want, got, equateAddrs); diff != "" {
		t.Errorf("%s: subflows (-want, from MPTCP_SUBFLOW_ADDRS and the endpoint, +got):\n%s", name, diff)
	}
	if !slices.ContainsFunc(c.Subflows, func(sf Subflow) bool { return sf.Local.Addr() == join || sf.Remote.Addr() == join }) {
		t.Errorf("%s: no subflow from %s in %+v", name, join, c.Subflows)
	}
}

// checkFallback: the client's MPTCP socket that a plain TCP server
// answered is listed as fallen back, with the socket's addresses.
func checkFallback(t *testing.T, conns []Connection, sock *net.TCPConn) {
	t.Helper()
	local, remote := addrPort(sock.LocalAddr()), addrPort(sock.RemoteAddr())
	i := slices.IndexFunc(conns, func(c Connection) bool { return c.Local == local })
	if i < 0 {
		t.Errorf("the MPTCP connection %s that fell back to TCP is not listed: %+v", local, conns)
		return
	}
	if c := conns[i]; !c.Fallback || c.Remote != remote || c.JoinedSubflows != 0 {
		t.Errorf("connection that fell back: %+v, want fallback to %s without joined subflows", c, remote)
	}
}

// checkAgainstSS compares conns with `ss -Mni` in ns: the same tokens, each
// with the same local address and port.
func checkAgainstSS(t *testing.T, ns *lab.NS, conns []Connection) {
	t.Helper()
	out, err := ns.Exec("ss", "-Mni")
	if err != nil {
		t.Fatal(err)
	}
	fromSS := map[uint32]netip.AddrPort{}
	lines := strings.Split(out, "\n")
	for i := 1; i+1 < len(lines); i++ {
		fields := strings.Fields(lines[i])
		_, tokenText, found := strings.Cut(lines[i+1], "token:")
		if len(fields) < 5 || !found || strings.HasPrefix(lines[i], "\t") {
			continue
		}
		token, err := strconv.ParseUint(strings.Fields(tokenText)[0], 16, 32)
		local, perr := netip.ParseAddrPort(fields[3])
		if err != nil || perr != nil {
			t.Fatalf("cannot read ss line %q / %q: %v %v", lines[i], lines[i+1], err, perr)
		}
		fromSS[uint32(token)] = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	}
	listed := map[uint32]netip.AddrPort{}
	for _, c := range conns {
		listed[c.Token] = c.Local
	}
	if diff := cmp.Diff(fromSS, listed, equateAddrs); diff != "" {
		t.Errorf("tokens and local addresses (-ss -Mni +ListMPTCP):\n%s\nss said:\n%s", diff, out)
	}
}

func tokens(conns []Connection) []uint32 {
	var ts []uint32
	for _, c := range conns {
		ts = append(ts, c.Token)
	}
	return ts
}

// plainTCP connects the client to a plain TCP listener on the server, from
// an MPTCP socket if mptcp is set (the connection then falls back to TCP),
// and exchanges a byte each way. Both ends are closed when the test ends.
func (tb *testbed) plainTCP(t *testing.T, mptcp bool) pair {
	t.Helper()
	l, err := tb.server.ListenTCP("tcp4", netip.AddrPortFrom(serverA, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Errorf("accept on %s: %v", l.Addr(), err)
		}
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	c, err := tb.client.Dial(ctx, "tcp4", l.Addr().String(), lab.DialOptions{MPTCP: mptcp, Local: clientA})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := <-accepted
	if s == nil {
		t.FailNow()
	}
	t.Cleanup(func() { s.Close() })
	p := pair{client: c, server: s.(*net.TCPConn)}
	exchange(t, p.client, p.server)
	exchange(t, p.server, p.client)
	return p
}
