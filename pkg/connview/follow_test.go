package connview

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

// received is one answer of a fakeSource.
type received struct {
	events []netlinkmptcp.Event
	err    error
}

// fakeSource plays its script into Run's handler: lost events are reported
// to the handler, other errors end Run as a failed read does. When the
// script is used up it closes drained and blocks until the context is done.
type fakeSource struct {
	script  []received
	drained chan struct{}
}

func newFakeSource(script ...received) *fakeSource {
	return &fakeSource{script: script, drained: make(chan struct{})}
}

func (s *fakeSource) Run(ctx context.Context, h netlinkmptcp.EventHandler) error {
	for len(s.script) > 0 {
		r := s.script[0]
		s.script = s.script[1:]
		switch {
		case errors.Is(r.err, netlinkmptcp.ErrEventsLost):
			h.Lost(r.err)
		case r.err != nil:
			return r.err
		default:
			h.Events(r.events)
		}
	}
	select {
	case <-s.drained:
	default:
		close(s.drained)
	}
	<-ctx.Done()
	return ctx.Err()
}

// fakeRebuild answers the rebuilds in order and counts them.
type fakeRebuild struct {
	mu      sync.Mutex
	answers []rebuilt
	calls   int
}

type rebuilt struct {
	conns []sockdiag.Connection
	err   error
}

func (r *fakeRebuild) rebuild() ([]sockdiag.Connection, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if len(r.answers) == 0 {
		return nil, errors.New("unexpected rebuild")
	}
	a := r.answers[0]
	r.answers = r.answers[1:]
	return a.conns, a.err
}

// follow runs Follow until src's script is used up and returns the view
// and the logs.
func follow(t *testing.T, src *fakeSource, rb *fakeRebuild) (*View, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	v := New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, src, rb.rebuild, v, logging.NewLogger(core))
	}()
	select {
	case <-src.drained:
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not receive every scripted event")
	}
	cancel()
	<-done
	return v, logs
}

// lostEvents is the error netlinkmptcp.Events reports on overflow.
var lostEvents = &netlinkmptcp.Error{Op: "receive events", Err: unix.ENOBUFS}

// event numbers events of connection tok.
func connEvent(typ netlinkmptcp.EventType, tok uint32) netlinkmptcp.Event {
	e := created
	e.Type, e.Token = typ, tok
	return e
}

var diagConn = sockdiag.Connection{Token: 0xc, Local: clientAddr, Remote: serverAddr, State: sockdiag.StateEstablished,
	Subflows: []sockdiag.Subflow{
		{Local: clientAddr, Remote: serverAddr, Initial: true},
		{Local: joinAddr, Remote: serverAddr, LocalID: 2, IfIndex: 42},
	}}

func TestFollowRebuildsAfterLostEvents(t *testing.T) {
	if !errors.Is(lostEvents, netlinkmptcp.ErrEventsLost) {
		t.Fatal("the fake overflow error does not match ErrEventsLost")
	}
	joinA := joined
	joinA.Token = 0xa
	src := newFakeSource(
		received{events: []netlinkmptcp.Event{connEvent(netlinkmptcp.EventCreated, 0xa), joinA}},
		received{err: lostEvents},
		received{events: []netlinkmptcp.Event{connEvent(netlinkmptcp.EventCreated, 0xb)}},
	)
	rb := &fakeRebuild{answers: []rebuilt{{}, {conns: []sockdiag.Connection{diagConn}}}}
	v, logs := follow(t, src, rb)

	s := v.Snapshot()
	// 0xa was replaced by the rebuild, which found 0xc; 0xb came after.
	if got := tokensOf(s); fmt.Sprint(got) != "[11 12]" || !s.Complete || s.Rebuilds != 2 || s.Losses != 1 || s.Events != 3 {
		t.Errorf("view: tokens %v, complete %t (%q), rebuilds %d, losses %d, events %d; want [11 12], complete, 2, 1, 3",
			got, s.Complete, s.IncompleteReason, s.Rebuilds, s.Losses, s.Events)
	}
	if c := s.Connections[1]; len(c.Subflows) != 2 || c.Subflows[1].Local != joinAddr {
		t.Errorf("rebuilt connection %+v, want both subflows of the dump", c)
	}
	if n := logs.FilterLevelExact(zap.InfoLevel).FilterMessage("rebuilt the MPTCP connection view after lost events").Len(); n != 1 {
		t.Errorf("%d info lines about the rebuild, want 1: %v", n, messages(logs))
	}
	if n := logs.FilterLevelExact(zap.WarnLevel).Len(); n != 0 {
		t.Errorf("warnings: %v", messages(logs.FilterLevelExact(zap.WarnLevel)))
	}

	// Every event is logged at debug with its fields.
	changes := logs.FilterLevelExact(zap.DebugLevel).FilterFieldKey("event").All()
	if len(changes) != 3 {
		t.Fatalf("%d debug lines for 3 events: %v", len(changes), messages(logs))
	}
	join := changes[1]
	if join.Message != "subflow 198.51.100.2:45001 -> 192.0.2.1:8080 (ids 2/0, ifindex 42) joined connection 0000000a" {
		t.Errorf("debug line %q", join.Message)
	}
	want := map[string]any{
		"event": "sub_established", "changed": true, "token": "0000000a", logging.FieldAddr: "198.51.100.2",
		"remote": "192.0.2.1:8080", logging.FieldEndpointID: uint8(2), logging.FieldIfindex: int32(42),
	}
	if got := join.ContextMap(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("debug fields %v, want %v", got, want)
	}
}

func TestFollowRebuildFailure(t *testing.T) {
	src := newFakeSource(
		received{err: lostEvents},
		received{events: []netlinkmptcp.Event{connEvent(netlinkmptcp.EventCreated, 0xb)}},
		received{err: lostEvents},
		received{events: []netlinkmptcp.Event{connEvent(netlinkmptcp.EventEstablished, 0xd)}},
	)
	failed := errors.New("sock_diag refused")
	rb := &fakeRebuild{answers: []rebuilt{{}, {err: failed}, {err: failed}}}
	v, logs := follow(t, src, rb)

	s := v.Snapshot()
	if s.Complete || s.Losses != 2 || s.Rebuilds != 1 || rb.calls != 3 {
		t.Errorf("view: complete %t (%q), losses %d, rebuilds %d, rebuild calls %d; want incomplete, 2, 1, 3",
			s.Complete, s.IncompleteReason, s.Losses, s.Rebuilds, rb.calls)
	}
	if want := "MPTCP events were lost (receive events: no buffer space available)"; s.IncompleteReason != want {
		t.Errorf("IncompleteReason %q, want %q", s.IncompleteReason, want)
	}
	// Events are still applied to the incomplete view.
	if got := tokensOf(s); fmt.Sprint(got) != "[11 13]" {
		t.Errorf("tokens %v, want [11 13]", got)
	}
	warnings := logs.FilterLevelExact(zap.WarnLevel).All()
	if len(warnings) != 1 || warnings[0].ContextMap()["error"] != failed.Error() {
		t.Errorf("warnings %v, want one about the failed rebuild", warnings)
	}
	if n := logs.FilterLevelExact(zap.InfoLevel).Len(); n != 0 {
		t.Errorf("info lines %v, want none: nothing was rebuilt", messages(logs))
	}
}

func TestFollowRetriesAfterReceiveError(t *testing.T) {
	defer func(p time.Duration) { receiveRetryPause = p }(receiveRetryPause)
	receiveRetryPause = time.Millisecond
	broken := errors.New("socket broke")
	src := newFakeSource(
		received{err: broken},
		received{err: broken},
		received{events: []netlinkmptcp.Event{connEvent(netlinkmptcp.EventCreated, 0xb)}},
	)
	// One rebuild at the start and one before each new read.
	rb := &fakeRebuild{answers: []rebuilt{{}, {}, {conns: []sockdiag.Connection{diagConn}}}}
	v, logs := follow(t, src, rb)

	s := v.Snapshot()
	if got := tokensOf(s); fmt.Sprint(got) != "[11 12]" || !s.Complete || s.Losses != 2 {
		t.Errorf("view: tokens %v, complete %t (%q), losses %d; want [11 12], complete, 2", got, s.Complete, s.IncompleteReason, s.Losses)
	}
	if n := logs.FilterLevelExact(zap.WarnLevel).FilterMessageSnippet("receiving MPTCP events failed").Len(); n != 1 {
		t.Errorf("%d warnings about the receive error, want 1: %v", n, messages(logs))
	}
	if n := logs.FilterLevelExact(zap.InfoLevel).FilterMessage("rebuilt the MPTCP connection view after failed receives").Len(); n != 1 {
		t.Errorf("%d info lines about the rebuild, want 1: %v", n, messages(logs))
	}
}

func tokensOf(s Snapshot) []uint32 {
	var ts []uint32
	for _, c := range s.Connections {
		ts = append(ts, c.Token)
	}
	return ts
}

func messages(logs *observer.ObservedLogs) []string {
	var ms []string
	for _, e := range logs.All() {
		ms = append(ms, e.Level.String()+": "+e.Message)
	}
	return ms
}

// A failure after reading worked again is news again: it is warned about.
func TestFollowWarnsAgainAfterRecovery(t *testing.T) {
	defer func(p time.Duration) { receiveRetryPause = p }(receiveRetryPause)
	receiveRetryPause = time.Millisecond
	broken := errors.New("socket broke")
	src := newFakeSource(
		received{err: broken},
		received{events: []netlinkmptcp.Event{connEvent(netlinkmptcp.EventCreated, 0xb)}},
		received{err: broken},
		received{err: broken},
	)
	rb := &fakeRebuild{answers: []rebuilt{{}, {}, {}, {}}}
	_, logs := follow(t, src, rb)
	if n := logs.FilterLevelExact(zap.WarnLevel).FilterMessageSnippet("receiving MPTCP events failed").Len(); n != 2 {
		t.Errorf("%d warnings about the receive errors, want 2 (one per run of failures): %v", n, messages(logs))
	}
	if n := logs.FilterLevelExact(zap.InfoLevel).FilterMessage("rebuilt the MPTCP connection view after failed receives").Len(); n != 2 {
		t.Errorf("%d info lines about rebuilds, want 2: %v", n, messages(logs))
	}
}

// failingSource fails every Run and says so on calls.
type failingSource struct{ calls chan struct{} }

func (s failingSource) Run(context.Context, netlinkmptcp.EventHandler) error {
	s.calls <- struct{}{}
	return errors.New("socket broke")
}

// TestFollowStopsWhenCancelled: Follow returns when its context is done,
// also while it waits to retry a failed receive.
func TestFollowStopsWhenCancelled(t *testing.T) {
	defer func(p time.Duration) { receiveRetryPause = p }(receiveRetryPause)
	receiveRetryPause = time.Hour
	src := failingSource{calls: make(chan struct{}, 1)}
	rb := &fakeRebuild{answers: []rebuilt{{}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, src, rb.rebuild, New(), logging.Nop())
	}()
	<-src.calls
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not return after its context was cancelled")
	}
}

// TestFollowingAfterTheFirstRead: Following closes only once the first
// read of the kernel is over, a failed one too, and a connection opened
// after that has its join observed.
func TestFollowingAfterTheFirstRead(t *testing.T) {
	var once sync.Once
	entered, release := make(chan struct{}), make(chan struct{})
	read := func() ([]sockdiag.Connection, error) {
		once.Do(func() { close(entered) })
		<-release
		return nil, errors.New("sock_diag refused")
	}
	src := newFakeSource(received{events: []netlinkmptcp.Event{established, joined}})
	v := New()
	var joins joinLog
	v.ObserveJoins(&joins)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, src, read, v, logging.NewLogger(zapcore.NewNopCore()))
	}()
	defer func() {
		cancel()
		<-done
	}()

	<-entered
	select {
	case <-v.Following():
		t.Fatal("Following closed while the first read was still running")
	default:
	}
	close(release)
	for _, w := range []struct {
		what string
		c    <-chan struct{}
	}{{"Following to close after the first read", v.Following()}, {"the scripted events", src.drained}} {
		select {
		case <-w.c:
		case <-time.After(10 * time.Second):
			t.Fatalf("waited 10s for %s", w.what)
		}
	}
	cancel()
	<-done
	if want := []string{"established 198.51.100.2 42"}; !slices.Equal(joins, want) {
		t.Errorf("joins observed %v, want %v", joins, want)
	}
}
