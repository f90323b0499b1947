package connview

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"

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

// followIn runs Follow on ns's events, subscribed as the daemon does,
// rebuilding from ns's socket diagnostics, until the test ends. It returns
// the view and a rebuild function for comparisons.
func followIn(t *testing.T, ns *lab.NS) (*View, func() ([]sockdiag.Connection, error)) {
	t.Helper()
	fd := ns.FD()
	events, err := netlinkmptcp.ListenEvents(ListenConfig(fd))
	if err != nil {
		t.Fatal(err)
	}
	rebuild := func() ([]sockdiag.Connection, error) { return sockdiag.ListMPTCP(&sockdiag.Config{NetNS: fd}) }
	v := New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, events, rebuild, v, logging.NewLogger(zaptest.NewLogger(t).Core()).Named(ns.Name))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		events.Close()
	})
	return v, rebuild
}

// TestIntegrationFollow follows both ends of a real connection that joins a
// second subflow. The client's view has it from events; the server's, which
// does not follow connections it accepted, has none, and the kernel drops
// their events. Completed with the socket diagnostics, as `mptcpgd show`
// does, both show the connection with both subflows, and the server its
// listener; once closed, none.
func TestIntegrationFollow(t *testing.T) {
	client, server := newTestbed(t)
	cv, clientDiag := followIn(t, client)
	sv, serverDiag := followIn(t, server)

	// A dual-stack listener: the server's sockets report IPv4-mapped
	// addresses, which the view shows as IPv4.
	l, err := server.ListenMPTCP("tcp", fmt.Sprintf(":%d", serverPort))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	listener := netip.AddrPortFrom(netip.IPv6Unspecified(), serverPort)

	c, s := connect(t, client, l)
	var clientWant Connection
	for _, side := range []struct {
		name       string
		v          *View
		ns         *lab.NS
		sock       *net.TCPConn
		serverSide bool
		diag       func() ([]sockdiag.Connection, error)
	}{
		{"client", cv, client, c, false, clientDiag},
		{"server", sv, server, s, true, serverDiag},
	} {
		info, err := lab.MPTCPInfo(side.sock)
		if err != nil {
			t.Fatal(err)
		}
		local, remote := addrPort(side.sock.LocalAddr()), addrPort(side.sock.RemoteAddr())
		var joined Subflow
		completed := func() (Snapshot, error) {
			conns, err := side.diag()
			if err != nil {
				return Snapshot{}, err
			}
			var listeners []netip.AddrPort
			err = side.ns.Do(func() (err error) { listeners, err = sockdiag.ListMPTCPListeners(nil); return err })
			return side.v.SnapshotWith(conns, listeners), err
		}
		lab.WaitFor(t, waitTime, side.name+"'s completed view has the connection with both subflows", func() error {
			s, err := completed()
			if err != nil {
				return err
			}
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
		snap, err := completed()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]Connection{want}, snap.Connections, equateAddrs, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s's completed view (-want +got):\n%s", side.name, diff)
		}
		var wantListeners []netip.AddrPort
		if side.serverSide {
			wantListeners = []netip.AddrPort{listener}
		}
		if diff := cmp.Diff(wantListeners, snap.Listeners, equateAddrs, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s's listeners (-want +got):\n%s", side.name, diff)
		}
		if !snap.Complete || snap.Losses != 0 {
			t.Errorf("%s's view: complete %t (%q), losses %d", side.name, snap.Complete, snap.IncompleteReason, snap.Losses)
		}
		if !side.serverSide {
			clientWant = want
		}
	}
	// The client's view has the connection from events alone, as the
	// socket diagnostics list it.
	waitView(t, cv, "the client's view has the connection from events", func(s Snapshot) error {
		if diff := cmp.Diff([]Connection{clientWant}, s.Connections, equateAddrs, cmpopts.EquateEmpty()); diff != "" {
			return fmt.Errorf("(-want +got):\n%s", diff)
		}
		return nil
	})
	if snap := sv.Snapshot(); len(snap.Connections) != 0 || snap.Events > 2 {
		// The server sees at most the join's SUB_ESTABLISHED and, once
		// closed, CLOSED: nothing of its connection's start.
		t.Errorf("the server's view from events: %+v after %d events; want no connection", snap.Connections, snap.Events)
	}

	c.Close()
	s.Close()
	waitView(t, cv, "the client's view has no connection once it is closed", func(s Snapshot) error {
		if len(s.Connections) != 0 {
			return fmt.Errorf("connections %+v", s.Connections)
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

// TestIntegrationRecheckDropsWhatClosedSilently: the server ends a
// connection whose client keeps its socket open (CLOSE_WAIT), then the
// client's endpoint over B is deleted. The kernel closes the subflow over B
// without an event (its connection is no longer established), so the
// view, fed by events, would keep it as a working subflow for ever.
// Recheck drops it.
func TestIntegrationRecheckDropsWhatClosedSilently(t *testing.T) {
	client, server := newTestbed(t)
	cv, diag := followIn(t, client)
	l, err := server.ListenMPTCP("tcp", fmt.Sprintf(":%d", serverPort))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, s := connect(t, client, l)
	subflowsInView := func(n int) func(Snapshot) error {
		return func(s Snapshot) error {
			if len(s.Connections) != 1 || len(s.Connections[0].Subflows) != n {
				return fmt.Errorf("connections %+v", s.Connections)
			}
			return nil
		}
	}
	waitView(t, cv, "the client's view has both subflows", subflowsInView(2))

	s.Close()
	client.IP("mptcp", "endpoint", "delete", "id", fmt.Sprint(endpointB))
	lab.WaitFor(t, waitTime, "the kernel to list the client's connection in CLOSE_WAIT with one subflow", func() error {
		conns, err := diag()
		if err != nil {
			return err
		}
		if len(conns) != 1 || conns[0].State != sockdiag.StateCloseWait || len(conns[0].Subflows) != 1 {
			return fmt.Errorf("connections %+v", conns)
		}
		return nil
	})
	if subflowsInView(2)(cv.Snapshot()) != nil {
		t.Logf("this kernel reported the subflow's end: %+v", cv.Snapshot().Connections)
	}
	cv.Recheck()
	waitView(t, cv, "the client's view, rechecked, has the one subflow the kernel has", subflowsInView(1))
}
