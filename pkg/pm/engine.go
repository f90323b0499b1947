package pm

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/rejoin"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
)

// DefaultGatewayWait gives a DHCP client or a router advertisement ample
// time to follow an address with its default route.
const DefaultGatewayWait = 3 * time.Second

// Options wire an Engine to the kernel.
type Options struct {
	Config  *config.Config
	Log     *logging.Logger
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
	// Clock is the engine's time; nil is the real clock.
	Clock Clock
	// Repair limits how often what someone else removes is put back; zero
	// means DefaultRepairPolicy.
	Repair RepairPolicy
	// Competitor names a program running here that is known to undo our
	// work (NetworkManager), "" if none; nil never names one.
	Competitor func() string
	// Neighbours, when set, gates an endpoint's (re-)addition on its
	// gateway answering (see gatewayGate); the Watcher then should
	// implement NeighbourWatcher, so the engine hears the gateway answer.
	Neighbours Neighbours
	// Connections, when set, is the live connection view whose failed
	// joins the engine retries (see rejoin).
	Connections Connections
	// Enabled checks that MPTCP is enabled in the namespace
	// (netlinkmptcp.CheckEnabled): the netlink family keeps answering when
	// net.mptcp.enabled is 0, so only the sysctl tells. It is asked at
	// every resync; nil never asks.
	Enabled func() error
	// OnSummary is called from the engine's goroutine whenever the
	// one-line summary (for systemd's STATUS=) changes.
	OnSummary func(string)
	// Left are the interfaces left to NetworkManager from the start, as
	// read at LeftAsOf (zero: NetworkManager does not run); LeaveTo
	// changes them.
	Left     map[string]string
	LeftAsOf time.Time
	// AskNetworkManager asks for a new look at NetworkManager, whose result
	// comes through LeaveTo; it must not block. It is called while a new
	// address waits for one (Input.LeftAsOf); nil never asks.
	AskNetworkManager func()
	// Metrics counts resyncs, repairs and join retries; nil counts nothing.
	Metrics Metrics
}

// Engine keeps the kernel's endpoints, limits and source routing equal to
// what the configuration asks for. One goroutine (Run) owns all state;
// other goroutines talk to it through channels. The rooms it delegates to:
// observations (what changed), Decide and the plans (what the kernel should
// hold), scheduleEndpoints (which endpoint writes to queue), routingApply
// and the worker (the writes), retrier and ownership.
type Engine struct {
	opt   Options
	log   *logging.Logger
	clock Clock

	netCh    chan netMsg
	results  chan *op
	requests chan func()
	resyncCh chan string
	ready    chan struct{}

	// Owned by Run's goroutine.
	cfg    *config.Config
	net    netstate.State
	kernel map[uint8]netlinkmptcp.Endpoint
	limits netlinkmptcp.Limits
	own    *ownership
	// owners are whose routes and rules are ours (routingOwners).
	owners   routingOwners
	obs      *observations
	retry    *retrier
	repairs  *repairs
	routing  routingApply
	queue    endpointQueue
	pending  pendingOps
	warnings warningLog
	overCap  string
	decision Decision
	// deferred are log lines written once a reconcile's writes are queued.
	deferred []func()
	seq      uint64
	// timer wakes the engine for the next retry, the end of a hold-down or
	// of a gateway wait; resyncTimer for the safety-net resync.
	timer       Timer
	resyncTimer Timer
	// gate holds additions until their gateway answers (nil: no gate).
	gate *gatewayGate
	// sup decides the retries of failed joins; since says when each of
	// our endpoints was last added, readd which to remove and add again,
	// missing what the connections lack, superviseAt when to look again.
	sup         *rejoin.Supervisor
	since       map[netip.Addr]time.Time
	readd       map[netip.Addr]bool
	missing     []rejoin.Missing
	superviseAt time.Time
	// lastRecheck is when the connection view was last asked to check
	// itself against the kernel (recheckEvery).
	lastRecheck time.Time
	// disabled says why MPTCP is off in the namespace, "" while it is on.
	disabled   string
	summary    string
	isReady    bool
	lastResync time.Time
	// ticks counts the safety-net timer's ticks.
	ticks int
	// left are the interfaces left to NetworkManager (LeaveTo), as read
	// at leftAsOf.
	left     map[string]string
	leftAsOf time.Time
}

// fullEvery is how many safety-net ticks make one full resync; the others
// re-read only the MPTCP state, which has no change events. Links,
// addresses, routes and rules have events, and losing one is noticed (an
// overflow), so reading them every tick would cost wake-ups for nothing.
const fullEvery = 10

type netMsg struct {
	updates []netstate.Update
	err     error
}

// New checks the options and returns an engine ready to Run.
func New(o Options) (*Engine, error) {
	if o.Config == nil || o.MPTCP == nil || o.Routing == nil || o.Network == nil || o.Watcher == nil || o.Store == nil {
		return nil, errors.New("pm: Config, MPTCP, Routing, Network, Watcher and Store are required")
	}
	if o.Log == nil {
		o.Log = logging.Nop()
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
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Repair == (RepairPolicy{}) {
		o.Repair = DefaultRepairPolicy
	}
	retry := newRetrier(o.Backoff, o.Log)
	repairs := newRepairs(o.Repair, o.Log, o.Competitor)
	repairs.repaired = metricsOf(o).Repair
	var gate *gatewayGate
	if o.Neighbours != nil {
		nw, _ := o.Watcher.(NeighbourWatcher)
		gate = newGatewayGate(o.Neighbours, nw, o.Log, o.Config.Rejoin.GatewayTimeout)
	}
	return &Engine{
		gate:     gate,
		sup:      rejoin.New(rejoinSettings(o.Config, netlinkmptcp.Limits{})),
		since:    map[netip.Addr]time.Time{},
		readd:    map[netip.Addr]bool{},
		opt:      o,
		log:      o.Log,
		clock:    o.Clock,
		netCh:    make(chan netMsg, 64),
		results:  make(chan *op, 256),
		requests: make(chan func()),
		resyncCh: make(chan string, 1),
		ready:    make(chan struct{}),
		cfg:      o.Config,
		left:     o.Left,
		leftAsOf: o.LeftAsOf,
		kernel:   map[uint8]netlinkmptcp.Endpoint{},
		own:      newOwnership(o.Store, o.Log, o.Clock),
		obs:      newObservations(o.Log, o.Flap, o.ARP),
		retry:    retry,
		repairs:  repairs,
		routing:  routingApply{routing: o.Routing, retry: retry, repairs: repairs, log: o.Log},
		pending:  newPendingOps(),
		warnings: warningLog{log: o.Log},
	}, nil
}

// Ready is closed once the first full reconcile has been applied (or its
// failed writes scheduled for retry).
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// Run starts from a full dump and keeps the kernel in line until ctx is
// done. It returns an error only when it cannot start, or when the
// ownership record cannot be saved on the way out.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.own.load(); err != nil {
		return err
	}
	e.owners = ownersOf(e.cfg, e.own.routing())
	if err := e.dumpNetwork(true); err != nil {
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
	e.prune()
	for _, ep := range eps {
		e.since[ep.Addr] = e.clock.Now()
	}
	if err := e.own.noteInitialLimits(limits); err != nil {
		return err
	}
	e.lastResync = e.clock.Now()
	e.checkEnabled()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newWorker(e.opt.MPTCP, e.results)
	e.queue = w
	saverDone := make(chan struct{})
	go func() {
		e.own.run(ctx)
		close(saverDone)
	}()
	go w.run(ctx)
	go e.readNetwork(ctx)
	e.timer = e.clock.NewTimer(time.Hour)
	defer e.timer.Close()
	e.resyncTimer = e.clock.NewTimer(time.Hour)
	defer e.resyncTimer.Close()
	e.armResync()
	var joins <-chan struct{}
	if e.opt.Connections != nil {
		joins = e.opt.Connections.JoinsChanged()
	}

	e.reconcile()
	for {
		select {
		case m := <-e.netCh:
			e.handleNet(m)
		case <-joins:
			e.superviseSoon()
		case o := <-e.results:
			e.handleResult(o)
		case f := <-e.requests:
			f()
		case reason := <-e.resyncCh:
			e.resync(reason)
		case <-e.resyncTimer.C():
			e.armResync()
			e.safetyNet()
		case <-e.timer.C():
			e.reconcile()
			if now := e.clock.Now(); !e.superviseAt.IsZero() && !now.Before(e.superviseAt) {
				e.supervise(now)
			}
		case <-ctx.Done():
			cancel()
			<-saverDone
			return e.own.saveNow()
		}
	}
}

// armResync schedules the next safety-net resync; an interval of 0 turns
// it off, and anything under a second is a second.
func (e *Engine) armResync() {
	d := e.cfg.Daemon.ResyncInterval
	if d == 0 {
		e.resyncTimer.Stop()
		return
	}
	e.resyncTimer.Reset(max(d, time.Second))
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
			// The rtnetlink sockets keep only what carries the protocol
			// they were opened with.
			err = fmt.Errorf("routing.protocol cannot change on reload (%d to %d): restart mptcpgd, which then removes what the old protocol tagged", e.cfg.Routing.Protocol, cfg.Routing.Protocol)
			return
		}
		interval := e.cfg.Daemon.ResyncInterval
		e.sup.SetSettings(rejoinSettings(cfg, e.limits))
		if e.gate != nil {
			e.gate.timeout = cfg.Rejoin.GatewayTimeout
		}
		if cur := RoutingSettings(cfg); cur != e.owners[0] {
			// What the old table base or rule priority tagged is ours
			// until it is gone.
			e.owners = append(routingOwners{cur}, e.owners...)
		}
		e.cfg = cfg
		if cfg.Daemon.ResyncInterval != interval {
			e.armResync()
		}
		e.log.Info("configuration reloaded", logging.String("source", cfg.Source))
		e.resync("reload")
	}); cerr != nil {
		return cerr
	}
	return err
}
