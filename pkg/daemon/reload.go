package daemon

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/mptcpgd/mptcpgd/pkg/logging"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
	"github.com/mptcpgd/mptcpgd/pkg/sdnotify"
)

// reloader applies a changed configuration on SIGHUP. It reads and checks
// the file on its own goroutine, so the path manager and the watchdog carry
// on meanwhile; a refused configuration keeps the running one.
type reloader struct {
	opts    Options
	engine  *pm.Engine
	level   logging.AtomicLevel
	log     *logging.Logger
	notify  sdnotify.Notifier
	status  *statusLine
	mu      sync.Mutex
	current atomic.Pointer[config.Config]
}

func (r *reloader) run(ctx context.Context) error {
	for {
		select {
		case <-r.opts.Reload:
			_ = r.reload(ctx)
		case <-ctx.Done():
			return nil
		}
	}
}

// reload loads the configuration file again and applies it, telling
// systemd around it. It returns why a configuration was refused.
func (r *reloader) reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.notify.Reloading()
	defer func() { _ = r.notify.Ready(r.status.String()) }()
	cfg, err := LoadConfig(r.opts)
	if err == nil {
		var warnings []string
		warnings, err = Validate(cfg)
		for _, w := range warnings {
			r.log.Warn(w)
		}
	}
	if err == nil {
		err = r.engine.Reload(ctx, cfg)
	}
	if err != nil {
		r.log.Error("reload refused, keeping the running configuration", logging.Error(err))
		return err
	}
	r.current.Store(cfg)
	if r.opts.LogLevel == "" {
		if err := r.level.SetLevelText(cfg.Log.Level); err != nil {
			r.log.Warn("log level not changed", logging.Error(err))
		}
	}
	return nil
}
