package pm

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/connview"
	mp "github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// fakeConns is a connection view for join supervision.
type fakeConns struct {
	mu      sync.Mutex
	conns   []connview.Connection
	changed chan struct{}
	// rechecks counts Recheck calls; onRecheck, if set, is what the
	// kernel says (it runs on the engine's goroutine: it must not block).
	rechecks  int
	onRecheck func()
}

func (f *fakeConns) Recheck() {
	f.mu.Lock()
	f.rechecks++
	fn := f.onRecheck
	f.mu.Unlock()
	if fn != nil {
		fn()
	}
}

func (f *fakeConns) rechecked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rechecks
}

func (f *fakeConns) Clients() []connview.Connection {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.conns)
}

func (f *fakeConns) JoinsChanged() <-chan struct{} { return f.changed }

func (f *fakeConns) set(cs ...connview.Connection) {
	f.mu.Lock()
	f.conns = cs
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// The client's addresses on eth1 and eth2 and the server of the
// supervision tests.
var (
	eth1, eth2 = netip.MustParseAddrPort("192.0.2.2:40000"), netip.MustParseAddrPort("198.51.100.2:40001")
	server     = netip.MustParseAddrPort("203.0.113.1:80")
)

// startSupervisedEngine starts an engine that supervises the joins of the
// connections the returned fake holds.
func startSupervisedEngine(t *testing.T) (*fakeKernel, *harness, *fakeConns) {
	k := newFakeKernel(clientNet())
	conns := &fakeConns{changed: make(chan struct{}, 1)}
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, func(o *Options) { o.Connections = conns })
	return k, h, conns
}

// failedJoinOverEth2 is a connection over eth1 whose join over eth2 the
// kernel closed with errno just after now.
func failedJoinOverEth2(now time.Time, errno syscall.Errno) connview.Connection {
	return connview.Connection{Token: 1, Local: eth1, Remote: server, Established: true, Since: now,
		Subflows:    []connview.Subflow{{Local: eth1, Remote: server, Initial: true}},
		FailedJoins: []connview.FailedJoin{{Local: eth2.Addr(), LocalID: 2, Errno: errno, At: now.Add(time.Millisecond)}}}
}

// A join that failed gets its endpoint re-added (removed and added: the
// in-kernel path manager's only retry), but never while another connection
// has a working subflow over it.
func TestEngineRetriesFailedJoins(t *testing.T) {
	k, h, conns := startSupervisedEngine(t)
	now := h.clock.Now()
	failedConn := failedJoinOverEth2(now, unix.EHOSTUNREACH)
	conns.set(failedConn)
	h.advanceUntil("eth2's endpoint re-added", time.Second, func(_ []mp.Endpoint, _ mp.Limits, log []string) bool {
		return slices.Contains(log, "delete endpoint 198.51.100.2 id 2") && slices.ContainsFunc(log, func(l string) bool {
			return strings.HasPrefix(l, "add endpoint 198.51.100.2 id 3")
		})
	})
	st := h.waitStatus("the missing path reported", func(st Status) bool { return len(st.Missing) > 0 })
	if !strings.Contains(st.Missing[0].Reason, "EHOSTUNREACH") {
		t.Errorf("reason %q does not name the errno", st.Missing[0].Reason)
	}

	// Another connection now has a working subflow over eth2: the failing
	// one is reported, the endpoint left alone.
	working := connview.Connection{Token: 2, Local: eth1, Remote: server, Established: true, Since: now,
		Subflows: []connview.Subflow{{Local: eth1, Remote: server, Initial: true}, {Local: eth2, Remote: server, LocalID: 3}}}
	later := failedConn
	later.FailedJoins = []connview.FailedJoin{{Local: eth2.Addr(), LocalID: 3, Errno: unix.ECONNRESET, At: h.clock.Now().Add(time.Millisecond)}}
	_, _, log := k.snapshot()
	n := len(log)
	conns.set(later, working)
	for range 20 {
		h.clock.Advance(10 * time.Second)
		h.settle()
	}
	if _, _, log := k.snapshot(); slices.ContainsFunc(log[n:], func(l string) bool { return strings.HasPrefix(l, "delete endpoint 198.51.100.2") }) {
		t.Errorf("the endpoint was removed although a connection had a working subflow over it:\n%s", strings.Join(log[n:], "\n"))
	}
	if st := h.waitStatus("the failing connection reported", func(st Status) bool { return len(st.Missing) > 0 }); !strings.Contains(st.Missing[0].Reason, "not retried") {
		t.Errorf("reason %q does not say why it is not retried", st.Missing[0].Reason)
	}
	if conns.rechecked() == 0 {
		t.Error("the working subflow that spared the endpoint was never checked against the kernel")
	}
}

// A subflow the view holds but the kernel closed without an event (its
// connection no longer established, the program keeping the socket open)
// must not spare a failed join for ever: the engine has the view checked
// against the kernel, and retries once the subflow is gone.
func TestEngineRechecksTheSubflowThatSparesAnEndpoint(t *testing.T) {
	_, h, conns := startSupervisedEngine(t)
	now := h.clock.Now()
	failing := failedJoinOverEth2(now, unix.ECONNRESET)
	stale := connview.Connection{Token: 2, Local: eth1, Remote: server, Established: true, Since: now,
		Subflows: []connview.Subflow{{Local: eth1, Remote: server, Initial: true}, {Local: eth2, Remote: server, LocalID: 2}}}
	pruned := stale
	pruned.Subflows = stale.Subflows[:1]
	conns.mu.Lock()
	conns.onRecheck = func() { conns.set(failing, pruned) }
	conns.mu.Unlock()
	conns.set(failing, stale)
	h.advanceUntil("eth2's endpoint re-added once the kernel said the sparing subflow is gone", time.Second, func(_ []mp.Endpoint, _ mp.Limits, log []string) bool {
		return slices.Contains(log, "delete endpoint 198.51.100.2 id 2")
	})
	if n := conns.rechecked(); n != 1 {
		t.Errorf("%d rechecks, want 1", n)
	}
}
