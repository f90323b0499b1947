package netlinkmptcp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"golang.org/x/sys/unix"
)

// Kernel tests: real netlink in fresh namespaces. They never run in
// parallel: the kernel's generic-netlink lock is host-wide.

func TestIntegrationEndpoints(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "ep")
	ns.IP("addr", "add", "192.0.2.11/32", "dev", "lo")
	cfg := nsConfig(t, ns)
	c := dial(t, cfg)
	// The laminar flag (6.18) is stored and kept by SET_FLAGS where the
	// kernel has it; elsewhere it is not asked for.
	laminar := Flags(0)
	if probe(t, cfg).Laminar {
		laminar = FlagLaminar
	}

	if eps, err := c.Endpoints(); err != nil || len(eps) != 0 {
		t.Fatalf("Endpoints() in a new namespace = %v, %v; want none", eps, err)
	}

	// Without an id: the kernel picks 1, and AddEndpoint finds it.
	auto := addEndpoint(t, c, Endpoint{Addr: netip.MustParseAddr("192.0.2.10"), Flags: FlagSubflow, IfIndex: 1})
	if want := (Endpoint{ID: 1, Addr: netip.MustParseAddr("192.0.2.10"), Flags: FlagSubflow, IfIndex: 1}); auto != want {
		t.Errorf("AddEndpoint without id = %+v, want %+v", auto, want)
	}
	// With an id, a port (the kernel opens a listener on it) and IPv6.
	withPort := addEndpoint(t, c, Endpoint{ID: 7, Addr: netip.MustParseAddr("192.0.2.11"), Port: 8443, Flags: FlagSignal})
	if want := (Endpoint{ID: 7, Addr: netip.MustParseAddr("192.0.2.11"), Port: 8443, Flags: FlagSignal}); withPort != want {
		t.Errorf("AddEndpoint with id and port = %+v, want %+v", withPort, want)
	}
	v6 := addEndpoint(t, c, Endpoint{ID: 200, Addr: netip.MustParseAddr("2001:db8::5"), Flags: FlagSubflow | FlagBackup | FlagFullmesh | laminar})
	if want := (Endpoint{ID: 200, Addr: netip.MustParseAddr("2001:db8::5"), Flags: FlagSubflow | FlagBackup | FlagFullmesh | laminar}); v6 != want {
		t.Errorf("AddEndpoint IPv6 = %+v, want %+v", v6, want)
	}

	got, err := c.Endpoint(7)
	if err != nil || got != withPort {
		t.Errorf("Endpoint(7) = %+v, %v; want %+v", got, err, withPort)
	}
	eps, err := c.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	if want := []Endpoint{auto, withPort, v6}; fmt.Sprint(eps) != fmt.Sprint(want) {
		t.Errorf("Endpoints() = %v, want %v", eps, want)
	}

	// SET_FLAGS changes backup and fullmesh only, and replaces both.
	if err := c.SetEndpointFlags(1, FlagSubflow|FlagBackup); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Endpoint(1); err != nil || got.Flags != FlagSubflow|FlagBackup {
		t.Errorf("after SetEndpointFlags(1, subflow,backup): %+v, %v", got, err)
	}
	if err := c.SetEndpointFlags(200, FlagSubflow); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Endpoint(200); err != nil || got.Flags != FlagSubflow|laminar {
		t.Errorf("after SetEndpointFlags(200, subflow): flags %v, %v; want %v", got.Flags, err, FlagSubflow|laminar)
	}

	if err := c.DeleteEndpoint(7); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Endpoint(7); !errors.Is(err, ErrNotFound) {
		t.Errorf("Endpoint(7) after delete: %v, want ErrNotFound", err)
	}
	if err := c.DeleteEndpoint(7); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteEndpoint(7) twice: %v, want ErrNotFound", err)
	}

	if err := c.FlushEndpoints(); err != nil {
		t.Fatal(err)
	}
	if eps, err := c.Endpoints(); err != nil || len(eps) != 0 {
		t.Errorf("Endpoints() after flush = %v, %v; want none", eps, err)
	}
	// The id counter restarts at 1 after a flush.
	if e := addEndpoint(t, c, Endpoint{Addr: netip.MustParseAddr("192.0.2.20"), Flags: FlagSubflow}); e.ID != 1 {
		t.Errorf("first id after flush = %d, want 1", e.ID)
	}
}

func TestIntegrationEndpointErrors(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "eperr")
	c := dial(t, nsConfig(t, ns))
	addEndpoint(t, c, Endpoint{ID: 3, Addr: netip.MustParseAddr("192.0.2.3"), Flags: FlagSubflow})

	tests := []struct {
		name  string
		err   error
		want  error
		errno unix.Errno
	}{
		{"same address", addErr(c, Endpoint{Addr: netip.MustParseAddr("192.0.2.3"), Flags: FlagSubflow}), ErrExists, unix.EEXIST},
		{"same id", addErr(c, Endpoint{ID: 3, Addr: netip.MustParseAddr("192.0.2.4"), Flags: FlagSubflow}), ErrExists, unix.EBUSY},
		{"get unknown id", getErr(c, 99), ErrNotFound, unix.EINVAL},
		{"delete unknown id", c.DeleteEndpoint(99), ErrNotFound, unix.EINVAL},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) || !errors.Is(tt.err, tt.errno) && !askedTheTable(tt.err) {
			t.Errorf("%s: %v; want %v and errno %v (or, where the kernel answers EINVAL for all refusals, what the table showed)", tt.name, tt.err, tt.want, tt.errno)
		}
		var e *Error
		if !errors.As(tt.err, &e) {
			t.Errorf("%s: %T is not an *Error", tt.name, tt.err)
		}
	}

	// Fill the table: 3 is there, 7 more make 8, the 9th is refused.
	for i := range MaxEndpoints - 1 {
		addEndpoint(t, c, Endpoint{Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)}), Flags: FlagSubflow})
	}
	err := addErr(c, Endpoint{Addr: netip.MustParseAddr("203.0.113.99"), Flags: FlagSubflow})
	if !errors.Is(err, ErrTableFull) || !strings.Contains(err.Error(), "203.0.113.99") {
		t.Errorf("9th endpoint: %v; want ErrTableFull naming the address", err)
	}
	if err := c.DeleteEndpoint(0); err == nil {
		t.Error("DeleteEndpoint(0) succeeded; want a refusal")
	}
	if eps, _ := c.Endpoints(); len(eps) != MaxEndpoints {
		t.Errorf("%d endpoints after the refusals, want %d", len(eps), MaxEndpoints)
	}
}

// askedTheTable says the kernel answered an ambiguous EINVAL (Linux 6.1) and
// the client found the reason in the endpoint table.
func askedTheTable(err error) bool {
	var e *Error
	return errors.As(err, &e) && errors.Is(e.Err, unix.EINVAL) && e.Kind != nil
}

func addErr(c *Client, e Endpoint) error {
	_, err := c.AddEndpoint(e)
	return err
}

func getErr(c *Client, id uint8) error {
	_, err := c.Endpoint(id)
	return err
}

func TestIntegrationLimits(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "limits")
	c := dial(t, nsConfig(t, ns))

	orig, err := c.Limits()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Limits{Subflows: 2, AddAddrAccepted: 0}); orig != want {
		t.Errorf("Limits() in a new namespace = %v, want the kernel's defaults %v", orig, want)
	}

	steps := []struct {
		update LimitsUpdate
		want   Limits
	}{
		{LimitsUpdate{Subflows: u32(5)}, Limits{Subflows: 5, AddAddrAccepted: 0}},
		{LimitsUpdate{AddAddrAccepted: u32(3)}, Limits{Subflows: 5, AddAddrAccepted: 3}},
		{LimitsUpdate{}, Limits{Subflows: 5, AddAddrAccepted: 3}},
		{LimitsUpdate{Subflows: u32(MaxLimit), AddAddrAccepted: u32(MaxLimit)}, Limits{Subflows: MaxLimit, AddAddrAccepted: MaxLimit}},
	}
	for _, s := range steps {
		if err := c.SetLimits(s.update); err != nil {
			t.Fatalf("SetLimits(%v): %v", s.update, err)
		}
		if got, err := c.Limits(); err != nil || got != s.want {
			t.Errorf("after SetLimits(%v): %v, %v; want %v", s.update, got, err, s.want)
		}
	}

	err = c.SetLimits(LimitsUpdate{Subflows: u32(MaxLimit + 1)})
	var e *Error
	if !errors.Is(err, unix.EINVAL) || !errors.As(err, &e) || e.Message == "" {
		t.Errorf("SetLimits(subflows 9): %v; want EINVAL with the kernel's text", err)
	}

	if err := c.SetLimits(LimitsUpdate{Subflows: &orig.Subflows, AddAddrAccepted: &orig.AddAddrAccepted}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Limits(); err != nil || got != orig {
		t.Errorf("restored limits = %v, %v; want %v", got, err, orig)
	}
}

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

// TestIntegrationUserspacePM drives a connection's subflows with the token
// commands, and checks that the kernel path manager refuses them.
func TestIntegrationUserspacePM(t *testing.T) {
	tb := newTestbed(t)
	cc, sc := dial(t, tb.clientCfg), dial(t, tb.serverCfg)
	setLimits(t, sc, 2, 2)
	kernel := probe(t, tb.clientCfg)
	cev := record(t, tb.clientCfg, "client")
	sev := record(t, tb.serverCfg, "server")
	listenAt := netip.AddrPortFrom(serverA, serverPort)
	listenMPTCP(t, tb.server, listenAt)

	// A kernel-PM connection: token commands fail with the kernel's reason.
	dialMPTCP(t, tb.client, netip.AddrPortFrom(clientA, 0), listenAt)
	kernelPM, _ := cev.waitType(EventCreated)
	err := cc.Announce(kernelPM.Token, Endpoint{ID: 9, Addr: clientB})
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, unix.EINVAL) || e.Message == "" || !strings.Contains(err.Error(), "kernel: ") {
		t.Errorf("Announce on a kernel-PM connection: %v; want EINVAL with the kernel's text", err)
	}

	// The userspace path manager applies to sockets created afterwards.
	tb.client.Sysctl("net.mptcp.pm_type", "1")
	conn := dialMPTCP(t, tb.client, netip.AddrPortFrom(clientA, 0), listenAt)
	local := addrPort(conn.LocalAddr())
	created, _ := cev.wait("created", func(e Event) bool { return e.Type == EventCreated && e.Local == local })
	token := created.Token

	sub := Endpoint{ID: 5, Addr: clientB, Flags: FlagSubflow, IfIndex: ifindexC2}
	if err := cc.CreateSubflow(token, sub, listenAt); err != nil {
		t.Fatal(err)
	}
	joined, _ := cev.wait("sub_established", func(e Event) bool { return e.Type == EventSubEstablished && e.Token == token })
	if joined.Local.Addr() != clientB || joined.LocalID != sub.ID || joined.Remote != listenAt {
		t.Errorf("sub_established after CreateSubflow = %v; want %v id %d -> %v", joined, clientB, sub.ID, listenAt)
	}
	// Kernels before 6.13 (6.1 among them) did not bind such a subflow to
	// the endpoint's device, and the event carries no interface; stable
	// kernels that got the fix (Debian's 6.12) carry the right one.
	switch {
	case joined.IfIndex == ifindexC2:
	case joined.IfIndex == 0 && !kernel.UserspaceSubflowIfIndex:
		t.Logf("sub_established without an interface: this kernel (%d.%d) does not bind userspace-PM subflows to IF_IDX", kernel.Major, kernel.Minor)
	default:
		t.Errorf("sub_established after CreateSubflow on ifindex %d; want %d", joined.IfIndex, ifindexC2)
	}

	prio := Endpoint{Addr: clientB, Port: joined.Local.Port(), ID: sub.ID, Flags: FlagBackup}
	if err := cc.SetSubflowFlags(token, prio, listenAt); err != nil {
		t.Fatal(err)
	}
	if e, _ := sev.wait("sub_priority", func(e Event) bool { return e.Type == EventSubPriority }); !e.Backup || e.Remote != joined.Local {
		t.Errorf("server sub_priority = %v; want backup from %v", e, joined.Local)
	}

	if err := cc.DestroySubflow(token, joined.Local, listenAt); err != nil {
		t.Fatal(err)
	}
	if e, _ := cev.wait("sub_closed", func(e Event) bool { return e.Type == EventSubClosed && e.Token == token }); e.Local != joined.Local {
		t.Errorf("sub_closed after DestroySubflow = %v; want local %v", e, joined.Local)
	}
	if err := cc.DestroySubflow(token, joined.Local, listenAt); !errors.Is(err, ErrNotFound) {
		t.Errorf("DestroySubflow of a closed subflow: %v; want ErrNotFound", err)
	}

	if err := cc.Announce(token, Endpoint{ID: 7, Addr: clientB}); err != nil {
		t.Fatal(err)
	}
	if e, _ := sev.wait("announced", func(e Event) bool { return e.Type == EventAnnounced }); e.RemoteID != 7 || e.Remote.Addr() != clientB {
		t.Errorf("server announced = %v; want %v id 7", e, clientB)
	}
	if err := cc.Remove(token, 7); err != nil {
		t.Fatal(err)
	}
	if e, _ := sev.wait("removed", func(e Event) bool { return e.Type == EventRemoved }); e.RemoteID != 7 {
		t.Errorf("server removed = %v; want id 7", e)
	}
	echo(t, conn)
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

// TestIntegrationPermission drops CAP_NET_ADMIN on one thread and checks the
// errors of a write command and of joining the event group.
func TestIntegrationPermission(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "perm")
	cfg := nsConfig(t, ns)
	errc := make(chan [2]error, 1)
	go func() {
		// The thread keeps its reduced capabilities and is never unlocked:
		// it exits with this goroutine.
		runtime.LockOSThread()
		if err := dropNetAdmin(); err != nil {
			errc <- [2]error{err, err}
			return
		}
		var errs [2]error
		if c, err := Dial(cfg); err != nil {
			errs[0] = err
		} else {
			_, errs[0] = c.AddEndpoint(Endpoint{Addr: netip.MustParseAddr("192.0.2.1")})
			c.Close()
		}
		if ev, err := ListenEvents(cfg); err != nil {
			errs[1] = err
		} else {
			ev.Close()
		}
		errc <- errs
	}()
	errs := <-errc
	if !errors.Is(errs[0], ErrPermission) {
		t.Errorf("AddEndpoint without CAP_NET_ADMIN: %v, want ErrPermission", errs[0])
	}
	if !errors.Is(errs[1], ErrPermission) || !strings.Contains(errs[1].Error(), "CAP_NET_ADMIN") {
		t.Errorf("ListenEvents without CAP_NET_ADMIN: %v, want ErrPermission naming CAP_NET_ADMIN", errs[1])
	}
}

// dropNetAdmin removes CAP_NET_ADMIN from the calling thread's effective set.
func dropNetAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

func TestIntegrationCheckEnabled(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "sysctl")
	check := func() error {
		var err error
		if doErr := ns.Do(func() error { err = CheckEnabled(); return nil }); doErr != nil {
			t.Fatal(doErr)
		}
		return err
	}
	if err := check(); err != nil {
		t.Errorf("CheckEnabled() in a new namespace: %v, want nil", err)
	}
	ns.Sysctl("net.mptcp.enabled", "0")
	if err := check(); !errors.Is(err, ErrDisabled) || !strings.Contains(err.Error(), "net.mptcp.enabled=1") {
		t.Errorf("CheckEnabled() with net.mptcp.enabled=0: %v, want ErrDisabled saying how to enable it", err)
	}
}

func TestIntegrationKernelFeatures(t *testing.T) {
	lab.Require(t)
	f, err := KernelFeatures()
	if err != nil {
		t.Fatal(err)
	}
	// Dial works on every kernel the features call eventful.
	ns := lab.New(t, "features")
	cfg := nsConfig(t, ns)
	dial(t, cfg)
	if f.Events {
		ev, err := ListenEvents(cfg)
		if err != nil {
			t.Fatalf("features say events, ListenEvents: %v", err)
		}
		ev.Close()
	}
}

// TestIntegrationProbeFeatures asks the kernel. On the kernels this project
// runs (Debian's 6.1 and 6.12, the host's) what is probed is what the
// version says; a difference is a backport or a broken probe, and either
// is worth a look.
func TestIntegrationProbeFeatures(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "probe")
	cfg := nsConfig(t, ns)
	got := probe(t, cfg)
	want := FeaturesFor(got.Major, got.Minor)
	if got != want {
		t.Errorf("probed features of Linux %d.%d:\n %+v\nwant, by version:\n %+v", got.Major, got.Minor, got, want)
	}
	n, err := mptcpInfoSize()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Linux %d.%d: struct mptcp_info is %d bytes; lacks %q", got.Major, got.Minor, n, got.Missing())
	// Probing took no endpoint and changed no limit.
	c := dial(t, cfg)
	if eps, err := c.Endpoints(); err != nil || len(eps) != 0 {
		t.Errorf("endpoints after probing: %v, %v; want none", eps, err)
	}
	if l, err := c.Limits(); err != nil || l != (Limits{Subflows: 2}) {
		t.Errorf("limits after probing: %v, %v; want the defaults", l, err)
	}
}

// TestIntegrationConcurrentUse shares one Client between goroutines: every
// reply must reach the goroutine that asked (run with -race).
func TestIntegrationConcurrentUse(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "concurrent")
	c := dial(t, nsConfig(t, ns))
	want := addEndpoint(t, c, Endpoint{ID: 5, Addr: netip.MustParseAddr("192.0.2.5"), Flags: FlagSubflow})
	setLimits(t, c, 3, 4)

	errc := make(chan error, 8)
	for range 8 {
		go func() {
			for range 50 {
				if l, err := c.Limits(); err != nil || l != (Limits{Subflows: 3, AddAddrAccepted: 4}) {
					errc <- fmt.Errorf("Limits() = %v, %v", l, err)
					return
				}
				if e, err := c.Endpoint(5); err != nil || e != want {
					errc <- fmt.Errorf("Endpoint(5) = %v, %v", e, err)
					return
				}
				if eps, err := c.Endpoints(); err != nil || len(eps) != 1 || eps[0] != want {
					errc <- fmt.Errorf("Endpoints() = %v, %v", eps, err)
					return
				}
			}
			errc <- nil
		}()
	}
	for range 8 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}
