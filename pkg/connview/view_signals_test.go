package connview

import (
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"golang.org/x/sys/unix"
)

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
