package connview

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/zap/zaptest"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

// Kernel tests: real events in fresh namespaces. They never run in
// parallel: the kernel's generic-netlink lock is host-wide.

// The network: a client and a server namespace joined by two veth links,
// A (c1-s1) and B (c2-s2). The client has a subflow endpoint on its B
// address, bound to c2, and source routing that sends what leaves from it
// through c2, so a connection over A joins a second subflow over B.
var (
	clientA = netip.MustParseAddr("192.0.2.2")
	serverA = netip.MustParseAddr("192.0.2.1")
	clientB = netip.MustParseAddr("198.51.100.2")
	serverB = netip.MustParseAddr("198.51.100.1")
)

const (
	ifindexC2  = 42
	endpointB  = 1
	serverPort = 8080
	waitTime   = 10 * time.Second // bounds every wait; asserts nothing about speed
)

func newTestbed(t *testing.T) (client, server *lab.NS) {
	t.Helper()
	lab.Require(t)
	client, server = lab.NewPair(t, []lab.PairLink{
		{ClientDev: "c1", ServerDev: "s1", Client4: clientA, Server4: serverA},
		{ClientDev: "c2", ServerDev: "s2", ClientIndex: ifindexC2, Client4: clientB, Server4: serverB},
	})
	for _, ns := range []*lab.NS{client, server} {
		ns.IP("mptcp", "limits", "set", "subflow", "2", "add_addr_accepted", "2")
	}
	client.IP("mptcp", "endpoint", "add", clientB.String(), "dev", "c2", "subflow")
	client.IP("rule", "add", "from", clientB.String(), "table", "100")
	client.IP("route", "add", "default", "via", serverB.String(), "dev", "c2", "table", "100")
	return client, server
}

// followIn runs Follow on ns's events, rebuilding from ns's socket
// diagnostics, until the test ends. It returns the view and a rebuild
// function for comparisons.
func followIn(t *testing.T, ns *lab.NS) (*View, func() ([]sockdiag.Connection, error)) {
	t.Helper()
	fd := ns.FD()
	events, err := netlinkmptcp.ListenEvents(&netlinkmptcp.Config{NetNS: fd})
	if err != nil {
		t.Fatal(err)
	}
	rebuild := func() ([]sockdiag.Connection, error) { return sockdiag.ListMPTCP(&sockdiag.Config{NetNS: fd}) }
	v := New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, events, rebuild, v, zaptest.NewLogger(t).Named(ns.Name))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		events.Close()
	})
	return v, rebuild
}

// TestIntegrationFollow follows both ends of a real connection that joins a
// second subflow: each view shows the connection with both subflows, as the
// kernel's socket diagnostics do, and none once it is closed.
func TestIntegrationFollow(t *testing.T) {
	client, server := newTestbed(t)
	cv, clientDiag := followIn(t, client)
	sv, serverDiag := followIn(t, server)
	// Listener events are 6.2+: older kernels' views list no listener.
	var kernel netlinkmptcp.Features
	if err := server.Do(func() (err error) { kernel, err = netlinkmptcp.ProbeFeatures(nil); return err }); err != nil {
		t.Fatal(err)
	}

	// A dual-stack listener: the server's sockets report IPv4-mapped
	// addresses, which the view shows as IPv4.
	l, err := server.ListenMPTCP("tcp", fmt.Sprintf(":%d", serverPort))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	listener := netip.AddrPortFrom(netip.IPv6Unspecified(), serverPort)
	if kernel.ListenerEvents {
		waitView(t, sv, "the server's view has the listener", func(s Snapshot) error {
			if len(s.Listeners) != 1 || s.Listeners[0] != listener {
				return fmt.Errorf("listeners %v, want %v", s.Listeners, listener)
			}
			return nil
		})
	}

	c, s := connect(t, client, l)
	for _, side := range []struct {
		name       string
		v          *View
		sock       *net.TCPConn
		serverSide bool
		diag       func() ([]sockdiag.Connection, error)
	}{
		{"client", cv, c, false, clientDiag},
		{"server", sv, s, true, serverDiag},
	} {
		info, err := lab.MPTCPInfo(side.sock)
		if err != nil {
			t.Fatal(err)
		}
		local, remote := addrPort(side.sock.LocalAddr()), addrPort(side.sock.RemoteAddr())
		var joined Subflow
		waitView(t, side.v, side.name+"'s view has the connection with both subflows", func(s Snapshot) error {
			if len(s.Connections) != 1 || len(s.Connections[0].Subflows) != 2 {
				return fmt.Errorf("connections %+v", s.Connections)
			}
			joined = s.Connections[0].Subflows[1]
			return nil
		})
		// The joined subflow's port is the client's choice.
		wantJoined, from := Subflow{Local: joined.Local, Remote: remote, LocalID: endpointB, IfIndex: ifindexC2}, joined.Local
		if side.serverSide {
			wantJoined, from = Subflow{Local: local, Remote: joined.Remote, RemoteID: endpointB}, joined.Remote
		}
		if from.Addr() != clientB {
			t.Errorf("%s: the joined subflow %s -> %s is not from %s", side.name, joined.Local, joined.Remote, clientB)
		}
		want := Connection{
			Token: info.Token, Local: local, Remote: remote, ServerSide: side.serverSide, Established: true,
			Subflows: []Subflow{{Local: local, Remote: remote, Initial: true}, wantJoined},
		}
		snap := side.v.Snapshot()
		if diff := cmp.Diff([]Connection{want}, snap.Connections, equateAddrs, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s's view (-want +got):\n%s", side.name, diff)
		}
		if !snap.Complete || snap.Losses != 0 {
			t.Errorf("%s's view: complete %t (%q), losses %d", side.name, snap.Complete, snap.IncompleteReason, snap.Losses)
		}

		// The kernel's socket diagnostics agree with what the events built.
		conns, err := side.diag()
		if err != nil {
			t.Fatal(err)
		}
		rebuilt := New()
		rebuilt.Rebuild(conns)
		if diff := cmp.Diff(snap.Connections, rebuilt.Snapshot().Connections, equateAddrs); diff != "" {
			t.Errorf("%s: view from events (-) and from socket diagnostics (+):\n%s", side.name, diff)
		}
	}

	c.Close()
	s.Close()
	for name, v := range map[string]*View{"client": cv, "server": sv} {
		waitView(t, v, name+"'s view has no connection once it is closed", func(s Snapshot) error {
			if len(s.Connections) != 0 {
				return fmt.Errorf("connections %+v", s.Connections)
			}
			return nil
		})
	}
	l.Close()
	waitView(t, sv, "the server's view has no listener once it is closed", func(s Snapshot) error {
		if len(s.Listeners) != 0 {
			return fmt.Errorf("listeners %v", s.Listeners)
		}
		return nil
	})
}

func waitView(t *testing.T, v *View, what string, cond func(Snapshot) error) {
	t.Helper()
	lab.WaitFor(t, waitTime, what, func() error { return cond(v.Snapshot()) })
}

// connect opens an MPTCP connection from the client's A address to l,
// exchanges a byte each way so that it is fully established (the client's
// path manager then joins a subflow over B), and returns both ends, closed
// when the test ends.
func connect(t *testing.T, client *lab.NS, l net.Listener) (c, s *net.TCPConn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		a, err := l.Accept()
		if err != nil {
			t.Errorf("accept: %v", err)
		}
		accepted <- a
	}()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	c, err := client.DialMPTCP(ctx, "tcp4", netip.AddrPortFrom(serverA, serverPort).String(), clientA)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	a := <-accepted
	if a == nil {
		t.FailNow()
	}
	s = a.(*net.TCPConn)
	t.Cleanup(func() { s.Close() })
	for _, dir := range [][2]*net.TCPConn{{c, s}, {s, c}} {
		if _, err := dir[0].Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(dir[1], make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	return c, s
}

// addrPort is a socket address with IPv4-mapped addresses unmapped.
func addrPort(a net.Addr) netip.AddrPort {
	ap := a.(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
