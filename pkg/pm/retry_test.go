package pm

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestRetrier(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	r := newRetrier(Backoff{Initial: time.Second, Max: 4 * time.Second}, logging.NewLogger(core))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := addKey(netip.MustParseAddr("192.0.2.2"))
	if !r.ready(k, t0) {
		t.Fatal("a write that never failed is not ready")
	}
	// The retry waits double, up to the maximum.
	at := t0
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		r.failed(k, errors.New("no buffer space"), at)
		if r.ready(k, at.Add(wait-time.Millisecond)) || !r.ready(k, at.Add(wait)) {
			t.Errorf("failure %d: want the retry after %v", i+1, wait)
		}
		if got := r.next(); !got.Equal(at.Add(wait)) {
			t.Errorf("failure %d: next = %v, want %v", i+1, got, at.Add(wait))
		}
		at = at.Add(wait)
	}
	if n := logs.FilterMessage("kernel write failed, will retry").Len(); n != 1 {
		t.Errorf("one cause logged %d times at warning level, want once", n)
	}
	r.failed(k, errors.New("file exists"), at)
	if n := logs.FilterMessage("kernel write failed, will retry").Len(); n != 2 {
		t.Errorf("a new cause logged %d warnings in all, want 2", n)
	}
	if got := r.names(); !slices.Equal(got, []string{"add endpoint 192.0.2.2"}) {
		t.Errorf("names = %q", got)
	}

	// A reconcile that still wants the write keeps its schedule; one that
	// no longer does forgets it.
	r.ready(k, at)
	r.sweep()
	if len(r.entries) != 1 {
		t.Error("the schedule of a wanted write was forgotten")
	}
	r.sweep()
	if len(r.entries) != 0 || !r.next().IsZero() {
		t.Error("the schedule of a write nobody wants is kept")
	}

	r.failed(k, errors.New("boom"), at)
	r.succeeded(k)
	if len(r.entries) != 0 || logs.FilterMessage("kernel write succeeded after retrying").Len() != 1 {
		t.Error("a success did not end the schedule with one line")
	}
}
