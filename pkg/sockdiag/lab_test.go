package sockdiag

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// The kernel tests' network: a client and a server namespace joined by two
// veth links, A (c1-s1) and B (c2-s2), each with an IPv4 and an IPv6
// prefix. The client has a subflow endpoint on its B addresses, bound to
// c2, and source routing that sends what leaves from them through c2, so a
// connection over A joins a second subflow over B. Interface indexes are
// fixed so that captured messages are reproducible.
var (
	clientA  = netip.MustParseAddr("192.0.2.2")
	serverA  = netip.MustParseAddr("192.0.2.1")
	clientB  = netip.MustParseAddr("198.51.100.2")
	serverB  = netip.MustParseAddr("198.51.100.1")
	clientA6 = netip.MustParseAddr("2001:db8:1::2")
	serverA6 = netip.MustParseAddr("2001:db8:1::1")
	clientB6 = netip.MustParseAddr("2001:db8:2::2")
	serverB6 = netip.MustParseAddr("2001:db8:2::1")
)

const (
	ifindexC1, ifindexC2 = 41, 42
	ifindexS1, ifindexS2 = 51, 52

	// The client's endpoint ids: the kernel numbers them in the order they
	// are added.
	endpointB, endpointB6 = 1, 2

	// Ports whose two bytes differ, so that a byte-order mistake shows.
	serverPort = 8080  // 0x1f90
	clientPort = 41000 // 0xa028

	// waitTime bounds every wait for the kernel; it asserts nothing about speed.
	waitTime = 10 * time.Second
)

type testbed struct {
	client, server *lab.NS
}

// newTestbed builds the network, deleted when the test ends.
func newTestbed(t *testing.T) *testbed {
	t.Helper()
	lab.Require(t)
	c, s := lab.NewPair(t, []lab.PairLink{
		{ClientDev: "c1", ServerDev: "s1", ClientIndex: ifindexC1, ServerIndex: ifindexS1,
			Client4: clientA, Server4: serverA, Client6: clientA6, Server6: serverA6},
		{ClientDev: "c2", ServerDev: "s2", ClientIndex: ifindexC2, ServerIndex: ifindexS2,
			Client4: clientB, Server4: serverB, Client6: clientB6, Server6: serverB6},
	})
	for _, ns := range []*lab.NS{c, s} {
		ns.IP("mptcp", "limits", "set", "subflow", "2", "add_addr_accepted", "2")
	}
	c.IP("mptcp", "endpoint", "add", clientB.String(), "dev", "c2", "subflow")
	c.IP("mptcp", "endpoint", "add", clientB6.String(), "dev", "c2", "subflow")
	// What leaves from a B address reaches the server's A addresses over B.
	c.IP("-4", "rule", "add", "from", clientB.String(), "table", "100")
	c.IP("-4", "route", "add", "default", "via", serverB.String(), "dev", "c2", "table", "100")
	c.IP("-6", "rule", "add", "from", clientB6.String(), "table", "100")
	c.IP("-6", "route", "add", "default", "via", serverB6.String(), "dev", "c2", "table", "100")
	return &testbed{client: c, server: s}
}

// nsConfig opens ns for netlink, closing the descriptor when the test ends.
func nsConfig(t *testing.T, ns *lab.NS) *Config {
	t.Helper()
	return &Config{NetNS: ns.FD()}
}

// pair is one MPTCP connection of the testbed, seen from both ends.
type pair struct {
	client, server *net.TCPConn
}

// listen opens an MPTCP listener in the server namespace, closed when the
// test ends. network "tcp" with an unspecified address gives a dual-stack
// IPv6 socket, whose IPv4 connections report IPv4-mapped addresses.
func (tb *testbed) listen(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	l, err := tb.server.ListenMPTCP(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// connect opens an MPTCP connection from local to l, exchanges a byte each
// way so that it is fully established, and waits until the client's path
// manager has joined a second subflow from join. Both ends are closed
// when the test ends.
func (tb *testbed) connect(t *testing.T, l net.Listener, network string, local, remote netip.AddrPort, join netip.Addr) pair {
	t.Helper()
	accepted := make(chan *net.TCPConn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Errorf("accept on %s: %v", l.Addr(), err)
			close(accepted)
			return
		}
		accepted <- c.(*net.TCPConn)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	var d net.Dialer
	d.SetMultipathTCP(true)
	d.LocalAddr = net.TCPAddrFromAddrPort(local)
	var conn net.Conn
	if err := tb.client.Do(func() error {
		var err error
		conn, err = d.DialContext(ctx, network, remote.String())
		return err
	}); err != nil {
		t.Fatalf("dial %s from %s: %v", remote, local, err)
	}
	p := pair{client: conn.(*net.TCPConn)}
	t.Cleanup(func() { p.client.Close() })
	if mp, err := p.client.MultipathTCP(); err != nil || !mp {
		t.Fatalf("connection from %s is not MPTCP: %t, %v", local, mp, err)
	}
	p.server = <-accepted
	if p.server == nil {
		t.FailNow()
	}
	t.Cleanup(func() { p.server.Close() })

	// A byte each way: the client is fully established once the server's
	// data arrives, and only then does its path manager open subflows.
	exchange(t, p.client, p.server)
	exchange(t, p.server, p.client)
	lab.WaitFor(t, waitTime, "a subflow joins from "+join.String(), func() error {
		for _, c := range []*net.TCPConn{p.client, p.server} {
			sfs, err := lab.MPTCPSubflows(c)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(sfs, func(s lab.SubflowAddrs) bool {
				return s.Local.Addr() == join || s.Remote.Addr() == join
			}) {
				return fmt.Errorf("subflows of %s: %v", c.LocalAddr(), sfs)
			}
		}
		return nil
	})
	return p
}

// exchange writes one byte on from and reads it on to.
func exchange(t *testing.T, from, to *net.TCPConn) {
	t.Helper()
	if _, err := from.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(to, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
}

// addrPort is c's local or remote address as the kernel reports it, with
// IPv4-mapped addresses unmapped.
func addrPort(a net.Addr) netip.AddrPort {
	ap := a.(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// waitBackup waits until both ends list the subflow from the client's
// address join as a backup.
func waitBackup(t *testing.T, tb *testbed, join netip.Addr) {
	t.Helper()
	for _, ns := range []*lab.NS{tb.client, tb.server} {
		cfg := nsConfig(t, ns)
		lab.WaitFor(t, waitTime, "the subflow from "+join.String()+" is a backup in "+ns.Name, func() error {
			conns, err := ListMPTCP(cfg)
			if err != nil {
				return err
			}
			for _, c := range conns {
				for _, sf := range c.Subflows {
					if (sf.Local.Addr() == join || sf.Remote.Addr() == join) && sf.Backup {
						return nil
					}
				}
			}
			return fmt.Errorf("connections %+v", conns)
		})
	}
}
