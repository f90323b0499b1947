package pm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	mp "github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/nlerr"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

// fakeKernel is an in-memory kernel: the MPTCP endpoint table and limits,
// and the rtnetlink side (links, addresses, routes, rules). It records every
// write in order, so tests can check what was touched and in which order.
type fakeKernel struct {
	mu      sync.Mutex
	eps     map[uint8]mp.Endpoint
	nextID  uint8
	limits  mp.Limits
	net     netstate.State
	log     []string
	failAdd int // the next failAdd endpoint additions fail
	changed chan struct{}
	// addGate, when set, holds every endpoint addition until it receives.
	addGate chan struct{}
	// refuseRoute, when set, refuses the routes it returns an error for.
	refuseRoute func(netstate.Route) error
}

func newFakeKernel(net netstate.State) *fakeKernel {
	return &fakeKernel{eps: map[uint8]mp.Endpoint{}, nextID: 1, limits: mp.Limits{Subflows: 2}, net: net, changed: make(chan struct{}, 1)}
}

func (k *fakeKernel) note(format string, args ...any) {
	k.log = append(k.log, fmt.Sprintf(format, args...))
	select {
	case k.changed <- struct{}{}:
	default:
	}
}

func (k *fakeKernel) Endpoints() ([]mp.Endpoint, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.endpointsLocked(), nil
}

func (k *fakeKernel) endpointsLocked() []mp.Endpoint {
	var out []mp.Endpoint
	for _, id := range slices.Sorted(maps.Keys(k.eps)) {
		out = append(out, k.eps[id])
	}
	return out
}

func (k *fakeKernel) AddEndpoint(e mp.Endpoint) (mp.Endpoint, error) {
	k.mu.Lock()
	gate := k.addGate
	k.mu.Unlock()
	if gate != nil {
		<-gate
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failAdd > 0 {
		k.failAdd--
		return mp.Endpoint{}, fmt.Errorf("add endpoint %s: %w", e.Addr, unix.ENOMEM)
	}
	for id, old := range k.eps {
		if old.Addr == e.Addr {
			if old.Flags&mp.FlagImplicit == 0 {
				return mp.Endpoint{}, fmt.Errorf("add endpoint %s: %w", e.Addr, mp.ErrExists)
			}
			e.ID = id
		}
	}
	if len(k.eps) >= mp.MaxEndpoints && e.ID == 0 {
		k.note("table full for %s", e.Addr)
		return mp.Endpoint{}, fmt.Errorf("add endpoint %s: %w", e.Addr, mp.ErrTableFull)
	}
	if e.ID == 0 {
		for k.eps[k.nextID].Addr.IsValid() {
			k.nextID++
		}
		e.ID = k.nextID
		k.nextID++
	}
	k.eps[e.ID] = e
	k.note("add endpoint %s id %d %s", e.Addr, e.ID, e.Flags)
	return e, nil
}

func (k *fakeKernel) DeleteEndpoint(id uint8) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	ep, ok := k.eps[id]
	if !ok {
		return fmt.Errorf("delete endpoint %d: %w", id, mp.ErrNotFound)
	}
	delete(k.eps, id)
	k.note("delete endpoint %s id %d", ep.Addr, id)
	return nil
}

func (k *fakeKernel) SetEndpointFlags(id uint8, flags mp.Flags) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	ep, ok := k.eps[id]
	if !ok {
		return mp.ErrNotFound
	}
	ep.Flags = ep.Flags&^settableFlags | flags
	k.eps[id] = ep
	k.note("set flags %s id %d %s", ep.Addr, id, ep.Flags)
	return nil
}

func (k *fakeKernel) Limits() (mp.Limits, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.limits, nil
}

func (k *fakeKernel) SetLimits(u mp.LimitsUpdate) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if u.Subflows != nil {
		k.limits.Subflows = *u.Subflows
	}
	if u.AddAddrAccepted != nil {
		k.limits.AddAddrAccepted = *u.AddAddrAccepted
	}
	k.note("set limits %s", k.limits)
	return nil
}

func (k *fakeKernel) CloseInitialSubflows(a netip.Addr) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.note("close initial %s", a)
	return nil
}

func (k *fakeKernel) Flush() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.eps)
	k.nextID = 1
}

func (k *fakeKernel) Dump() (netstate.State, int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.net.Clone(), 0, nil
}

func (k *fakeKernel) AddRule(r netstate.Rule) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.net.Rules[r]; ok {
		return &nlerr.Error{Op: "add rule", Err: unix.EEXIST}
	}
	k.net.Rules[r] = struct{}{}
	k.note("add rule %s", r.Src.Addr())
	return nil
}

func (k *fakeKernel) DeleteRule(r netstate.Rule) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.net.Rules[r]; !ok {
		return &nlerr.Error{Op: "delete rule", Err: unix.ENOENT}
	}
	delete(k.net.Rules, r)
	k.note("delete rule %s", r.Src.Addr())
	return nil
}

func (k *fakeKernel) AddRoute(r netstate.Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.refuseRoute != nil {
		if err := k.refuseRoute(r); err != nil {
			return err
		}
	}
	if _, ok := k.net.Routes[r.Key()]; ok {
		return &nlerr.Error{Op: "add route", Err: unix.EEXIST}
	}
	k.net.Routes[r.Key()] = r
	k.note("add route %s", r)
	return nil
}

func (k *fakeKernel) ReplaceRoute(r netstate.Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.net.Routes[r.Key()] = r
	k.note("replace route %s", r)
	return nil
}

func (k *fakeKernel) DeleteRoute(r netstate.Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	cur, ok := k.net.Routes[r.Key()]
	if !ok || cur.Protocol != r.Protocol {
		return &nlerr.Error{Op: "delete route", Err: unix.ESRCH}
	}
	delete(k.net.Routes, r.Key())
	k.note("delete route %s", r)
	return nil
}

// change applies an rtnetlink-side change to the fake kernel and returns the
// update a watcher would deliver.
func (k *fakeKernel) change(u netstate.Update) netstate.Update {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.net.Apply(u)
	return u
}

// snapshot returns a copy of the endpoint table, limits and write log.
func (k *fakeKernel) snapshot() ([]mp.Endpoint, mp.Limits, []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.endpointsLocked(), k.limits, slices.Clone(k.log)
}

// fakeWatcher delivers whatever the test sends.
type fakeWatcher struct {
	ch chan watchItem
}

type watchItem struct {
	updates []netstate.Update
	err     error
}

func newFakeWatcher() *fakeWatcher { return &fakeWatcher{ch: make(chan watchItem, 16)} }

func (w *fakeWatcher) Receive(ctx context.Context) ([]netstate.Update, int, error) {
	select {
	case it := <-w.ch:
		return it.updates, 0, it.err
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
}

func (w *fakeWatcher) send(ups ...netstate.Update) { w.ch <- watchItem{updates: ups} }

// memStore is an in-memory state file.
type memStore struct {
	mu    sync.Mutex
	state statefile.State
	saves int
	// failSaves makes the next saves fail.
	failSaves int
}

func (s *memStore) Load() (statefile.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, nil
}

func (s *memStore) Save(st statefile.State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSaves > 0 {
		s.failSaves--
		return errors.New("write state file: no space left on device")
	}
	s.state = st
	s.state.Endpoints = slices.Clone(st.Endpoints)
	s.saves++
	return nil
}

func (s *memStore) get() statefile.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// fakeClock is a clock that moves only when the test advances it, firing
// the timers that come due.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

// Advance moves the clock on by d and waits (a little, in real time) until
// the timers that came due were received, so that whatever the receiver
// does next happens before anything the test asks it afterwards.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var fired []*fakeTimer
	for _, t := range c.timers {
		if t.fireIfDue() {
			fired = append(fired, t)
		}
	}
	c.mu.Unlock()
	deadline := time.Now().Add(time.Second)
	for _, t := range fired {
		for len(t.ch) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Microsecond)
		}
	}
}

type fakeTimer struct {
	c     *fakeClock
	ch    chan time.Time
	at    time.Time
	armed bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.drain()
	t.at, t.armed = t.c.now.Add(d), true
	t.fireIfDue()
}

func (t *fakeTimer) Close() { t.Stop() }

func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.drain()
	t.armed = false
}

func (t *fakeTimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

// fireIfDue sends on the channel once the timer is due, and reports
// whether it did; c.mu is held.
func (t *fakeTimer) fireIfDue() bool {
	if !t.armed || t.at.After(t.c.now) {
		return false
	}
	t.armed = false
	t.ch <- t.c.now
	return true
}
