package connview

import (
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
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
