package daemon

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/nmdbus"
	"github.com/mptcpgd/mptcpgd/pkg/nmpolicy"
)

// networkManager follows NetworkManager over D-Bus and tells the path
// manager which interfaces it manages MPTCP on; without a system bus or
// without NetworkManager it changes nothing.
type networkManager struct {
	log *logging.Logger
	// config is the configuration in effect (the reloader's).
	config func() *config.Config
	// leaveTo is the path manager's LeaveTo.
	leaveTo func(ctx context.Context, left map[string]string, asOf time.Time) error
	// watch follows NetworkManager until ctx is done or the bus is lost,
	// reading at once when refresh receives; nil means nmdbus on the
	// system bus.
	watch func(ctx context.Context, refresh <-chan struct{}, onChange func(nmpolicy.Report), onError func(error)) error
	// refresh asks the watch for a read now (the path manager's
	// AskNetworkManager); nil never asks.
	refresh chan struct{}

	report atomic.Pointer[nmpolicy.Report]
	// grace is how long an interface NetworkManager stopped managing MPTCP
	// on stays left to it (nmReleaseGrace when 0).
	grace time.Duration

	mu sync.Mutex
	// seen are the devices with MPTCP on already logged, by interface.
	seen map[string]nmpolicy.DeviceVerdict
	// offSince is when NetworkManager's verdict for a seen device turned
	// off, while the device is still held for grace.
	offSince map[string]time.Time
}

// nmReleaseGrace is how long a device NetworkManager managed MPTCP on stays
// left to it after its verdict turns off: a reapply takes the device's
// default route away for a moment, and taking the device then would add an
// endpoint that NetworkManager removes when the route is back.
const nmReleaseGrace = 5 * time.Second

// Report is what NetworkManager does with MPTCP, as last read; nil when it
// was never reached.
func (n *networkManager) Report() *nmpolicy.Report { return n.report.Load() }

// nmRetryMax caps the wait between two attempts to reach a system bus that
// went away.
const nmRetryMax = 5 * time.Minute

func (n *networkManager) run(ctx context.Context) error {
	watch := n.watch
	if watch == nil {
		watch = watchSystemBus
	}
	wait := time.Second
	for {
		reached := false
		err := watch(ctx, n.refresh, func(r nmpolicy.Report) {
			reached = true
			n.changed(ctx, r)
		}, func(err error) {
			n.log.Debug("reading NetworkManager's devices failed; trying again at its next change", logging.Error(err))
		})
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errNoSystemBus) && n.Report() == nil {
			// No bus at start (or one that refuses us): nothing will
			// change that under us.
			if networkManagerRunning() {
				n.log.Warn("NetworkManager runs, but the D-Bus system bus cannot be used to ask it which interfaces it manages MPTCP on: they are managed as if it did not run, and the two may undo each other's work",
					logging.Error(err), logging.String("fix", "run the service as the static user of /etc/sysusers.d/mptcpgd.conf (dbus-daemon drops dynamic users' connections), or set connection.mptcp-flags disabled in NetworkManager's profiles"))
			} else {
				n.log.Info("not following NetworkManager: no D-Bus system bus", logging.Error(err))
			}
			<-ctx.Done()
			return nil
		}
		n.log.Debug("lost the D-Bus system bus; trying again", logging.Error(err), logging.Duration("in", wait))
		n.changed(ctx, nmpolicy.Report{})
		if reached {
			wait = time.Second
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
		wait = min(2*wait, nmRetryMax)
	}
}

// networkManagerAtStart reads once, before the path manager's first
// decision, the interfaces on which NetworkManager manages MPTCP, so that
// the path manager never touches them, not even until the follower's first
// report; and when that read began (zero if NetworkManager does not run).
// It says nothing: the follower does.
func networkManagerAtStart(ctx context.Context) (map[string]string, time.Time) {
	r, err := nmdbus.Dial(nmdbus.DefaultFiles)
	if err != nil {
		return nil, time.Time{}
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(ctx, nmdbus.CallTimeout)
	defer cancel()
	rep, err := r.Read(ctx)
	if err != nil {
		return nil, time.Time{}
	}
	return rep.Left(), asOf(rep)
}

var errNoSystemBus = errors.New("no D-Bus system bus")

func watchSystemBus(ctx context.Context, refresh <-chan struct{}, onChange func(nmpolicy.Report), onError func(error)) error {
	r, err := nmdbus.Dial(nmdbus.DefaultFiles)
	if err != nil {
		return errors.Join(errNoSystemBus, err)
	}
	defer r.Close()
	return r.Watch(ctx, refresh, onChange, onError)
}

// newRefresh returns the channel that asks the follower for a read, and the
// path manager's side of it, which never blocks: one pending ask is enough.
func newRefresh() (chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	return ch, func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// asOf is the report's read time when NetworkManager runs, the path
// manager's LeftAsOf: zero when there is no NetworkManager to wait for.
func asOf(r nmpolicy.Report) time.Time {
	if !r.Running {
		return time.Time{}
	}
	return r.ReadAt
}

// changed takes in a new report: one log line per device whose verdict
// changed, and the new set for the path manager.
func (n *networkManager) changed(ctx context.Context, r nmpolicy.Report) {
	n.mu.Lock()
	defer n.mu.Unlock()
	prev := n.report.Swap(&r)
	if prev == nil || prev.Running != r.Running {
		switch {
		case r.Running:
			n.log.Info("NetworkManager runs", logging.String("version", r.Version), logging.Int("mptcp_devices", len(r.MPTCPOn())))
		case prev != nil:
			n.log.Info("NetworkManager stopped")
		default:
			n.log.Debug("NetworkManager does not run; following the bus for it to start")
		}
	}
	leave := n.config().LeaveToNetworkManager()
	on := map[string]nmpolicy.DeviceVerdict{}
	for _, d := range r.MPTCPOn() {
		on[d.Interface] = d
		if n.seen[d.Interface] == d {
			continue
		}
		if leave {
			n.log.Info("leaving the interface to NetworkManager, which manages MPTCP endpoints on it",
				logging.String(logging.FieldIface, d.Interface), logging.String("reason", d.Reason),
				logging.String("manage_anyway", "[networkmanager] mptcp_devices = \"manage\", after "+nmpolicy.DisableCommand(d.Profile)))
		} else {
			n.log.Warn("NetworkManager manages MPTCP endpoints on this interface too, and removes ours when it reapplies: turn its MPTCP handling off",
				logging.String(logging.FieldIface, d.Interface), logging.String("reason", d.Reason),
				logging.String("command", nmpolicy.DisableCommand(d.Profile)))
		}
	}
	left := r.Left()
	now := time.Now()
	grace := cmp.Or(n.grace, nmReleaseGrace)
	for iface, d := range n.seen {
		if _, ok := on[iface]; ok {
			delete(n.offSince, iface)
			continue
		}
		since, held := n.offSince[iface]
		if !held {
			since = now
		}
		if r.Running && now.Sub(since) < grace {
			if n.offSince == nil {
				n.offSince = map[string]time.Time{}
			}
			n.offSince[iface] = since
			on[iface] = d
			left[iface] = "left to NetworkManager: " + d.Reason + "; it stopped a moment ago (a reapply?), taken back after " + grace.String()
			if !held {
				// Look again once the grace is over, whether or not
				// NetworkManager says anything meanwhile: one look per
				// device held.
				time.AfterFunc(grace, func() {
					if cur := n.report.Load(); cur != nil && ctx.Err() == nil {
						n.changed(ctx, *cur)
					}
				})
			}
			continue
		}
		delete(n.offSince, iface)
		n.log.Info("NetworkManager no longer manages MPTCP on the interface", logging.String(logging.FieldIface, iface))
	}
	n.seen = on
	if err := n.leaveTo(ctx, left, asOf(r)); err != nil && ctx.Err() == nil {
		n.log.Warn("telling the path manager about NetworkManager's interfaces failed", logging.Error(err))
	}
}
