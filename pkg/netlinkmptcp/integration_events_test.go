package netlinkmptcp

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// Kernel tests: real netlink in fresh namespaces. They never run in
// parallel: the kernel's generic-netlink lock is host-wide.

// TestIntegrationEvents follows one connection through its life: created,
// established, a joined subflow, an announcement, its withdrawal, the
// subflow's close and the connection's.
func TestIntegrationEvents(t *testing.T) {
	tb := newTestbed(t)
	cc, sc := dial(t, tb.clientCfg), dial(t, tb.serverCfg)
	setLimits(t, cc, 2, 0)
	setLimits(t, sc, 2, 0)
	cev := record(t, tb.clientCfg, "client")
	sev := record(t, tb.serverCfg, "server")
	// Listener events are 6.2+: on older kernels the listener is not seen.
	listenerEvents := probe(t, tb.serverCfg).ListenerEvents

	sub := addEndpoint(t, cc, Endpoint{Addr: clientB, Flags: FlagSubflow, IfIndex: ifindexC2})

	listenAt := netip.AddrPortFrom(serverA, serverPort)
	ln, accepted := listenMPTCP(t, tb.server, listenAt)
	if listenerEvents {
		if e, _ := sev.waitType(EventListenerCreated); e.Local != listenAt || e.Family != FamilyIPv4 {
			t.Errorf("listener_created = %v, want local %v", e, listenAt)
		}
	}

	conn := dialMPTCP(t, tb.client, netip.AddrPortFrom(clientA, 0), listenAt)
	local, remote := addrPort(conn.LocalAddr()), addrPort(conn.RemoteAddr())
	sconn := acceptedConn(t, accepted)

	created, _ := cev.waitType(EventCreated)
	if created.Local != local || created.Remote != remote || created.Family != FamilyIPv4 ||
		created.ServerSide || created.Token == 0 || created.LocalID != 0 || created.RemoteID != 0 {
		t.Errorf("client created = %v; want %v -> %v, client side", created, local, remote)
	}
	token := created.Token
	if e, _ := cev.waitType(EventEstablished); e.Token != token || e.Local != local || e.Remote != remote {
		t.Errorf("client established = %v; want token %08x %v -> %v", e, token, local, remote)
	}
	screated, _ := sev.waitType(EventCreated)
	if screated.Local != addrPort(sconn.LocalAddr()) || screated.Remote != addrPort(sconn.RemoteAddr()) || !screated.ServerSide {
		t.Errorf("server created = %v; want %v -> %v, server side", screated, sconn.LocalAddr(), sconn.RemoteAddr())
	}
	if screated.Token == token {
		t.Errorf("server token %08x equals the client's: tokens are per host", token)
	}

	// The subflow endpoint on the second link joins.
	joined, _ := cev.waitType(EventSubEstablished)
	if joined.Token != token || joined.Local.Addr() != clientB || joined.Remote != remote ||
		joined.LocalID != sub.ID || joined.IfIndex != ifindexC2 || joined.Local.Port() == 0 {
		t.Errorf("client sub_established = %v; want %v:* id %d -> %v on ifindex %d", joined, clientB, sub.ID, remote, ifindexC2)
	}

	// A signal endpoint on the server's second address is announced.
	signal := addEndpoint(t, sc, Endpoint{Addr: serverB, Flags: FlagSignal})
	announced, _ := cev.waitType(EventAnnounced)
	if want := netip.AddrPortFrom(serverB, serverPort); announced.Token != token || announced.Remote != want ||
		announced.RemoteID != signal.ID || announced.Family != FamilyIPv4 {
		t.Errorf("announced = %v; want %v id %d, family ipv4", announced, want, signal.ID)
	}
	if err := sc.DeleteEndpoint(signal.ID); err != nil {
		t.Fatal(err)
	}
	if e, _ := cev.waitType(EventRemoved); e.Token != token || e.RemoteID != signal.ID {
		t.Errorf("removed = %v; want remote id %d", e, signal.ID)
	}

	// Deleting the subflow endpoint closes the joined subflow only.
	if err := cc.DeleteEndpoint(sub.ID); err != nil {
		t.Fatal(err)
	}
	if e, _ := cev.waitType(EventSubClosed); e.Token != token || e.Local != joined.Local || e.Remote != joined.Remote {
		t.Errorf("sub_closed = %v; want the joined subflow %v -> %v", e, joined.Local, joined.Remote)
	}
	echo(t, conn)

	conn.Close()
	if e, _ := cev.waitType(EventClosed); e.Token != token {
		t.Errorf("closed = %v; want token %08x", e, token)
	}
	ln.Close()
	if listenerEvents {
		if e, _ := sev.waitType(EventListenerClosed); e.Local != listenAt {
			t.Errorf("listener_closed = %v; want local %v", e, listenAt)
		}
	}
}

func TestIntegrationRunCancel(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "cancel")
	ev, err := ListenEvents(nsConfig(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- ev.Run(ctx, newCollector()) }()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(waitTime):
		t.Fatal("Run still blocked after its context was cancelled")
	}

	// A deadline ends a wait with nothing to read the same way, and the
	// Events is still usable afterwards.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ev.Run(ctx, newCollector()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run with a deadline: %v, want context.DeadlineExceeded", err)
	}
}

// TestIntegrationEventsLost overflows a tiny receive buffer with the events
// of many short connections, then checks that the loss is reported and that
// events keep coming afterwards.
func TestIntegrationEventsLost(t *testing.T) {
	tb := newTestbed(t)
	cfg := *tb.clientCfg
	cfg.readBuffer = 1 // the kernel rounds it up to its minimum
	ev, err := ListenEvents(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()

	listenAt := netip.AddrPortFrom(serverA, serverPort)
	listenMPTCP(t, tb.server, listenAt)
	for range 40 {
		conn := dialMPTCP(t, tb.client, netip.AddrPortFrom(clientA, 0), listenAt)
		conn.Close()
	}

	c := newCollector()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ev.Run(ctx, c) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case lost := <-c.lost:
		if !errors.Is(lost, ErrEventsLost) {
			t.Fatalf("after an overflow: %v, want ErrEventsLost", lost)
		}
	case <-time.After(waitTime):
		t.Fatal("an overflow was not reported")
	}

	// Still running: a later connection's events arrive. The tiny buffer
	// may still drop some (the first 40 connections' last events trickle
	// in), so a new connection is opened each second until one is seen.
	deadline := time.After(waitTime)
	for {
		conn := dialMPTCP(t, tb.client, netip.AddrPortFrom(clientA, 0), listenAt)
		local := addrPort(conn.LocalAddr())
		next := time.After(time.Second)
	wait:
		for {
			select {
			case e := <-c.events:
				if e.Type == EventCreated && e.Local == local {
					return
				}
			case err := <-c.lost:
				if !errors.Is(err, ErrEventsLost) {
					t.Fatalf("after ErrEventsLost: %v", err)
				}
			case <-next:
				break wait
			case <-deadline:
				t.Fatal("no event after the overflow")
			}
		}
	}
}

// Only the event types asked for reach the reader: the kernel drops the
// others (the socket filter), and with DropServerSide also the server
// side's ESTABLISHED.
func TestIntegrationOnlyFilters(t *testing.T) {
	tb := newTestbed(t)
	listen := func(base *Config, only ...EventType) *collector {
		cfg := *base
		cfg.Only, cfg.DropServerSide = only, true
		ev, err := ListenEvents(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		c := newCollector()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ev.Run(ctx, c) }()
		t.Cleanup(func() { cancel(); <-done; ev.Close() })
		return c
	}
	closedOnly := listen(tb.clientCfg, EventClosed)
	client := listen(tb.clientCfg, EventEstablished, EventClosed)
	server := listen(tb.serverCfg, EventEstablished, EventClosed)

	listenAt := netip.AddrPortFrom(serverA, serverPort)
	_, accepted := listenMPTCP(t, tb.server, listenAt)
	conn := dialMPTCP(t, tb.client, netip.AddrPortFrom(clientA, 0), listenAt)
	acceptedConn(t, accepted)
	if e := client.next(t); e.Type != EventEstablished || e.ServerSide {
		t.Errorf("client's first event through the filter: %v, want established", e)
	}
	conn.Close()
	if e := closedOnly.next(t); e.Type != EventClosed {
		t.Errorf("first event through the closed-only filter: %v, want closed (created and established dropped)", e)
	}
	if e := client.next(t); e.Type != EventClosed {
		t.Errorf("client's second event through the filter: %v, want closed", e)
	}
	if e := server.next(t); e.Type != EventClosed {
		t.Errorf("server's first event through the filter: %v, want closed (its established dropped)", e)
	}
}
