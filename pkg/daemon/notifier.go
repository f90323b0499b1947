package daemon

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"

	"github.com/mptcpgd/mptcpgd/pkg/connview"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
	"github.com/mptcpgd/mptcpgd/pkg/sdnotify"
)

// statusEvery is the shortest time between two STATUS= updates: on a busy
// server the connection counts change with every event.
const statusEvery = 2 * time.Second

// statusLine is the one line systemd shows for us: the path manager's
// summary and the connection view's counts, of the connections this host
// opened (the others are not followed).
type statusLine struct {
	summary atomic.Value
	changed chan struct{}
	view    *connview.View
}

func newStatusLine(view *connview.View) *statusLine {
	s := &statusLine{changed: make(chan struct{}, 1), view: view}
	s.summary.Store("starting")
	return s
}

// setSummary is the path manager's OnSummary.
func (s *statusLine) setSummary(summary string) {
	s.summary.Store(summary)
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *statusLine) String() string {
	conns, subflows := s.view.Counts()
	return fmt.Sprintf("%s; %d outgoing connections, %d subflows", s.summary.Load(), conns, subflows)
}

// notifier speaks systemd's notify protocol: READY=1 once the path manager
// has applied its first reconcile and the connection view follows events
// (so that every connection opened after READY has its joins counted),
// STATUS= as things change (at most once per statusEvery, and nothing wakes
// it while nothing changes), WATCHDOG=1 while the path manager answers,
// STOPPING=1 on the way out.
type notifier struct {
	notify sdnotify.Notifier
	// ready are closed when the daemon is ready: the path manager's
	// first reconcile, the connection view's first read.
	ready  []<-chan struct{}
	log    *logging.Logger
	engine *pm.Engine
	status *statusLine
	// onReady runs once READY=1 is sent.
	onReady func()
}

func (n *notifier) run(ctx context.Context) error {
	for _, ready := range n.ready {
		select {
		case <-ready:
		case <-ctx.Done():
			return nil
		}
	}
	last := n.status.String()
	if err := n.notify.Ready(last); err != nil {
		n.log.Warn("telling systemd we are ready failed", logging.Error(err))
	}
	n.onReady()

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
	if every, ok := n.notify.WatchdogInterval(); ok {
		t := time.NewTicker(every)
		defer t.Stop()
		watchdog = t.C
	}
	for {
		// While an update is due anyway, changes need not wake us.
		var viewChanged <-chan struct{}
		if !statusPending {
			viewChanged = n.status.view.Changed()
		}
		select {
		case <-n.status.changed:
			statusDue()
		case <-viewChanged:
			statusDue()
		case <-statusTimer.C:
			statusPending = false
			lastSent = time.Now()
			if s := n.status.String(); s != last {
				last = s
				_ = n.notify.Status(s)
			}
		case <-watchdog:
			// Only a path manager that still answers is alive.
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := n.engine.Status(wctx); err == nil {
				_ = n.notify.Watchdog()
			} else if ctx.Err() == nil {
				n.log.Warn("path manager did not answer the watchdog check", logging.Error(err))
			}
			cancel()
		case <-ctx.Done():
			_ = n.notify.Stopping()
			n.log.Info("stopping")
			return nil
		}
	}
}
