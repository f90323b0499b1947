package connview

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

// equateAddrs lets cmp compare netip values, which have unexported fields.
// equateAddrs compares addresses by value and leaves out when the view saw a
// connection established, which tests check on their own.
var equateAddrs = cmp.Options{cmpopts.EquateComparable(netip.AddrPort{}, netip.Addr{}), cmpopts.IgnoreFields(Connection{}, "Since")}

const token = 0x0a0b0c0d

var (
	clientAddr = netip.MustParseAddrPort("192.0.2.2:41000")
	serverAddr = netip.MustParseAddrPort("192.0.2.1:8080")
	joinAddr   = netip.MustParseAddrPort("198.51.100.2:45001")
	peerAddr   = netip.MustParseAddrPort("198.51.100.1:0")
)

// mapped is ap as an IPv6 socket reports an IPv4 address.
func mapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
}

// Events of one client-side connection.
var (
	created = netlinkmptcp.Event{Type: netlinkmptcp.EventCreated, Token: token, Family: netlinkmptcp.FamilyIPv4,
		Local: clientAddr, Remote: serverAddr}
	established = withType(created, netlinkmptcp.EventEstablished)
	closed      = netlinkmptcp.Event{Type: netlinkmptcp.EventClosed, Token: token}
	announced   = netlinkmptcp.Event{Type: netlinkmptcp.EventAnnounced, Token: token, Family: netlinkmptcp.FamilyIPv4,
		Remote: peerAddr, RemoteID: 3}
	removed = netlinkmptcp.Event{Type: netlinkmptcp.EventRemoved, Token: token, RemoteID: 3}
	joined  = netlinkmptcp.Event{Type: netlinkmptcp.EventSubEstablished, Token: token, Family: netlinkmptcp.FamilyIPv4,
		Local: joinAddr, Remote: serverAddr, LocalID: 2, IfIndex: 42}
	joinClosed = func() netlinkmptcp.Event {
		e := withType(joined, netlinkmptcp.EventSubClosed)
		e.ResetReason, e.ResetFlags, e.Error = 1, 1, syscall.ECONNRESET
		return e
	}()
	toBackup        = withBackup(withType(joined, netlinkmptcp.EventSubPriority), true)
	listenerCreated = netlinkmptcp.Event{Type: netlinkmptcp.EventListenerCreated, Family: netlinkmptcp.FamilyIPv4, Local: serverAddr}
	// serverEstablished is a connection this host accepted.
	serverEstablished = netlinkmptcp.Event{Type: netlinkmptcp.EventEstablished, Token: token, Family: netlinkmptcp.FamilyIPv4,
		Local: serverAddr, Remote: clientAddr, ServerSide: true}
)

func withType(e netlinkmptcp.Event, t netlinkmptcp.EventType) netlinkmptcp.Event {
	e.Type = t
	return e
}

func withBackup(e netlinkmptcp.Event, backup bool) netlinkmptcp.Event {
	e.Backup = backup
	return e
}

// What the view holds of that connection.
var (
	initialSubflow = Subflow{Local: clientAddr, Remote: serverAddr, Initial: true}
	joinedSubflow  = Subflow{Local: joinAddr, Remote: serverAddr, LocalID: 2, IfIndex: 42}
	createdConn    = Connection{Token: token, Local: clientAddr, Remote: serverAddr, Subflows: []Subflow{initialSubflow}}
)

// testTime is the view's clock in tests.
var testTime = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func conn(f func(c *Connection)) Connection {
	c := createdConn
	c.Subflows = append([]Subflow(nil), createdConn.Subflows...)
	f(&c)
	return c
}

func TestApply(t *testing.T) {
	tests := []struct {
		name   string
		before []netlinkmptcp.Event
		// complete: the view was read from the kernel (with nothing)
		// before.
		complete bool
		event    netlinkmptcp.Event
		want     []Connection
		change   string
		notOK    bool
	}{
		{
			name:   "created",
			event:  created,
			want:   []Connection{createdConn},
			change: "connection 0a0b0c0d created: 192.0.2.2:41000 -> 192.0.2.1:8080, client side",
		},
		{
			name: "created, IPv4-mapped",
			event: netlinkmptcp.Event{Type: netlinkmptcp.EventCreated, Token: token, Family: netlinkmptcp.FamilyIPv6,
				Local: mapped(clientAddr), Remote: mapped(serverAddr)},
			want:   []Connection{createdConn},
			change: "connection 0a0b0c0d created: 192.0.2.2:41000 -> 192.0.2.1:8080, client side",
		},
		{
			name:   "established on the server: not followed",
			event:  serverEstablished,
			change: "ignored established token 0a0b0c0d local 192.0.2.1:8080 remote 192.0.2.2:41000 server-side: the view does not follow connections this host accepted",
			notOK:  true,
		},
		{
			name:     "joined on a connection a complete view does not have: the server side's",
			complete: true,
			event:    joined,
			change:   "ignored sub_established token 0a0b0c0d local 198.51.100.2:45001 remote 192.0.2.1:8080 ids 2/0 ifindex 42: connection 0a0b0c0d is not in the view, which has every connection this host opened",
			notOK:    true,
		},
		{
			name:     "announced on a connection a complete view does not have",
			complete: true,
			event:    announced,
			change:   "ignored announced token 0a0b0c0d remote 198.51.100.1:0 ids 0/3: connection 0a0b0c0d is not in the view, which has every connection this host opened",
			notOK:    true,
		},
		{
			name:   "established",
			before: []netlinkmptcp.Event{created},
			event:  established,
			want:   []Connection{conn(func(c *Connection) { c.Established = true })},
			change: "connection 0a0b0c0d established: 192.0.2.2:41000 -> 192.0.2.1:8080, client side",
		},
		{
			name:   "established without created",
			event:  established,
			want:   []Connection{conn(func(c *Connection) { c.Established = true })},
			change: "connection 0a0b0c0d established: 192.0.2.2:41000 -> 192.0.2.1:8080, client side (connection 0a0b0c0d was not in the view: added)",
		},
		{
			name:   "closed",
			before: []netlinkmptcp.Event{created, established, joined},
			event:  closed,
			change: "connection 0a0b0c0d closed (192.0.2.2:41000 -> 192.0.2.1:8080, 2 subflows)",
		},
		{
			name:   "closed unknown",
			event:  closed,
			change: "connection 0a0b0c0d closed; it was not in the view",
			notOK:  true,
		},
		{
			name:   "announced",
			before: []netlinkmptcp.Event{created},
			event:  announced,
			want:   []Connection{conn(func(c *Connection) { c.PeerAddrs = []PeerAddr{{ID: 3, Addr: peerAddr}} })},
			change: "peer of connection 0a0b0c0d announced 198.51.100.1 as id 3",
		},
		{
			name:   "announced with a port, replacing the same id",
			before: []netlinkmptcp.Event{created, announced},
			event: func() netlinkmptcp.Event {
				e := announced
				e.Remote = netip.MustParseAddrPort("198.51.100.9:8443")
				return e
			}(),
			want: []Connection{conn(func(c *Connection) {
				c.PeerAddrs = []PeerAddr{{ID: 3, Addr: netip.MustParseAddrPort("198.51.100.9:8443")}}
			})},
			change: "peer of connection 0a0b0c0d announced 198.51.100.9:8443 as id 3",
		},
		{
			name:   "removed",
			before: []netlinkmptcp.Event{created, announced},
			event:  removed,
			want:   []Connection{createdConn},
			change: "peer of connection 0a0b0c0d withdrew address id 3 (198.51.100.1)",
		},
		{
			name:   "removed an id the view does not have",
			before: []netlinkmptcp.Event{created},
			event:  removed,
			want:   []Connection{createdConn},
			change: "peer of connection 0a0b0c0d withdrew address id 3, which the view did not have",
			notOK:  true,
		},
		{
			name:   "announced on an unknown connection",
			event:  announced,
			want:   []Connection{{Token: token, Partial: true, Established: true, PeerAddrs: []PeerAddr{{ID: 3, Addr: peerAddr}}}},
			change: "peer of connection 0a0b0c0d announced 198.51.100.1 as id 3 (connection 0a0b0c0d was not in the view: added)",
		},
		{
			name:   "removed on an unknown connection",
			event:  removed,
			want:   []Connection{{Token: token, Partial: true, Established: true}},
			change: "peer of connection 0a0b0c0d withdrew address id 3 (connection 0a0b0c0d was not in the view: added)",
		},
		{
			name:   "sub_established",
			before: []netlinkmptcp.Event{created, established},
			event:  joined,
			want: []Connection{conn(func(c *Connection) {
				c.Established = true
				c.Subflows = append(c.Subflows, joinedSubflow)
			})},
			change: "subflow 198.51.100.2:45001 -> 192.0.2.1:8080 (ids 2/0, ifindex 42) joined connection 0a0b0c0d",
		},
		{
			name:   "sub_established with a socket error",
			before: []netlinkmptcp.Event{created},
			event: func() netlinkmptcp.Event {
				e := joined
				e.Error = syscall.ETIMEDOUT
				return e
			}(),
			want:   []Connection{conn(func(c *Connection) { c.Subflows = append(c.Subflows, joinedSubflow) })},
			change: `subflow 198.51.100.2:45001 -> 192.0.2.1:8080 (ids 2/0, ifindex 42) joined connection 0a0b0c0d, socket error "connection timed out"`,
		},
		{
			name:  "sub_established on an unknown connection",
			event: joined,
			want:  []Connection{{Token: token, Partial: true, Established: true, Subflows: []Subflow{joinedSubflow}}},
			change: "subflow 198.51.100.2:45001 -> 192.0.2.1:8080 (ids 2/0, ifindex 42) joined connection 0a0b0c0d " +
				"(connection 0a0b0c0d was not in the view: added)",
		},
		{
			name:   "sub_closed with a reset",
			before: []netlinkmptcp.Event{created, joined},
			event:  joinClosed,
			// The failure is kept for join supervision.
			want: []Connection{conn(func(c *Connection) {
				c.FailedJoins = []FailedJoin{{Local: joinAddr.Addr(), LocalID: 2, Errno: syscall.ECONNRESET, At: testTime}}
			})},
			change: "subflow 198.51.100.2:45001 -> 192.0.2.1:8080 (ids 2/0, ifindex 42) of connection 0a0b0c0d closed: " +
				`reset, reason 1 (MPTCP-specific error), transient, socket error "connection reset by peer"`,
		},
		{
			name:   "sub_closed of the initial subflow, IPv4-mapped",
			before: []netlinkmptcp.Event{created, joined},
			event: netlinkmptcp.Event{Type: netlinkmptcp.EventSubClosed, Token: token, Family: netlinkmptcp.FamilyIPv6,
				Local: mapped(clientAddr), Remote: mapped(serverAddr)},
			want:   []Connection{conn(func(c *Connection) { c.Subflows = []Subflow{joinedSubflow} })},
			change: "subflow 192.0.2.2:41000 -> 192.0.2.1:8080 (ids 0/0) of connection 0a0b0c0d closed",
		},
		{
			name:   "sub_closed of a subflow the view does not have",
			before: []netlinkmptcp.Event{created},
			event:  withType(joined, netlinkmptcp.EventSubClosed),
			want:   []Connection{createdConn},
			change: "subflow 198.51.100.2:45001 -> 192.0.2.1:8080 (ids 2/0, ifindex 42) of connection 0a0b0c0d closed; it was not in the view",
			notOK:  true,
		},
		{
			name:   "sub_closed on an unknown connection",
			event:  withType(joined, netlinkmptcp.EventSubClosed),
			want:   []Connection{{Token: token, Partial: true, Established: true}},
			change: "subflow 198.51.100.2:45001 -> 192.0.2.1:8080 (ids 2/0, ifindex 42) of connection 0a0b0c0d closed (connection 0a0b0c0d was not in the view: added)",
		},
		{
			name:   "sub_priority to backup",
			before: []netlinkmptcp.Event{created, joined},
			event:  toBackup,
			want: []Connection{conn(func(c *Connection) {
				sf := joinedSubflow
				sf.Backup = true
				c.Subflows = append(c.Subflows, sf)
			})},
			change: "subflow 198.51.100.2:45001 -> 192.0.2.1:8080 (ids 2/0, ifindex 42, backup) of connection 0a0b0c0d is now a backup",
		},
		{
			name:   "sub_priority back to normal",
			before: []netlinkmptcp.Event{created, joined, toBackup},
			event:  withBackup(toBackup, false),
			want:   []Connection{conn(func(c *Connection) { c.Subflows = append(c.Subflows, joinedSubflow) })},
			change: "subflow 198.51.100.2:45001 -> 192.0.2.1:8080 (ids 2/0, ifindex 42) of connection 0a0b0c0d is no longer a backup",
		},
		{
			name:   "sub_priority of the initial subflow keeps it initial",
			before: []netlinkmptcp.Event{created},
			event: netlinkmptcp.Event{Type: netlinkmptcp.EventSubPriority, Token: token, Family: netlinkmptcp.FamilyIPv4,
				Local: clientAddr, Remote: serverAddr, Backup: true},
			want: []Connection{conn(func(c *Connection) {
				c.Subflows = []Subflow{{Local: clientAddr, Remote: serverAddr, Initial: true, Backup: true}}
			})},
			change: "subflow 192.0.2.2:41000 -> 192.0.2.1:8080 (ids 0/0, backup) of connection 0a0b0c0d is now a backup",
		},
		{
			name:  "sub_priority on an unknown connection",
			event: toBackup,
			want: []Connection{{Token: token, Partial: true, Established: true, Subflows: []Subflow{func() Subflow {
				sf := joinedSubflow
				sf.Backup = true
				return sf
			}()}}},
			change: "subflow 198.51.100.2:45001 -> 192.0.2.1:8080 (ids 2/0, ifindex 42, backup) joined connection 0a0b0c0d (connection 0a0b0c0d was not in the view: added)",
		},
		{
			name:   "listener created: not followed",
			event:  listenerCreated,
			change: "ignored listener_created local 192.0.2.1:8080: the view does not follow it",
			notOK:  true,
		},
		{
			name:   "unknown event",
			before: []netlinkmptcp.Event{created},
			event:  netlinkmptcp.Event{Type: 99, Token: token},
			want:   []Connection{createdConn},
			change: "ignored event(99) token 0a0b0c0d: the view does not follow it",
			notOK:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := New()
			v.now = func() time.Time { return testTime }
			if tt.complete {
				v.Rebuild(nil)
			}
			for _, e := range tt.before {
				if change, ok := v.Apply(e); !ok {
					t.Fatalf("setup: Apply(%v) changed nothing: %s", e, change)
				}
			}
			change, ok := v.Apply(tt.event)
			if change != tt.change || ok == tt.notOK {
				t.Errorf("Apply(%v) = %q, %t\nwant %q, %t", tt.event, change, ok, tt.change, !tt.notOK)
			}
			s := v.Snapshot()
			if diff := cmp.Diff(tt.want, s.Connections, equateAddrs, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("connections (-want +got):\n%s", diff)
			}
			if want := uint64(len(tt.before) + 1); s.Events != want {
				t.Errorf("Events = %d, want %d", s.Events, want)
			}
		})
	}
}

// TestSnapshotIsolation: a snapshot is a copy; changing it changes neither
// the view nor later snapshots.
func TestSnapshotIsolation(t *testing.T) {
	v := New()
	for _, e := range []netlinkmptcp.Event{created, joined, announced} {
		v.Apply(e)
	}
	s := v.Snapshot()
	want := v.Snapshot()
	s.Connections[0].Subflows[0].Backup = true
	s.Connections[0].Subflows = append(s.Connections[0].Subflows[:1], Subflow{LocalID: 9})
	s.Connections[0].PeerAddrs[0].ID = 9
	s.Connections[0].Token = 1
	s.Connections = append(s.Connections, Connection{Token: 2})
	if diff := cmp.Diff(want, v.Snapshot(), equateAddrs); diff != "" {
		t.Errorf("changing a snapshot changed the view (-before +after):\n%s", diff)
	}
}

func TestRebuild(t *testing.T) {
	v := New()
	if s := v.Snapshot(); s.Complete || s.IncompleteReason != notReadYet {
		t.Errorf("new view: complete %t (%q), want incomplete until read from the kernel", s.Complete, s.IncompleteReason)
	}
	for _, e := range []netlinkmptcp.Event{created, joined, listenerCreated} {
		v.Apply(e)
	}
	v.MarkIncomplete("events lost")
	if s := v.Snapshot(); s.Complete || s.IncompleteReason != "events lost" || s.Losses != 1 {
		t.Errorf("after MarkIncomplete: complete %t, reason %q, losses %d", s.Complete, s.IncompleteReason, s.Losses)
	}

	server := netip.MustParseAddrPort("[2001:db8:1::1]:8080")
	client := netip.MustParseAddrPort("[2001:db8:1::2]:41001")
	v.Rebuild([]sockdiag.Connection{
		{Token: 7, Local: mapped(serverAddr), Remote: mapped(clientAddr), State: sockdiag.StateEstablished, ServerSide: true,
			Subflows: []sockdiag.Subflow{
				{Local: mapped(serverAddr), Remote: mapped(joinAddr), State: sockdiag.StateEstablished, RemoteID: 2, Backup: true},
				{Local: mapped(serverAddr), Remote: mapped(clientAddr), State: sockdiag.StateEstablished, Initial: true},
			}},
		{Token: 8, Local: server, Remote: client, State: sockdiag.StateSynRecv},
		{Token: 9, Local: clientAddr, Remote: serverAddr, State: sockdiag.StateEstablished, Fallback: true},
		{Token: 10, Local: server, Remote: client, State: sockdiag.StateFinWait1},
	})
	s := v.Snapshot()
	// The server side's connection 7 is not followed; 8 and 10 have no
	// initial subflow left to say which side they are.
	want := Snapshot{
		Connections: []Connection{
			{Token: 8, Local: server, Remote: client},
			{Token: 10, Local: server, Remote: client, Established: true},
		},
		Complete: true,
		Events:   3, Losses: 1, Rebuilds: 1,
	}
	if diff := cmp.Diff(want, s, equateAddrs, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("after Rebuild (-want +got):\n%s", diff)
	}
	// Events go on from the rebuilt view.
	if change, ok := v.Apply(netlinkmptcp.Event{Type: netlinkmptcp.EventClosed, Token: 8}); !ok || !strings.Contains(change, "closed") {
		t.Errorf("closing a rebuilt connection: %q, %t", change, ok)
	}
}

// TestConcurrentUse applies events while others read snapshots; run with
// -race it fails if the view is not safe for that.
func TestConcurrentUse(t *testing.T) {
	v := New()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				s := v.Snapshot()
				for _, c := range s.Connections {
					_ = len(c.Subflows) + len(c.PeerAddrs)
				}
			}
		}()
	}
	for i := range uint32(200) {
		for _, e := range []netlinkmptcp.Event{created, joined, announced, closed} {
			e.Token = i
			v.Apply(e)
		}
		if i%50 == 0 {
			v.MarkIncomplete("test")
			v.Rebuild(nil)
		}
	}
	wg.Wait()
	if s := v.Snapshot(); len(s.Connections) != 0 || s.Events != 800 {
		t.Errorf("after opening and closing 200 connections: %d connections, %d events", len(s.Connections), s.Events)
	}
}

func TestCountsMatchSnapshot(t *testing.T) {
	v := New()
	if c, s := v.Counts(); c != 0 || s != 0 {
		t.Errorf("empty view: %d connections, %d subflows", c, s)
	}
	for _, e := range []netlinkmptcp.Event{created, joined, announced} {
		v.Apply(e)
	}
	snap := v.Snapshot()
	subflows := 0
	for _, c := range snap.Connections {
		subflows += len(c.Subflows)
	}
	if c, s := v.Counts(); c != len(snap.Connections) || s != subflows || s != 2 {
		t.Errorf("Counts = %d, %d; snapshot has %d connections, %d subflows (want 2 subflows)", c, s, len(snap.Connections), subflows)
	}
}

func TestChangedIsSignalledAndCoalesced(t *testing.T) {
	v := New()
	select {
	case <-v.Changed():
		t.Fatal("a new view signalled a change")
	default:
	}
	v.Apply(created)
	v.Apply(joined)
	select {
	case <-v.Changed():
	default:
		t.Fatal("no change signalled after events")
	}
	select {
	case <-v.Changed():
		t.Fatal("two events signalled twice; want one coalesced signal")
	default:
	}
	v.Rebuild(nil)
	select {
	case <-v.Changed():
	default:
		t.Fatal("no change signalled after a rebuild")
	}
}

func TestApplyWithoutDescriptionUpdatesTheSame(t *testing.T) {
	events := []netlinkmptcp.Event{created, established, joined, announced}
	described, quiet := New(), New()
	for _, e := range events {
		if change, ok := described.Apply(e); !ok || change == "" {
			t.Fatalf("Apply(%v) = %q, %t", e, change, ok)
		}
		if change, ok := quiet.apply(&e, false); !ok || change != "" {
			t.Errorf("apply(%v, false) = %q, %t; want no text, changed", e, change, ok)
		}
	}
	if diff := cmp.Diff(described.Snapshot(), quiet.Snapshot(), equateAddrs); diff != "" {
		t.Errorf("the view differs when changes are not described (-described +quiet):\n%s", diff)
	}
}

// Join supervision reads the established client-side connections with
// what their joins did: a failed join is kept until a subflow from that
// address is established, and each such change is signalled.
func TestClientsAndFailedJoins(t *testing.T) {
	v := New()
	v.now = func() time.Time { return testTime }
	server := serverEstablished
	server.Token = 99
	for _, e := range []netlinkmptcp.Event{created, established, server} {
		v.Apply(e)
	}
	select {
	case <-v.JoinsChanged():
	default:
		t.Fatal("an established client connection was not signalled")
	}
	// Until the supervisor looks again, changes are not signalled again.
	v.Apply(joined)
	select {
	case <-v.JoinsChanged():
		t.Fatal("a change was signalled twice before Clients was called")
	default:
	}
	v.Clients()
	v.Apply(joinClosed)
	select {
	case <-v.JoinsChanged():
	default:
		t.Fatal("a failed join after Clients was not signalled")
	}
	cs := v.Clients()
	if len(cs) != 1 || cs[0].Token != token || !cs[0].Since.Equal(testTime) {
		t.Fatalf("clients = %+v, want the one client-side connection, established at the test time", cs)
	}
	if want := []FailedJoin{{Local: joinAddr.Addr(), LocalID: 2, Errno: syscall.ECONNRESET, At: testTime}}; !slices.Equal(cs[0].FailedJoins, want) {
		t.Errorf("failed joins = %v, want %v", cs[0].FailedJoins, want)
	}
	if len(cs[0].Subflows) != 1 {
		t.Errorf("subflows after the join closed: %+v, want the initial one", cs[0].Subflows)
	}
	v.Apply(joined)
	if cs := v.Clients(); len(cs[0].FailedJoins) != 0 || len(cs[0].Subflows) != 2 {
		t.Errorf("after the join succeeded: %+v", cs[0])
	}
}

// SnapshotWith lists what the socket diagnostics list, with what only
// events tell of the connections the view follows.
func TestSnapshotWith(t *testing.T) {
	v := New()
	v.now = func() time.Time { return testTime }
	v.Rebuild(nil)
	for _, e := range []netlinkmptcp.Event{established, announced, joined, joinClosed} {
		v.Apply(e)
	}
	// A connection the view has and the kernel no longer lists: gone.
	gone := established
	gone.Token = 5
	v.Apply(gone)

	backupJoin := sockdiag.Subflow{Local: joinAddr, Remote: serverAddr, State: sockdiag.StateEstablished, LocalID: 2, IfIndex: 42, Backup: true}
	diag := []sockdiag.Connection{
		{Token: 7, Local: mapped(serverAddr), Remote: mapped(clientAddr), State: sockdiag.StateEstablished, ServerSide: true,
			Subflows: []sockdiag.Subflow{{Local: mapped(serverAddr), Remote: mapped(clientAddr), State: sockdiag.StateEstablished, Initial: true}}},
		{Token: 9, Local: clientAddr, Remote: serverAddr, State: sockdiag.StateEstablished, Fallback: true},
		// The kernel's subflows are the current ones: the join came back,
		// as a backup.
		{Token: token, Local: clientAddr, Remote: serverAddr, State: sockdiag.StateEstablished,
			Subflows: []sockdiag.Subflow{{Local: clientAddr, Remote: serverAddr, State: sockdiag.StateEstablished, Initial: true}, backupJoin}},
	}
	listeners := []netip.AddrPort{netip.MustParseAddrPort("[::]:8080"), serverAddr}
	got := v.SnapshotWith(diag, listeners)

	followed := conn(func(c *Connection) {
		c.Established, c.Since = true, testTime
		c.PeerAddrs = []PeerAddr{{ID: 3, Addr: peerAddr}}
		c.FailedJoins = []FailedJoin{{Local: joinAddr.Addr(), LocalID: 2, Errno: syscall.ECONNRESET, At: testTime}}
		sf := joinedSubflow
		sf.Backup = true
		c.Subflows = append(c.Subflows, sf)
	})
	want := Snapshot{
		Connections: []Connection{
			{Token: 7, Local: serverAddr, Remote: clientAddr, ServerSide: true, Established: true,
				Subflows: []Subflow{{Local: serverAddr, Remote: clientAddr, Initial: true}}},
			followed,
		},
		Listeners: []netip.AddrPort{serverAddr, netip.MustParseAddrPort("[::]:8080")},
		Complete:  true,
		Events:    5, Rebuilds: 1,
	}
	opts := cmp.Options{cmpopts.EquateComparable(netip.AddrPort{}, netip.Addr{}), cmpopts.EquateEmpty()}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("SnapshotWith (-want +got):\n%s", diff)
	}
	if s := v.Snapshot(); len(s.Connections) != 2 {
		t.Errorf("SnapshotWith changed the view: %+v", s.Connections)
	}
}

type joinLog []string

func (j *joinLog) JoinEstablished(local netip.Addr, ifindex int) {
	*j = append(*j, fmt.Sprintf("established %s %d", local, ifindex))
}

func (j *joinLog) JoinFailed(local netip.Addr, ifindex int, errno syscall.Errno) {
	*j = append(*j, fmt.Sprintf("failed %s %d %s", local, ifindex, unix.ErrnoName(errno)))
}

// TestJoinObserver: a join is reported once when it is established, a join
// that closes with an error before it was as failed, and a working subflow
// that breaks, or the joins of a connection this host accepted, not at all.
func TestJoinObserver(t *testing.T) {
	v := New()
	v.Rebuild(nil)
	var log joinLog
	v.ObserveJoins(&log)
	failedJoin := withType(joined, netlinkmptcp.EventSubClosed)
	failedJoin.Error = syscall.EHOSTUNREACH
	serverJoin := joined
	serverJoin.Token = token + 1
	for _, ev := range []netlinkmptcp.Event{created, established, failedJoin, joined, toBackup, joinClosed, serverEstablished, serverJoin} {
		v.Apply(ev)
	}
	want := joinLog{"failed 198.51.100.2 42 EHOSTUNREACH", "established 198.51.100.2 42"}
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("joins heard (-want +got):\n%s", diff)
	}
}
