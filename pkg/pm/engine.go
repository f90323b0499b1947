package pm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/nlerr"
	"github.com/mptcpgd/mptcpgd/pkg/rtnl"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

// Routing writes our rules and routes (rtnl.Conn).
type Routing interface {
	AddRule(netstate.Rule) error
	DeleteRule(netstate.Rule) error
	AddRoute(netstate.Route) error
	ReplaceRoute(netstate.Route) error
	DeleteRoute(netstate.Route) error
}

// Network dumps the observed network (rtnl.Conn).
type Network interface {
	Dump() (netstate.State, int, error)
}

// Watcher delivers the network's changes (rtnl.Watcher).
type Watcher interface {
	Receive(ctx context.Context) ([]netstate.Update, int, error)
}

// Store keeps the ownership record (statefile.File).
type Store interface {
	Load() (statefile.State, error)
	Save(statefile.State) error
}

// Backoff is the retry schedule of a failed kernel write.
type Backoff struct {
	Initial, Max time.Duration
}

// DefaultGatewayWait gives a DHCP client or a router advertisement ample
// time to follow an address with its default route.
const DefaultGatewayWait = 3 * time.Second

// DefaultBackoff retries after 250 ms, doubling to 30 s.
var DefaultBackoff = Backoff{Initial: 250 * time.Millisecond, Max: 30 * time.Second}

// Options wire an Engine to the kernel.
type Options struct {
	Config  *config.Config
	Log     *zap.Logger
	MPTCP   MPTCP
	Routing Routing
	Network Network
	// Watcher must be subscribed before Run dumps the network, so no
	// change between the dump and the subscription is missed.
	Watcher Watcher
	Store   Store
	// ARP reads an interface's effective ARP sysctls; nil reads nothing
	// and never warns.
	ARP     func(ifname string) srcroute.ARP
	Flap    FlapPolicy
	Backoff Backoff
	// GatewayWait is how long a new address waits for its interface's
	// gateway before it becomes an endpoint anyway (see Input.GatewayWait);
	// zero means DefaultGatewayWait.
	GatewayWait time.Duration
	// OnSummary is called from the engine's goroutine whenever the
	// one-line summary (for systemd's STATUS=) changes.
	OnSummary func(string)
}

// Engine keeps the kernel's endpoints, limits and source routing equal to
// what the configuration asks for. One goroutine (Run) owns all state;
// other goroutines talk to it through channels.
type Engine struct {
	opt Options
	log *zap.Logger

	netCh    chan netMsg
	results  chan *op
	requests chan func()
	resyncCh chan string
	ready    chan struct{}

	// Owned by Run's goroutine.
	cfg        *config.Config
	net        netstate.State
	kernel     map[uint8]netlinkmptcp.Endpoint
	limits     netlinkmptcp.Limits
	own        statefile.State
	flaps      *flapTracker
	worker     *worker
	seq        uint64
	pendAdd    map[netip.Addr]*op
	pendDel    map[uint8]*op
	pendFlags  map[uint8]*op
	pendLimits *op
	pendDumps  int
	retries    map[string]*retryState
	warned     map[string]bool
	overCap    string
	arpCache   map[string]srcroute.ARP
	firstSeen  map[netstate.AddrKey]time.Time
	deferred   []func()
	decision   Decision
	timer      *time.Timer
	// resyncTicker paces the safety-net resync.
	resyncTicker *time.Ticker
	saveCh       chan statefile.State
	summary      string
	isReady      bool
	lastResync   time.Time
}

type netMsg struct {
	updates []netstate.Update
	err     error
}

type retryState struct {
	attempts int
	next     time.Time
	cause    string
}

// New checks the options and returns an engine ready to Run.
func New(o Options) (*Engine, error) {
	if o.Config == nil || o.MPTCP == nil || o.Routing == nil || o.Network == nil || o.Watcher == nil || o.Store == nil {
		return nil, errors.New("pm: Config, MPTCP, Routing, Network, Watcher and Store are required")
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Flap == (FlapPolicy{}) {
		o.Flap = DefaultFlapPolicy
	}
	if o.Backoff == (Backoff{}) {
		o.Backoff = DefaultBackoff
	}
	if o.GatewayWait == 0 {
		o.GatewayWait = DefaultGatewayWait
	}
	return &Engine{
		opt:       o,
		log:       o.Log,
		netCh:     make(chan netMsg, 64),
		results:   make(chan *op, 256),
		requests:  make(chan func()),
		resyncCh:  make(chan string, 1),
		ready:     make(chan struct{}),
		cfg:       o.Config,
		kernel:    map[uint8]netlinkmptcp.Endpoint{},
		flaps:     newFlapTracker(o.Flap),
		pendAdd:   map[netip.Addr]*op{},
		pendDel:   map[uint8]*op{},
		pendFlags: map[uint8]*op{},
		retries:   map[string]*retryState{},
		warned:    map[string]bool{},
		arpCache:  map[string]srcroute.ARP{},
		firstSeen: map[netstate.AddrKey]time.Time{},
		saveCh:    make(chan statefile.State, 1),
	}, nil
}

// Ready is closed once the first full reconcile has been applied (or its
// failed writes scheduled for retry).
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// Run starts from a full dump and keeps the kernel in line until ctx is
// done. It returns an error only when it cannot start.
func (e *Engine) Run(ctx context.Context) error {
	own, err := e.opt.Store.Load()
	if err != nil {
		return err
	}
	e.own = own
	if err := e.dumpNetwork(); err != nil {
		return err
	}
	eps, err := e.opt.MPTCP.Endpoints()
	if err != nil {
		return fmt.Errorf("read MPTCP endpoints: %w", err)
	}
	limits, err := e.opt.MPTCP.Limits()
	if err != nil {
		return fmt.Errorf("read MPTCP limits: %w", err)
	}
	e.setKernel(eps)
	e.limits = limits
	if e.own.InitialLimits == nil {
		e.own.InitialLimits = &limits
		if err := e.opt.Store.Save(e.own); err != nil {
			return err
		}
	}
	e.lastResync = time.Now()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.worker = newWorker(e.opt.MPTCP, e.results)
	saverDone := make(chan struct{})
	go e.runSaver(ctx, saverDone)
	go e.worker.run(ctx)
	go e.readNetwork(ctx)
	e.timer = time.NewTimer(time.Hour)
	defer e.timer.Stop()
	e.resyncTicker = time.NewTicker(time.Hour)
	defer e.resyncTicker.Stop()
	e.setResyncInterval(e.cfg.Daemon.ResyncInterval)

	e.reconcile()
	for {
		select {
		case m := <-e.netCh:
			e.handleNet(m)
		case o := <-e.results:
			e.handleResult(o)
		case f := <-e.requests:
			f()
		case reason := <-e.resyncCh:
			e.resync(reason)
		case <-e.resyncTicker.C:
			e.resync("safety-net timer")
		case <-e.timer.C:
			e.reconcile()
		case <-ctx.Done():
			cancel()
			<-saverDone
			return e.saveNow()
		}
	}
}

// setResyncInterval sets the safety-net resync's period; 0 turns it off,
// and anything under a second is a second.
func (e *Engine) setResyncInterval(d time.Duration) {
	if d == 0 {
		e.resyncTicker.Stop()
		return
	}
	e.resyncTicker.Reset(max(d, time.Second))
}

// Resync asks for a full dump and reconcile, e.g. after the MPTCP event
// socket overflowed.
func (e *Engine) Resync(reason string) {
	select {
	case e.resyncCh <- reason:
	default:
	}
}

// call runs f on the engine's goroutine and waits for it.
func (e *Engine) call(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case e.requests <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reload switches to a new, already validated configuration. Endpoints
// that still match are left untouched.
func (e *Engine) Reload(ctx context.Context, cfg *config.Config) error {
	var err error
	if cerr := e.call(ctx, func() {
		if cfg.Routing.Protocol != e.cfg.Routing.Protocol {
			err = fmt.Errorf("routing.protocol cannot change on reload (%d to %d): run `mptcpgd cleanup` and restart mptcpgd", e.cfg.Routing.Protocol, cfg.Routing.Protocol)
			return
		}
		if cfg.Daemon.ResyncInterval != e.cfg.Daemon.ResyncInterval {
			e.setResyncInterval(cfg.Daemon.ResyncInterval)
		}
		e.cfg = cfg
		e.log.Info("configuration reloaded", zap.String("source", cfg.Source))
		e.resync("reload")
	}); cerr != nil {
		return cerr
	}
	return err
}

func (e *Engine) readNetwork(ctx context.Context) {
	for {
		updates, skipped, err := e.opt.Watcher.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if skipped > 0 {
			e.log.Debug("skipped rtnetlink messages that could not be decoded", zap.Int("count", skipped))
		}
		if err == nil && len(updates) == 0 {
			// Filtered out (routes we do not keep, our own echoes):
			// nothing to decide on.
			continue
		}
		select {
		case e.netCh <- netMsg{updates: updates, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil && !errors.Is(err, rtnl.ErrOverflow) {
			// A broken socket must not spin; the resync it triggers
			// keeps the state right meanwhile.
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
	}
}

// handleNet applies m and every batch already queued behind it, then
// decides once: eight addresses removed at once cost one decision, not
// eight.
func (e *Engine) handleNet(m netMsg) {
	now := time.Now()
	var readErr error
	for {
		if m.err != nil && readErr == nil {
			readErr = m.err
		}
		for _, u := range m.updates {
			switch u.Kind {
			case netstate.LinkUpdate:
				e.linkChange(u, now)
			case netstate.AddrUpdate:
				e.addrChange(u, now)
			}
			e.net.Apply(u)
		}
		select {
		case m = <-e.netCh:
			continue
		default:
		}
		break
	}
	switch {
	case readErr == nil:
		e.reconcile()
	case errors.Is(readErr, rtnl.ErrOverflow):
		e.resync("rtnetlink overflow")
	default:
		e.log.Warn("reading network changes failed", zap.Error(readErr))
		e.resync("rtnetlink read error")
	}
}

// addrChange notes when an address appears, for the gateway wait.
func (e *Engine) addrChange(u netstate.Update, now time.Time) {
	key := u.Addr.Key()
	if u.Deleted {
		delete(e.firstSeen, key)
	} else if _, known := e.net.Addrs[key]; !known {
		e.firstSeen[key] = now
	}
}

func (e *Engine) linkChange(u netstate.Update, now time.Time) {
	old, known := e.net.Links[u.Link.Index]
	delete(e.arpCache, old.Name)
	if u.Deleted {
		e.flaps.forget(u.Link.Index)
		if known {
			e.log.Info("interface removed", zap.String(logging.FieldIface, old.Name))
		}
		return
	}
	if known && old.Name != u.Link.Name {
		e.log.Info("interface renamed", zap.String(logging.FieldIface, u.Link.Name), zap.String("old_name", old.Name))
	}
	if known && old.Flags&netstate.LinkUp != 0 && u.Link.Flags&netstate.LinkUp == 0 {
		// The kernel flushes IPv4 routes of a link taken down without
		// telling anyone: forget them too.
		for k, r := range e.net.Routes {
			if len(r.NextHops) == 1 && r.NextHops[0].IfIndex == u.Link.Index {
				delete(e.net.Routes, k)
			}
		}
	}
	carrier := u.Link.Carrier()
	if !known {
		e.flaps.carrier(u.Link.Index, carrier, now)
		return
	}
	if old.Carrier() == carrier {
		return
	}
	if carrier {
		e.log.Info("carrier back", zap.String(logging.FieldIface, u.Link.Name))
	} else {
		e.log.Info("carrier lost", zap.String(logging.FieldIface, u.Link.Name))
	}
	if e.flaps.carrier(u.Link.Index, carrier, now) {
		e.log.Warn("interface is flapping: holding back its endpoints after it returns",
			zap.String(logging.FieldIface, u.Link.Name), zap.Duration("hold_down", e.flaps.holdDown(u.Link.Index)))
	}
}

func (e *Engine) dumpNetwork() error {
	s, skipped, err := e.opt.Network.Dump()
	if err != nil {
		return fmt.Errorf("read links, addresses, routes and rules: %w", err)
	}
	if skipped > 0 {
		e.log.Debug("skipped rtnetlink messages that could not be decoded", zap.Int("count", skipped))
	}
	now := time.Now()
	for _, l := range s.SortedLinks() {
		e.flaps.carrier(l.Index, l.Carrier(), now)
	}
	// Addresses a resync finds that the events missed are new; those
	// present at start are not (they had their chance to get a route).
	if e.net.Addrs != nil {
		for k := range s.Addrs {
			if _, known := e.net.Addrs[k]; !known {
				e.firstSeen[k] = now
			}
		}
	}
	e.net = s
	clear(e.arpCache)
	return nil
}

// resync re-reads everything: the network now, the endpoint table through
// the worker (so it is read after the writes queued before it).
func (e *Engine) resync(reason string) {
	lvl := zap.InfoLevel
	if reason == "safety-net timer" {
		lvl = zap.DebugLevel
	}
	e.log.Log(lvl, "full resync", zap.String("reason", reason))
	e.lastResync = time.Now()
	if err := e.dumpNetwork(); err != nil {
		e.log.Warn("resync failed, keeping the previous view", zap.Error(err))
	}
	e.pendDumps++
	e.enqueue(&op{kind: opDump})
	e.reconcile()
}

func (e *Engine) setKernel(eps []netlinkmptcp.Endpoint) {
	clear(e.kernel)
	for _, ep := range eps {
		e.kernel[ep.ID] = ep
	}
}

func (e *Engine) kernelList() []netlinkmptcp.Endpoint {
	ids := slices.Sorted(maps.Keys(e.kernel))
	out := make([]netlinkmptcp.Endpoint, 0, len(ids))
	for _, id := range ids {
		out = append(out, e.kernel[id])
	}
	return out
}

func (e *Engine) heldUntil(now time.Time) map[int]time.Time {
	held := map[int]time.Time{}
	for idx := range e.net.Links {
		if t := e.flaps.usableAt(idx); t.After(now) {
			held[idx] = t
		}
	}
	return held
}

func (e *Engine) arp(name string) srcroute.ARP {
	a, ok := e.arpCache[name]
	if !ok {
		a = e.opt.ARP(name)
		e.arpCache[name] = a
	}
	return a
}

// reconcile decides what the kernel should hold and starts the writes that
// get it there: routing inline (fast, its own lock), endpoints and limits
// through the worker.
func (e *Engine) reconcile() {
	now := time.Now()
	for k, t := range e.firstSeen {
		if now.Sub(t) > e.opt.GatewayWait {
			delete(e.firstSeen, k)
		}
	}
	in := Input{
		Config:      e.cfg,
		Net:         e.net,
		Kernel:      e.kernelList(),
		Records:     e.own.Endpoints,
		HeldUntil:   e.heldUntil(now),
		Now:         now,
		FirstSeen:   e.firstSeen,
		GatewayWait: e.opt.GatewayWait,
	}
	if e.opt.ARP != nil {
		in.ARP = e.arp
	}
	d := Decide(in)
	e.decision = d
	e.logOverCap(d)
	e.logWarnings(d)
	seen := map[string]bool{}
	e.applyRouting(d, now, seen)
	e.planEndpoints(d, in.Kernel, now, seen)
	e.planLimits(d, now, seen)
	for _, f := range e.deferred {
		f()
	}
	clear(e.deferred)
	e.deferred = e.deferred[:0]
	for key := range e.retries {
		if !seen[key] {
			delete(e.retries, key)
		}
	}
	e.updateSummary()
	e.checkReady()
	e.armTimer(now, in.HeldUntil, WaitingUntil(in))
}

func (e *Engine) applyRouting(d Decision, now time.Time, seen map[string]bool) {
	proto := e.cfg.Routing.Protocol
	p := PlanRouting(d.Routing.Rules, d.Routing.Routes, e.net, proto)
	for _, r := range p.DeleteRules {
		e.routingWrite("delete rule "+r.String(), now, seen, func() error { return e.opt.Routing.DeleteRule(r) }, true, func() {
			e.net.Apply(netstate.Update{Kind: netstate.RuleUpdate, Deleted: true, Rule: r})
			e.later(func() {
				e.log.Info("rule removed", zap.String(logging.FieldAddr, r.Src.Addr().String()), zap.Uint32(logging.FieldTable, r.Table))
			})
		})
	}
	for _, r := range p.DeleteRoutes {
		e.routingWrite("delete route "+r.String(), now, seen, func() error { return e.opt.Routing.DeleteRoute(r) }, true, func() {
			e.net.Apply(netstate.Update{Kind: netstate.RouteUpdate, Deleted: true, Route: r})
			e.later(func() {
				e.log.Debug("route removed", zap.Stringer("route", r), zap.Uint32(logging.FieldTable, r.Table))
			})
		})
	}
	for _, r := range p.AddRoutes {
		e.routingWrite("add route "+r.String(), now, seen, func() error { return e.opt.Routing.AddRoute(r) }, false, func() {
			e.net.Apply(netstate.Update{Kind: netstate.RouteUpdate, Route: r})
			e.later(func() { e.logRoute("route added", r) })
		})
	}
	for _, r := range p.ReplaceRoutes {
		e.routingWrite("replace route "+r.String(), now, seen, func() error { return e.opt.Routing.ReplaceRoute(r) }, false, func() {
			e.net.Apply(netstate.Update{Kind: netstate.RouteUpdate, Route: r})
			e.later(func() { e.logRoute("route changed", r) })
		})
	}
	for _, r := range p.AddRules {
		e.routingWrite("add rule "+r.String(), now, seen, func() error {
			if err := e.opt.Routing.AddRule(r); err != nil && !errors.Is(err, nlerr.ErrExists) {
				return err
			}
			return nil
		}, false, func() {
			e.net.Apply(netstate.Update{Kind: netstate.RuleUpdate, Rule: r})
			e.later(func() {
				e.log.Info("rule added", zap.String(logging.FieldAddr, r.Src.Addr().String()), zap.Uint32(logging.FieldTable, r.Table), zap.Uint32("priority", r.Priority))
			})
		})
	}
	for _, r := range p.Conflicts {
		e.warnOnce(fmt.Sprintf("route %s is not written: table %d already holds a route there that is not ours (protocol %d tags ours)", r, r.Table, proto))
	}
}

// later defers a log line until the reconcile has handed its endpoint
// writes to the worker: writing a log line is a system call, and an address
// waiting for its endpoint should not wait for it.
func (e *Engine) later(f func()) { e.deferred = append(e.deferred, f) }

func (e *Engine) logRoute(msg string, r netstate.Route) {
	f := []zap.Field{zap.Uint32(logging.FieldTable, r.Table), zap.String("dst", r.Dst.String())}
	if len(r.NextHops) > 0 {
		if l, ok := e.net.Links[r.NextHops[0].IfIndex]; ok {
			f = append(f, zap.String(logging.FieldIface, l.Name))
		}
		if gw := r.NextHops[0].Gateway; gw.IsValid() {
			f = append(f, zap.String(logging.FieldGateway, gw.String()))
		}
	}
	if r.IsDefault() {
		e.log.Info(msg, f...)
	} else {
		e.log.Debug(msg, f...)
	}
}

// routingWrite runs one rtnetlink write unless it is backing off after a
// failure. A delete of something already gone counts as done.
func (e *Engine) routingWrite(key string, now time.Time, seen map[string]bool, write func() error, isDelete bool, done func()) {
	seen[key] = true
	if e.backingOff(key, now) {
		return
	}
	err := write()
	if err != nil && !(isDelete && errors.Is(err, nlerr.ErrNotFound)) {
		e.failed(key, err, now)
		return
	}
	e.succeeded(key)
	done()
}

func (e *Engine) planEndpoints(d Decision, kernel []netlinkmptcp.Endpoint, now time.Time, seen map[string]bool) {
	p := PlanEndpoints(d.Endpoints, kernel, d.Owned)

	// Queued ops the decision no longer wants are withdrawn; ones already
	// running finish, and their result triggers a new plan.
	want := map[netip.Addr]Endpoint{}
	for _, w := range d.Endpoints {
		want[w.Addr] = w
	}
	for addr, o := range e.pendAdd {
		if w, ok := want[addr]; (!ok || w != o.add) && e.worker.cancel(o.seq) {
			delete(e.pendAdd, addr)
		}
	}
	deleting := map[uint8]bool{}
	for _, ep := range p.Delete {
		deleting[ep.ID] = true
	}
	for id, o := range e.pendDel {
		if !deleting[id] && e.worker.cancel(o.seq) {
			delete(e.pendDel, id)
		}
	}

	for _, ep := range p.Keep {
		e.record(ep)
	}
	for _, fc := range p.SetFlags {
		e.record(fc.Endpoint)
	}
	for _, ep := range p.Delete {
		key := fmt.Sprintf("delete endpoint %d", ep.ID)
		seen[key] = true
		if e.pendDel[ep.ID] != nil || e.backingOff(key, now) {
			continue
		}
		e.pendDel[ep.ID] = e.enqueue(&op{kind: opDelete, target: ep})
		if e.deadAddress(ep) {
			// Deleting the endpoint closes the subflows it opened, not a
			// connection's initial subflow from the same address: on a
			// dead link that one would hang until TCP gives up.
			e.enqueue(&op{kind: opCloseInitial, target: ep})
		}
	}
	for _, fc := range p.SetFlags {
		key := fmt.Sprintf("set flags of endpoint %d", fc.Endpoint.ID)
		seen[key] = true
		if e.pendFlags[fc.Endpoint.ID] != nil || e.pendDel[fc.Endpoint.ID] != nil || e.backingOff(key, now) {
			continue
		}
		e.pendFlags[fc.Endpoint.ID] = e.enqueue(&op{kind: opSetFlags, target: fc.Endpoint, flags: fc.Flags})
	}
	pendingRemovalAt := map[netip.Addr]bool{}
	for _, o := range e.pendDel {
		pendingRemovalAt[o.target.Addr] = true
	}
	implicitAt := map[netip.Addr]bool{}
	for _, ep := range e.kernel {
		if ep.Flags&netlinkmptcp.FlagImplicit != 0 {
			implicitAt[ep.Addr] = true
		}
	}
	// Slots: what the table holds or will hold once the adds under way are
	// done, and what the removals under way will free.
	used, freeing := len(e.kernel)+len(e.pendAdd), len(e.pendDel)
	for _, add := range p.Add {
		key := "add endpoint " + add.Addr.String()
		seen[key] = true
		if e.pendAdd[add.Addr] != nil || e.backingOff(key, now) {
			continue
		}
		// Replacing an implicit endpoint reuses its slot.
		needsSlot := !implicitAt[add.Addr]
		if needsSlot && used+1-freeing > netlinkmptcp.MaxEndpoints {
			// The slot this add needs is held by an add under way whose
			// endpoint is no longer wanted: its removal is planned when
			// its result comes back, and this add with it.
			continue
		}
		full := needsSlot && used+1 > netlinkmptcp.MaxEndpoints
		e.pendAdd[add.Addr] = e.enqueue(&op{kind: opAdd, add: add, afterRemovals: full || pendingRemovalAt[add.Addr]})
		if needsSlot {
			used++
		}
	}
}

// deadAddress tells whether an endpoint's address can no longer carry
// traffic: it is gone, or its link is gone or has no carrier.
func (e *Engine) deadAddress(ep netlinkmptcp.Endpoint) bool {
	link, ok := endpointLink(e.net, ep)
	if !ok || !link.Carrier() {
		return true
	}
	_, present := e.net.Addrs[netstate.AddrKey{IfIndex: link.Index, Addr: ep.Addr}]
	return !present
}

func (e *Engine) planLimits(d Decision, now time.Time, seen map[string]bool) {
	const key = "set limits"
	seen[key] = true
	if d.Limits == e.limits || e.backingOff(key, now) {
		return
	}
	if e.pendLimits != nil {
		if e.pendLimits.limits == d.Limits || !e.worker.cancel(e.pendLimits.seq) {
			return
		}
	}
	e.pendLimits = e.enqueue(&op{kind: opSetLimits, limits: d.Limits})
}

func (e *Engine) enqueue(o *op) *op {
	e.seq++
	o.seq = e.seq
	e.worker.enqueue(o)
	return o
}

func (e *Engine) handleResult(o *op) {
	now := time.Now()
	switch o.kind {
	case opAdd:
		delete(e.pendAdd, o.add.Addr)
		key := "add endpoint " + o.add.Addr.String()
		if o.err != nil {
			if o.endpoints != nil {
				e.setKernel(o.endpoints)
			}
			e.failed(key, o.err, now)
			break
		}
		e.succeeded(key)
		e.kernel[o.stored.ID] = o.stored
		e.record(o.stored)
		e.log.Info("endpoint added", zap.String(logging.FieldIface, o.add.IfName), zap.String(logging.FieldAddr, o.add.Addr.String()),
			zap.Uint8(logging.FieldEndpointID, o.stored.ID), zap.Stringer(logging.FieldFlags, o.stored.Flags), zap.Duration("took", o.took))
	case opDelete:
		delete(e.pendDel, o.target.ID)
		key := fmt.Sprintf("delete endpoint %d", o.target.ID)
		if o.err != nil && !errors.Is(o.err, netlinkmptcp.ErrNotFound) {
			e.failed(key, o.err, now)
			break
		}
		e.succeeded(key)
		delete(e.kernel, o.target.ID)
		e.unrecord(o.target.ID)
		e.log.Info("endpoint removed", zap.String(logging.FieldIface, e.ifName(int(o.target.IfIndex), o.target.Addr)),
			zap.String(logging.FieldAddr, o.target.Addr.String()), zap.Uint8(logging.FieldEndpointID, o.target.ID), zap.Duration("took", o.took))
	case opSetFlags:
		delete(e.pendFlags, o.target.ID)
		key := fmt.Sprintf("set flags of endpoint %d", o.target.ID)
		if o.err != nil {
			e.failed(key, o.err, now)
			break
		}
		e.succeeded(key)
		ep := e.kernel[o.target.ID]
		ep.Flags = ep.Flags&^settableFlags | o.flags
		e.kernel[o.target.ID] = ep
		e.log.Info("endpoint flags changed", zap.String(logging.FieldAddr, ep.Addr.String()), zap.Uint8(logging.FieldEndpointID, ep.ID), zap.Stringer(logging.FieldFlags, ep.Flags))
	case opSetLimits:
		if e.pendLimits == o {
			e.pendLimits = nil
		}
		if o.err != nil {
			e.failed("set limits", o.err, now)
			break
		}
		e.succeeded("set limits")
		e.limits = o.limits
		e.log.Info("limits set", zap.Uint32("subflows", o.limits.Subflows), zap.Uint32("add_addr_accepted", o.limits.AddAddrAccepted))
	case opCloseInitial:
		if o.err != nil && !errors.Is(o.err, netlinkmptcp.ErrNotFound) {
			e.log.Warn("closing initial subflows from a dead address failed", zap.String(logging.FieldAddr, o.target.Addr.String()), zap.Error(o.err))
			break
		}
		e.log.Info("initial subflows from a dead address closed", zap.String(logging.FieldAddr, o.target.Addr.String()), zap.Duration("took", o.took))
	case opDump:
		e.pendDumps--
		if o.err != nil {
			e.log.Warn("reading the MPTCP endpoint table failed", zap.Error(o.err))
			break
		}
		e.setKernel(o.endpoints)
		e.limits = o.seenLimits
	}
	e.reconcile()
}

func (e *Engine) ifName(ifindex int, addr netip.Addr) string {
	if l, ok := e.net.Links[ifindex]; ok {
		return l.Name
	}
	for _, a := range e.net.Addrs {
		if a.Addr == addr {
			return e.net.Links[a.IfIndex].Name
		}
	}
	return ""
}

// record notes an endpoint as ours in the state file (written in the
// background: the fast path never waits for a disk).
func (e *Engine) record(ep netlinkmptcp.Endpoint) {
	for i, r := range e.own.Endpoints {
		if r.ID == ep.ID {
			if r.Addr == ep.Addr && r.Port == ep.Port {
				return
			}
			e.own.Endpoints = slices.Delete(e.own.Endpoints, i, i+1)
			break
		}
	}
	e.own.Endpoints = append(e.own.Endpoints, statefile.Endpoint{ID: ep.ID, Addr: ep.Addr, Port: ep.Port})
	e.save()
}

func (e *Engine) unrecord(id uint8) {
	n := len(e.own.Endpoints)
	e.own.Endpoints = slices.DeleteFunc(e.own.Endpoints, func(r statefile.Endpoint) bool { return r.ID == id })
	if len(e.own.Endpoints) != n {
		e.save()
	}
}

func (e *Engine) save() {
	s := e.own
	s.Endpoints = slices.Clone(s.Endpoints)
	select {
	case <-e.saveCh:
	default:
	}
	e.saveCh <- s
}

func (e *Engine) runSaver(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	var lastErr string
	for {
		select {
		case s := <-e.saveCh:
			err := e.opt.Store.Save(s)
			if err != nil && err.Error() != lastErr {
				e.log.Error("saving the ownership record failed", zap.Error(err))
			}
			lastErr = ""
			if err != nil {
				lastErr = err.Error()
			}
		case <-ctx.Done():
			return
		}
	}
}

func (e *Engine) saveNow() error {
	s := e.own
	return e.opt.Store.Save(s)
}

func (e *Engine) backingOff(key string, now time.Time) bool {
	r, ok := e.retries[key]
	return ok && now.Before(r.next)
}

// failed schedules a retry with exponential backoff and logs the failure
// once per cause, not once per attempt.
func (e *Engine) failed(key string, err error, now time.Time) {
	r, ok := e.retries[key]
	if !ok {
		r = &retryState{}
		e.retries[key] = r
	}
	r.attempts++
	delay := e.opt.Backoff.Initial << min(r.attempts-1, 20)
	if delay > e.opt.Backoff.Max || delay <= 0 {
		delay = e.opt.Backoff.Max
	}
	r.next = now.Add(delay)
	if cause := err.Error(); cause != r.cause {
		r.cause = cause
		e.log.Warn("kernel write failed, will retry", zap.String("op", key), zap.Error(err), zap.Duration("retry_in", delay))
	} else {
		e.log.Debug("kernel write failed again", zap.String("op", key), zap.Int("attempts", r.attempts), zap.Duration("retry_in", delay))
	}
}

func (e *Engine) succeeded(key string) {
	if r, ok := e.retries[key]; ok {
		e.log.Info("kernel write succeeded after retrying", zap.String("op", key), zap.Int("attempts", r.attempts+1))
		delete(e.retries, key)
	}
}

// armTimer wakes the engine for the next retry or the end of a hold-down.
func (e *Engine) armTimer(now time.Time, held map[int]time.Time, gatewayWait time.Time) {
	next := gatewayWait
	for _, r := range e.retries {
		if next.IsZero() || r.next.Before(next) {
			next = r.next
		}
	}
	for _, t := range held {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if next.IsZero() {
		next = now.Add(time.Hour)
	}
	if !e.timer.Stop() {
		select {
		case <-e.timer.C:
		default:
		}
	}
	e.timer.Reset(max(next.Sub(now), time.Millisecond))
}

func (e *Engine) warnOnce(msg string) {
	if !e.warned[msg] {
		e.warned[msg] = true
		e.log.Warn(msg)
	}
}

// logWarnings logs each warning once while it lasts, and forgets the ones
// that went away so they are logged again if they return.
func (e *Engine) logWarnings(d Decision) {
	now := map[string]bool{}
	for _, w := range d.Warnings {
		now[w] = true
		e.warnOnce(w)
	}
	for w := range e.warned {
		if !now[w] && !strings.HasPrefix(w, "route ") {
			delete(e.warned, w)
		}
	}
}

func (e *Engine) logOverCap(d Decision) {
	var left []string
	for _, ep := range d.OverCap {
		left = append(left, ep.Addr.String()+" on "+ep.IfName)
	}
	s := strings.Join(left, ", ")
	if s == e.overCap {
		return
	}
	e.overCap = s
	if s == "" {
		e.log.Info("every candidate address has an endpoint again")
		return
	}
	e.log.Warn("more candidate addresses than the kernel's endpoint limit: leaving some out",
		zap.String("left_out", s), zap.Int("limit", netlinkmptcp.MaxEndpoints), zap.Int("not_ours", len(d.Foreign)))
}

func (e *Engine) pending() int {
	n := len(e.pendAdd) + len(e.pendDel) + len(e.pendFlags) + e.pendDumps
	if e.pendLimits != nil {
		n++
	}
	return n
}

func (e *Engine) checkReady() {
	if e.isReady || e.pending() > 0 {
		return
	}
	e.isReady = true
	close(e.ready)
	e.log.Info("ready", zap.Int("endpoints", len(e.decision.Endpoints)), zap.Stringer("limits", e.limits))
}

func (e *Engine) updateSummary() {
	managed := 0
	for _, st := range e.decision.Interfaces {
		if st.Managed && st.Withdrawn == "" {
			managed++
		}
	}
	s := fmt.Sprintf("%d interfaces managed, %d endpoints, %d rules", managed, len(e.decision.Endpoints), len(e.decision.Routing.Rules))
	if s != e.summary {
		e.summary = s
		if e.opt.OnSummary != nil {
			e.opt.OnSummary(s)
		}
	}
}
