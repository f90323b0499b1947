// Package daemon runs mptcpgd: it checks the kernel, opens the netlink
// sockets, starts the path manager and the live connection view, serves the
// control socket, and speaks systemd's readiness protocol. It holds no
// policy of its own; pkg/pm decides.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/connview"
	"github.com/mptcpgd/mptcpgd/pkg/control"
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
// naming the cause and the fix, when it cannot start.
func Run(ctx context.Context, o Options) error {
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

	k, err := openKernel(cfg)
	if err != nil {
		return err
	}
	defer k.close()
	lock, err := netnslock.Acquire(netnslock.Dir())
	if err != nil {
		return err
	}
	defer lock.Release()
	if networkManagerRunning() {
		log.Warn("NetworkManager is running; from version 1.40 it also manages MPTCP endpoints (connection.mptcp-flags) and the two will undo each other's work: " +
			"disable it there with `nmcli connection modify ID connection.mptcp-flags disabled` for each connection, or stop mptcpgd")
	}

	var summary atomic.Value
	summary.Store("starting")
	summaryChanged := make(chan struct{}, 1)
	engine, err := pm.New(pm.Options{
		Config:  cfg,
		Log:     log,
		MPTCP:   k.mptcp,
		Routing: k.rt,
		Network: k.rt,
		Watcher: k.watch,
		Store:   statefile.File{Path: o.StatePath},
		ARP:     readARP,
		OnSummary: func(s string) {
			summary.Store(s)
			select {
			case summaryChanged <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		return err
	}
	view := connview.New()

	ln, err := control.Listen(o.SocketPath)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	engineDone := make(chan error, 1)
	go func() { engineDone <- engine.Run(ctx) }()
	go connview.Follow(ctx, resyncOnLoss{k.events, engine}, func() ([]sockdiag.Connection, error) {
		return sockdiag.ListMPTCP(nil)
	}, view, log)
	go control.Serve(ctx, ln, func(ctx context.Context, cmd string) (any, error) {
		if cmd != "status" {
			return nil, fmt.Errorf("unknown command %q", cmd)
		}
		st, err := engine.Status(ctx)
		if err != nil {
			return nil, err
		}
		snap := view.Snapshot()
		return show.Report{Version: o.Version, Live: true, Status: st, Connections: &snap}, nil
	})

	notify := sdnotify.Notifier{}
	select {
	case <-engine.Ready():
	case err := <-engineDone:
		return err
	case <-ctx.Done():
		return nil
	}
	status := func() string {
		conns, subflows := view.Counts()
		return fmt.Sprintf("%s; %d connections, %d subflows", summary.Load(), conns, subflows)
	}
	last := status()
	if err := notify.Ready(last); err != nil {
		log.Warn("telling systemd we are ready failed", zap.Error(err))
	}
	log.Info("mptcpgd running", zap.String(logging.FieldConfig, cfg.Source), zap.String("version", o.Version))

	// STATUS= follows changes, at most one update per statusEvery, and
	// nothing wakes the daemon while nothing changes.
	const statusEvery = 2 * time.Second
	lastSent := time.Now()
	statusTimer := time.NewTimer(time.Hour)
	statusTimer.Stop()
	statusPending := false
	statusDue := func() {
		if statusPending {
			return
		}
		statusPending = true
		statusTimer.Reset(max(0, statusEvery-time.Since(lastSent)))
	}
	var watchdog <-chan time.Time
	if every, ok := notify.WatchdogInterval(); ok {
		t := time.NewTicker(every)
		defer t.Stop()
		watchdog = t.C
	}
	for {
		// While an update is due anyway, changes need not wake us: on a
		// busy server that is every event.
		var viewChanged <-chan struct{}
		if !statusPending {
			viewChanged = view.Changed()
		}
		select {
		case <-summaryChanged:
			statusDue()
		case <-viewChanged:
			statusDue()
		case <-statusTimer.C:
			statusPending = false
			lastSent = time.Now()
			if s := status(); s != last {
				last = s
				_ = notify.Status(s)
			}
		case <-watchdog:
			// Only an engine that still answers is alive.
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := engine.Status(wctx); err == nil {
				_ = notify.Watchdog()
			} else {
				log.Warn("path manager did not answer the watchdog check", zap.Error(err))
			}
			wcancel()
		case <-o.Reload:
			cfg = reload(ctx, o, cfg, engine, atomicLevel, log, notify, status)
		case err := <-engineDone:
			if err != nil {
				return err
			}
			return errors.New("path manager stopped unexpectedly")
		case <-ctx.Done():
			_ = notify.Stopping()
			log.Info("stopping")
			if err := <-engineDone; err != nil {
				log.Error("saving state on stop failed", zap.Error(err))
			}
			if cfg.Daemon.CleanupOnExit {
				cleanupOnExit(cfg, k, o.StatePath, log)
			}
			return nil
		}
	}
}

func reload(ctx context.Context, o Options, cur *config.Config, engine *pm.Engine, level zap.AtomicLevel, log *zap.Logger, notify sdnotify.Notifier, status func() string) *config.Config {
	_ = notify.Reloading()
	defer func() { _ = notify.Ready(status()) }()
	cfg, err := LoadConfig(o)
	if err == nil {
		err = checkFeatures(cfg)
	}
	if err == nil {
		err = engine.Reload(ctx, cfg)
	}
	if err != nil {
		log.Error("reload refused, keeping the running configuration", zap.Error(err))
		return cur
	}
	if o.LogLevel == "" {
		if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
			log.Warn("log level not changed", zap.Error(err))
		}
	}
	return cfg
}

func cleanupOnExit(cfg *config.Config, k *kernel, statePath string, log *zap.Logger) {
	rep, err := pm.Cleanup(cfg, k.mptcp, k.rt, k.rt, statefile.File{Path: statePath})
	log.Info("cleaned up on exit (cleanup_on_exit)", zap.Int("endpoints", len(rep.Endpoints)),
		zap.Int("rules", len(rep.Rules)), zap.Int("routes", len(rep.Routes)))
	if err != nil {
		log.Error("cleanup on exit incomplete", zap.Error(err))
	}
}

// resyncOnLoss passes MPTCP events on, and asks the path manager for a
// full resync when some were lost: an overflow means whatever else happened
// meanwhile may have gone unnoticed too.
type resyncOnLoss struct {
	src    connview.EventSource
	engine *pm.Engine
}

func (r resyncOnLoss) Receive(ctx context.Context) ([]netlinkmptcp.Event, error) {
	evs, err := r.src.Receive(ctx)
	if errors.Is(err, netlinkmptcp.ErrEventsLost) {
		r.engine.Resync("MPTCP events lost")
	}
	return evs, err
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
func openKernel(cfg *config.Config) (*kernel, error) {
	k := &kernel{}
	var err error
	if k.mptcp, err = netlinkmptcp.Dial(nil); err != nil {
		return nil, err
	}
	if err := netlinkmptcp.CheckEnabled(); err != nil {
		k.close()
		return nil, err
	}
	if err := checkFeatures(cfg); err != nil {
		k.close()
		return nil, err
	}
	if k.events, err = netlinkmptcp.ListenEvents(nil); err != nil {
		k.close()
		return nil, err
	}
	filter := rtnl.Config{Filter: rtnl.Filter{Protocol: cfg.Routing.Protocol}}
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

// checkFeatures refuses endpoint flags the running kernel does not know:
// newer kernels drop unknown bits silently, so the endpoint would not be
// what the configuration says.
func checkFeatures(cfg *config.Config) error {
	f, err := netlinkmptcp.KernelFeatures()
	if err != nil {
		return err
	}
	if err := f.CheckFlags(cfg.Endpoints.Flags); err != nil {
		return fmt.Errorf("%s: endpoints.flags: %w", cfg.Source, err)
	}
	for i, in := range cfg.Interfaces {
		if in.Flags == nil {
			continue
		}
		if err := f.CheckFlags(*in.Flags); err != nil {
			return fmt.Errorf("%s: interface[%d].flags: %w", cfg.Source, i+1, err)
		}
	}
	return nil
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
