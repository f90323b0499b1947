// Package daemon runs mptcpgd: it checks the kernel, opens the netlink
// sockets, starts the path manager and the live connection view, serves the
// control socket, and speaks systemd's readiness protocol. It holds no
// policy of its own; pkg/pm decides.
package daemon

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/connview"
	"github.com/mptcpgd/mptcpgd/pkg/control"
	"github.com/mptcpgd/mptcpgd/pkg/daemonmetrics"
	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netnslock"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
	"github.com/mptcpgd/mptcpgd/pkg/rtnl"
	"github.com/mptcpgd/mptcpgd/pkg/sdnotify"
	"github.com/mptcpgd/mptcpgd/pkg/show"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

// Options are the command line's.
type Options struct {
	ConfigPath string
	// ConfigExplicit: the path was named by the user, so it must exist.
	ConfigExplicit bool
	SocketPath     string
	StatePath      string
	// LogLevel overrides the configuration's [log] level when set.
	LogLevel string
	Stderr   io.Writer
	Version  string
	// Reload receives a value for each SIGHUP.
	Reload <-chan struct{}
}

// LoadConfig loads the configuration the options name.
func LoadConfig(o Options) (*config.Config, error) {
	return config.Load(o.ConfigPath, o.ConfigExplicit)
}

// Run runs the daemon until ctx is done. It returns an error, one sentence
// naming the cause and the fix, when it cannot start, and the failed part's
// error when one stops.
func Run(ctx context.Context, o Options) error {
	tuneRuntime()
	cfg, err := LoadConfig(o)
	if err != nil {
		return err
	}
	level := cfg.Log.Level
	if o.LogLevel != "" {
		level = o.LogLevel
	}
	log, atomicLevel, err := logging.New(logging.Options{Level: level, Format: cfg.Log.Format, Stderr: o.Stderr})
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	k, err := openKernel(cfg, routingFilter(cfg, o.StatePath))
	if err != nil {
		return err
	}
	defer k.close()
	warnings, err := Validate(cfg)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	lock, err := netnslock.Acquire(netnslock.Dir())
	if err != nil {
		return err
	}
	defer lock.Release()
	if err := config.ServiceCanRead(cfg.Source); err != nil {
		log.Warn("the service's own user may not read the configuration file", logging.Error(err))
	}

	view := connview.New()
	hub := newMetricsHub(cfg.Metrics, view, k.rt, log)
	status := newStatusLine(view)
	nmLeft, nmAsOf := networkManagerAtStart(ctx)
	nmRefresh, askNetworkManager := newRefresh()
	engine, err := pm.New(pm.Options{
		Config:            cfg,
		Log:               log,
		MPTCP:             daemonmetrics.TimedMPTCP{MPTCP: k.mptcp, M: hub.m},
		Routing:           daemonmetrics.TimedRouting{Routing: k.rt, M: hub.m},
		Metrics:           hub.m,
		Network:           k.rt,
		Watcher:           k.watch,
		Store:             statefile.File{Path: o.StatePath},
		ARP:               readARP,
		Enabled:           netlinkmptcp.CheckEnabled,
		Neighbours:        k.rt,
		Connections:       view,
		OnSummary:         status.setSummary,
		Left:              nmLeft,
		LeftAsOf:          nmAsOf,
		AskNetworkManager: askNetworkManager,
		Competitor: func() string {
			if networkManagerRunning() {
				return "NetworkManager is running (it removes endpoints it does not want on reapply: connection.mptcp-flags)"
			}
			return ""
		},
	})
	if err != nil {
		return err
	}
	hub.engine = engine
	outputs, err := hub.tasks()
	if err != nil {
		return err
	}
	ln, err := control.Listen(o.SocketPath)
	if err != nil {
		return err
	}
	notify := sdnotify.Notifier{}
	rl := &reloader{opts: o, engine: engine, level: atomicLevel, log: log, notify: notify, status: status}
	rl.current.Store(cfg)
	nm := &networkManager{log: log, config: rl.current.Load, leaveTo: engine.LeaveTo, refresh: nmRefresh}
	n := &notifier{notify: notify, ready: []<-chan struct{}{engine.Ready(), view.Following()}, log: log, engine: engine, status: status, onReady: func() {
		log.Info("mptcpgd running", logging.String(logging.FieldConfig, cfg.Source), logging.String("version", o.Version))
	}}

	err = runTasks(ctx, log, append(outputs,
		task{"path manager", engine.Run},
		task{"connection view", followConnections(k, engine, view, log)},
		task{"control socket", func(ctx context.Context) error {
			return control.Serve(ctx, ln, controlHandler(o.Version, engine, view, rl, nm, hub))
		}},
		task{"systemd notifier", n.run},
		task{"reloader", rl.run},
		task{"NetworkManager follower", nm.run},
	)...)
	if cur := rl.current.Load(); cur.Daemon.CleanupOnExit {
		cleanupOnExit(cur, k, o.StatePath, log)
	}
	return err
}

// followConnections keeps the live connection view in line with the MPTCP
// events, rebuilt from sock_diag after a loss.
func followConnections(k *kernel, engine *pm.Engine, view *connview.View, log *logging.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		connview.Follow(ctx, resyncOnLoss{k.events, engine}, func() ([]sockdiag.Connection, error) {
			return sockdiag.ListMPTCP(nil)
		}, view, log)
		return nil
	}
}

// controlHandler answers the control socket's commands.
func controlHandler(version string, engine *pm.Engine, view *connview.View, rl *reloader, nm *networkManager, hub *metricsHub) control.Handler {
	return func(ctx context.Context, cmd string) (any, error) {
		switch cmd {
		case control.Status:
			st, err := engine.Status(ctx)
			if err != nil {
				return nil, err
			}
			snap := liveConnections(view)
			return show.Report{Version: version, Live: true, Status: st, Connections: &snap, NetworkManager: nm.Report()}, nil
		case control.Reload:
			// Same path as SIGHUP; the verdict goes back to `mptcpgd
			// reload`, so systemctl reload fails when it is refused.
			return nil, rl.reload(ctx)
		case control.Adopt:
			return engine.Adopt(ctx)
		case control.Rejoin:
			return nil, engine.RetryJoins(ctx)
		case control.Metrics:
			text, err := hub.gather(ctx)
			return string(text), err
		}
		return nil, fmt.Errorf("unknown command %q", cmd)
	}
}

// liveConnections is the connection view completed with the connections
// and listeners the kernel lists now: the view follows only the
// connections this host opened.
func liveConnections(view *connview.View) connview.Snapshot {
	conns, err := sockdiag.ListMPTCP(nil)
	var listeners []netip.AddrPort
	if err == nil {
		listeners, err = sockdiag.ListMPTCPListeners(nil)
	}
	if err != nil {
		snap := view.Snapshot()
		snap.Complete = false
		snap.IncompleteReason = fmt.Sprintf("only the connections this host opened, no listeners: %v", err)
		return snap
	}
	return view.SnapshotWith(conns, listeners)
}

func cleanupOnExit(cfg *config.Config, k *kernel, statePath string, log *logging.Logger) {
	rep, err := pm.Cleanup(cfg, k.mptcp, k.rt, k.rt, statefile.File{Path: statePath})
	log.Info("cleaned up on exit (cleanup_on_exit)", logging.Int("endpoints", len(rep.Endpoints)),
		logging.Int("rules", len(rep.Rules)), logging.Int("routes", len(rep.Routes)))
	if err != nil {
		log.Error("cleanup on exit incomplete", logging.Error(err))
	}
}

// resyncOnLoss passes MPTCP events on, and asks the path manager for a
// full resync when some were lost: an overflow means whatever else happened
// meanwhile may have gone unnoticed too.
type resyncOnLoss struct {
	src    *netlinkmptcp.Events
	engine *pm.Engine
}

func (r resyncOnLoss) Run(ctx context.Context, h netlinkmptcp.EventHandler) error {
	return r.src.Run(ctx, lossResync{h, r.engine})
}

type lossResync struct {
	netlinkmptcp.EventHandler
	engine *pm.Engine
}

func (l lossResync) Lost(err error) {
	l.engine.Resync("MPTCP events lost")
	l.EventHandler.Lost(err)
}

// kernel holds the netlink sockets the daemon uses.
type kernel struct {
	mptcp  *netlinkmptcp.Client
	events *netlinkmptcp.Events
	rt     *rtnl.Conn
	watch  *rtnl.Watcher
}

// openKernel checks that this kernel and this process can do the job, and
// opens the sockets. Each refusal is one sentence with its fix.
func openKernel(cfg *config.Config, keep rtnl.Filter) (*kernel, error) {
	k := &kernel{}
	var err error
	if k.mptcp, err = netlinkmptcp.Dial(nil); err != nil {
		return nil, err
	}
	if err := netlinkmptcp.CheckEnabled(); err != nil {
		k.close()
		return nil, err
	}
	if k.events, err = netlinkmptcp.ListenEvents(connview.ListenConfig(0)); err != nil {
		k.close()
		return nil, err
	}
	filter := rtnl.Config{Filter: keep}
	if k.rt, err = rtnl.Dial(filter); err != nil {
		k.close()
		return nil, err
	}
	// Subscribed before the engine's first dump, so nothing in between is
	// missed.
	if k.watch, err = rtnl.Watch(filter, k.rt.PID()); err != nil {
		k.close()
		return nil, err
	}
	return k, nil
}

func (k *kernel) close() {
	if k.watch != nil {
		_ = k.watch.Close()
	}
	if k.rt != nil {
		_ = k.rt.Close()
	}
	if k.events != nil {
		_ = k.events.Close()
	}
	if k.mptcp != nil {
		_ = k.mptcp.Close()
	}
}

// networkManagerRunning tells whether NetworkManager runs, from its pid
// file (the unit's ProtectProc hides other processes' /proc entries, but
// signal 0 still answers).
func networkManagerRunning() bool {
	b, err := os.ReadFile("/run/NetworkManager/NetworkManager.pid")
	if err != nil {
		return false
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 {
		return false
	}
	return processAlive(pid)
}
