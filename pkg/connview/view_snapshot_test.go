package connview

import (
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

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
