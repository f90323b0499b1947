package connview

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
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
