package netlinkmptcp

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// The kernel tests' network: a client and a server namespace joined by two
// veth links, A (c1-s1, 192.0.2.0/24 and 2001:db8:a::/64) and B (c2-s2,
// 198.51.100.0/24). Interface indexes are fixed so that captured messages
// are reproducible.
var (
	clientA  = netip.MustParseAddr("192.0.2.2")
	serverA  = netip.MustParseAddr("192.0.2.1")
	clientB  = netip.MustParseAddr("198.51.100.2")
	serverB  = netip.MustParseAddr("198.51.100.1")
	clientA6 = netip.MustParseAddr("2001:db8:a::2")
	serverA6 = netip.MustParseAddr("2001:db8:a::1")
)

const (
	ifindexC1, ifindexC2 = 41, 42
	ifindexS1, ifindexS2 = 51, 52

	// Ports whose two bytes differ, so that a byte-order mistake shows.
	serverPort = 8080  // 0x1f90
	clientPort = 41000 // 0xa028
	// The client's ephemeral ports (its joined subflows) come from this range.
	ephemeralLow, ephemeralHigh = 45000, 45099

	// waitTime bounds every wait for the kernel; it asserts nothing about speed.
	waitTime = 10 * time.Second
)

type testbed struct {
	t              *testing.T
	client, server *lab.NS
	clientCfg      *Config
	serverCfg      *Config
}

// newTestbed builds the network. MPTCP limits are left at the kernel's
// defaults (subflows 2, add_addr_accepted 0).
func newTestbed(t *testing.T) *testbed {
	t.Helper()
	lab.Require(t)
	c, s := lab.NewPair(t, []lab.PairLink{
		{ClientDev: "c1", ServerDev: "s1", ClientIndex: ifindexC1, ServerIndex: ifindexS1,
			Client4: clientA, Server4: serverA, Client6: clientA6, Server6: serverA6},
		{ClientDev: "c2", ServerDev: "s2", ClientIndex: ifindexC2, ServerIndex: ifindexS2, Client4: clientB, Server4: serverB},
	})
	// Subflows bound to c2 reach the server's A address through B.
	c.IP("route", "add", "default", "via", serverB.String(), "dev", "c2")
	c.Sysctl("net.ipv4.ip_local_port_range", fmt.Sprintf("%d %d", ephemeralLow, ephemeralHigh))
	return &testbed{t: t, client: c, server: s, clientCfg: nsConfig(t, c), serverCfg: nsConfig(t, s)}
}

// nsConfig opens ns for netlink, closing the descriptor when the test ends.
func nsConfig(t *testing.T, ns *lab.NS) *Config {
	t.Helper()
	return &Config{NetNS: ns.FD()}
}

// dial opens a Client in cfg's namespace, closed when the test ends.
func dial(t *testing.T, cfg *Config) *Client {
	t.Helper()
	c, err := Dial(cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func u32(v uint32) *uint32 { return &v }

// probe returns what the kernel under test has (ProbeFeatures): tests
// check the capability they need instead of assuming the host's kernel.
func probe(t *testing.T, cfg *Config) Features {
	t.Helper()
	f, err := ProbeFeatures(cfg)
	if err != nil {
		t.Fatalf("ProbeFeatures: %v", err)
	}
	return f
}

// setLimits sets both limits or fails the test.
func setLimits(t *testing.T, c *Client, subflows, addAddrAccepted uint32) {
	t.Helper()
	if err := c.SetLimits(LimitsUpdate{Subflows: u32(subflows), AddAddrAccepted: u32(addAddrAccepted)}); err != nil {
		t.Fatal(err)
	}
}

// addEndpoint adds e or fails the test.
func addEndpoint(t *testing.T, c *Client, e Endpoint) Endpoint {
	t.Helper()
	got, err := c.AddEndpoint(e)
	if err != nil {
		t.Fatalf("AddEndpoint(%v): %v", e, err)
	}
	return got
}

// recorder collects the events of one namespace as raw messages, so that
// tests can both decode them and store them.
type recorder struct {
	t    *testing.T
	name string
	msgs chan genetlink.Message
	seen []string
}

// record starts reading events in cfg's namespace until the test ends.
func record(t *testing.T, cfg *Config, name string) *recorder {
	t.Helper()
	ev, err := ListenEvents(cfg)
	if err != nil {
		t.Fatalf("ListenEvents(%s): %v", name, err)
	}
	r := &recorder{t: t, name: name, msgs: make(chan genetlink.Message, 4096)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := ev.read(ctx, func(b []byte) {
			// Each event comes in a datagram of its own, in a buffer the
			// next read reuses.
			var m netlink.Message
			if err := m.UnmarshalBinary(bytes.Clone(b)); err != nil {
				t.Errorf("%s events: %v", name, err)
				return
			}
			var gm genetlink.Message
			if uint16(m.Header.Type) == ev.familyID && gm.UnmarshalBinary(m.Data) == nil {
				r.msgs <- gm
			}
		}, func() {}, func(err error) { t.Errorf("%s events: %v", name, err) })
		if ctx.Err() == nil {
			t.Errorf("%s events: %v", name, err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		ev.Close()
	})
	return r
}

// wait returns the first event (and its message) that matches, skipping
// others, and fails the test if none comes.
func (r *recorder) wait(what string, match func(Event) bool) (Event, genetlink.Message) {
	r.t.Helper()
	timeout := time.After(waitTime)
	for {
		select {
		case m := <-r.msgs:
			e, err := parseEvent(m)
			if err != nil {
				r.t.Fatalf("%s: %v", r.name, err)
			}
			if match(e) {
				return e, m
			}
			r.seen = append(r.seen, e.String())
		case <-timeout:
			r.t.Fatalf("%s: no %s event within %v; skipped:\n%s", r.name, what, waitTime, strings.Join(r.seen, "\n"))
		}
	}
}

// waitType waits for the next event of type typ.
func (r *recorder) waitType(typ EventType) (Event, genetlink.Message) {
	r.t.Helper()
	return r.wait(typ.String(), func(e Event) bool { return e.Type == typ })
}

// listenMPTCP opens an MPTCP listener inside ns and serves an echo on every
// connection until the peer closes it, handing the first accepted
// connections to the returned channel.
func listenMPTCP(t *testing.T, ns *lab.NS, addr netip.AddrPort) (net.Listener, <-chan *net.TCPConn) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() error {
		var lc net.ListenConfig
		lc.SetMultipathTCP(true)
		var err error
		ln, err = lc.Listen(context.Background(), "tcp", addr.String())
		return err
	}); err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	accepted := make(chan *net.TCPConn, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			tc := conn.(*net.TCPConn)
			select {
			case accepted <- tc:
			default: // nobody asks for them: tests that make many connections
			}
			go func() {
				defer tc.Close()
				r := bufio.NewReader(tc)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := tc.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln, accepted
}

// dialMPTCP connects from local (port 0: any) to remote inside ns, checks
// that MPTCP is in use, and exchanges a line so that both ends are fully
// established.
func dialMPTCP(t *testing.T, ns *lab.NS, local, remote netip.AddrPort) *net.TCPConn {
	t.Helper()
	var conn net.Conn
	if err := ns.Do(func() error {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local), Timeout: waitTime}
		d.SetMultipathTCP(true)
		var err error
		conn, err = d.Dial("tcp", remote.String())
		return err
	}); err != nil {
		t.Fatalf("dial %s from %s: %v", remote, local, err)
	}
	tc := conn.(*net.TCPConn)
	t.Cleanup(func() { tc.Close() })
	if mp, err := tc.MultipathTCP(); err != nil || !mp {
		t.Fatalf("connection %s -> %s is not MPTCP (%v)", local, remote, err)
	}
	echo(t, tc)
	return tc
}

// echo sends a line and reads it back.
func echo(t *testing.T, conn *net.TCPConn) {
	t.Helper()
	if err := conn.SetDeadline(time.Now().Add(waitTime)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		t.Fatalf("echo write: %v", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo read: %q, %v", line, err)
	}
}

// addrPort is the netip form of a socket address, unmapped.
func addrPort(a net.Addr) netip.AddrPort {
	ap := a.(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// acceptedConn waits for the listener's next connection.
func acceptedConn(t *testing.T, accepted <-chan *net.TCPConn) *net.TCPConn {
	t.Helper()
	select {
	case c := <-accepted:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(waitTime):
		t.Fatal("no connection accepted")
	}
	return nil
}
