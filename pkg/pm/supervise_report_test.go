package pm

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/connview"
)

// summaries collects the engine's STATUS= lines.
type summaries struct {
	mu    sync.Mutex
	lines []string
}

func (s *summaries) add(l string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, l)
}

func (s *summaries) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lines) == 0 {
		return ""
	}
	return s.lines[len(s.lines)-1]
}

// Two connections whose joins from eth2 failed with the same cause: one
// log line for that cause and endpoint, naming the errno, and the STATUS=
// line counts both connections as missing a path.
func TestEngineReportsFailedJoins(t *testing.T) {
	k := newFakeKernel(clientNet())
	conns := &fakeConns{changed: make(chan struct{}, 1)}
	sum := &summaries{}
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, func(o *Options) {
		o.Connections = conns
		o.OnSummary = sum.add
	})
	now := h.clock.Now()
	eth1, eth2 := netip.MustParseAddrPort("192.0.2.2:40000"), netip.MustParseAddrPort("198.51.100.2:40001")
	server := netip.MustParseAddrPort("203.0.113.1:80")
	failed := func(token uint32, local netip.AddrPort) connview.Connection {
		return connview.Connection{Token: token, Local: local, Remote: server, Established: true, Since: now,
			Subflows:    []connview.Subflow{{Local: local, Remote: server, Initial: true}},
			FailedJoins: []connview.FailedJoin{{Local: eth2.Addr(), LocalID: 2, Errno: unix.EHOSTUNREACH, At: now.Add(time.Millisecond)}}}
	}
	conns.set(failed(1, eth1), failed(2, netip.AddrPortFrom(eth1.Addr(), 40002)))
	// The engine arms its look at the joins when it hears of the change,
	// which on a slow machine can come after one advance of the clock:
	// advance until the look has happened.
	for deadline := time.Now().Add(10 * time.Second); ; {
		h.clock.Advance(superviseDelay)
		st, err := h.e.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if missingConns(st.Missing) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("both connections never reported missing eth2: %+v", st.Missing)
		}
		time.Sleep(10 * time.Millisecond)
	}

	lines := h.logs.FilterMessage("joins failed").All()
	if len(lines) != 1 {
		t.Fatalf("%d \"joins failed\" lines for one cause on one endpoint, want 1", len(lines))
	}
	f := lines[0].ContextMap()
	if f["errno"] != "EHOSTUNREACH (no route to host)" || f["connections"] != int64(2) || f["iface"] != "eth2" {
		t.Errorf("joins failed line %v: want errno EHOSTUNREACH (no route to host), 2 connections, iface eth2", f)
	}
	h.settle()
	if s := sum.last(); !strings.HasSuffix(s, ", 2 connections missing a path") {
		t.Errorf("STATUS= %q does not count the 2 connections missing a path", s)
	}
}
