package connview

import (
	"testing"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// BenchmarkConnectionLifecycle is what the view costs per short connection
// this host opens, as the event loop applies it: created, established,
// closed (make bench measures the daemon's whole CPU per connection).
func BenchmarkConnectionLifecycle(b *testing.B) {
	v := New()
	b.ReportAllocs()
	for i := range b.N {
		tok := uint32(i)
		for _, ev := range []netlinkmptcp.Event{created, established, closed} {
			ev.Token = tok
			v.apply(&ev, false)
		}
	}
}

// TestShortConnectionAllocatesLittle keeps a short connection's cost in the
// view down: its connection and one subflow, not a map per subflow table
// (which was most of the daemon's CPU per connection).
func TestShortConnectionAllocatesLittle(t *testing.T) {
	v := New()
	tok := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		tok++
		for _, ev := range []netlinkmptcp.Event{created, established, closed} {
			ev.Token = tok
			v.apply(&ev, false)
		}
	})
	if allocs > 5 {
		t.Errorf("a connection's created, established and closed events allocate %.1f times in the view, want at most 5", allocs)
	}
	if n, _ := v.Counts(); n != 0 {
		t.Errorf("the view holds %d connections after they all closed", n)
	}
}
