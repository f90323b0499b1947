package pm

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	mp "github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

type harness struct {
	t      *testing.T
	clock  *fakeClock
	k      *fakeKernel
	w      *fakeWatcher
	store  *memStore
	e      *Engine
	logs   *observer.ObservedLogs
	cancel context.CancelFunc
	done   chan error
}

func startEngine(t *testing.T, cfg *config.Config, k *fakeKernel, store *memStore, tweak func(*Options)) *harness {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	h := &harness{t: t, clock: newFakeClock(), k: k, w: newFakeWatcher(), store: store, logs: logs, done: make(chan error, 1)}
	o := Options{Config: cfg, Log: logging.NewLogger(core), MPTCP: k, Routing: k, Network: k, Watcher: h.w, Store: store,
		Backoff: Backoff{Initial: 10 * time.Second, Max: time.Minute}, Clock: h.clock}
	if tweak != nil {
		tweak(&o)
	}
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- e.Run(ctx) }()
	t.Cleanup(h.stop)
	select {
	case <-e.Ready():
	case err := <-h.done:
		t.Fatalf("engine stopped before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("engine not ready after 10s")
	}
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
}

// waitFor waits until cond holds on the fake kernel. It bounds a wait for
// something that must happen; it measures nothing.
func (h *harness) waitFor(what string, cond func(eps []mp.Endpoint, lim mp.Limits, log []string) bool) {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		eps, lim, log := h.k.snapshot()
		if cond(eps, lim, log) {
			return
		}
		select {
		case <-h.k.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s; endpoints %v, limits %v, writes:\n%s", what, eps, lim, strings.Join(log, "\n"))
		}
	}
}

// advanceUntil moves the engine's clock on by step until cond holds on the
// fake kernel: time passes only when a test says so. Between steps it lets
// the engine finish what it queued.
func (h *harness) advanceUntil(what string, step time.Duration, cond func(eps []mp.Endpoint, lim mp.Limits, log []string) bool) {
	h.t.Helper()
	for range 100 {
		h.settle()
		if cond(h.k.snapshot()) {
			return
		}
		h.clock.Advance(step)
		// Goroutines other than the engine's (the worker, the record's
		// saver) take what the timers started in their own time.
		time.Sleep(time.Millisecond)
	}
	for _, e := range h.logs.All() {
		h.t.Logf("LOG %s %v", e.Message, e.ContextMap())
	}
	h.t.Logf("store %+v", h.store.get())
	eps, lim, log := h.k.snapshot()
	h.t.Fatalf("%s did not happen as time passed; endpoints %v, limits %v, writes:\n%s", what, eps, lim, strings.Join(log, "\n"))
}

// settle waits until the engine has no kernel operation queued or running.
func (h *harness) settle() {
	h.t.Helper()
	h.waitStatus("no operation pending", func(st Status) bool { return st.Pending == 0 })
}

// waitStatus polls the engine's status until cond holds.
func (h *harness) waitStatus(what string, cond func(Status) bool) Status {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := h.e.Status(context.Background())
		if err != nil {
			h.t.Fatal(err)
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; status %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func addrsOf(eps []mp.Endpoint) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.Addr.String())
	}
	slices.Sort(out)
	return out
}

func hasAddrs(want ...string) func([]mp.Endpoint, mp.Limits, []string) bool {
	slices.Sort(want)
	return func(eps []mp.Endpoint, _ mp.Limits, _ []string) bool { return slices.Equal(addrsOf(eps), want) }
}

func clientNet() netstate.State { return clientNetBuilder().s }
