package daemon

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/nmdbus"
	"github.com/mptcpgd/mptcpgd/pkg/nmpolicy"
)

// leaveCalls records what the path manager is told.
type leaveCalls struct {
	mu    sync.Mutex
	calls []map[string]string
	asOf  []time.Time
}

func (l *leaveCalls) leaveTo(_ context.Context, left map[string]string, asOf time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, left)
	l.asOf = append(l.asOf, asOf)
	return nil
}

func (l *leaveCalls) last() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.calls) == 0 {
		return nil
	}
	return l.calls[len(l.calls)-1]
}

// Without a system bus (this host has none, or the test points the
// address at nothing) the follower says so once, leaves every interface to
// the configuration, and keeps running until the daemon stops.
func TestNetworkManagerWithoutSystemBus(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "system_bus_socket"))
	core, logs := observer.New(zapcore.DebugLevel)
	var calls leaveCalls
	nm := &networkManager{log: logging.NewLogger(core), config: config.Default, leaveTo: calls.leaveTo}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nm.run(ctx) }()
	for logs.Len() == 0 {
		select {
		case err := <-done:
			t.Fatalf("the follower stopped before the daemon did: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v, want nil: no bus is no reason to stop the daemon", err)
	}
	entries := logs.AllUntimed()
	if len(entries) != 1 || entries[0].Level != zapcore.InfoLevel || !strings.Contains(entries[0].Message, "no D-Bus system bus") {
		t.Errorf("logged %v, want one info line saying there is no system bus", entries)
	}
	if left := calls.last(); len(left) != 0 {
		t.Errorf("told the path manager to leave %v", left)
	}
	if _, err := nmdbus.Dial(nmdbus.DefaultFiles); err == nil {
		t.Error("nmdbus.Dial found a bus at a path that does not exist")
	}
}

// NetworkManager starting with MPTCP on eth1, then the bus going away: the
// path manager hears of eth1 (its configuration, which a reload may change,
// decides whether to leave it), then of nothing. The log says once that
// eth1 is left, or with mptcp_devices = "manage" names the nmcli command.
func TestNetworkManagerFollowed(t *testing.T) {
	readAt := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	running := nmpolicy.Report{Running: true, Version: "1.42.4", ReadAt: readAt, Devices: []nmpolicy.DeviceVerdict{
		{Interface: "eth0", Profile: "lan", Flags: "disabled", Reason: "profile 'lan' has mptcp-flags disabled"},
		{Interface: "eth1", Profile: "wired1", On: true, Flags: "enabled,subflow", Reason: "profile 'wired1' has mptcp-flags enabled,subflow"},
	}}
	for _, manage := range []bool{false, true} {
		cfg := config.Default()
		if manage {
			cfg.NetworkManager.MPTCPDevices = config.NMManage
		}
		core, logs := observer.New(zapcore.InfoLevel)
		var calls leaveCalls
		ctx, cancel := context.WithCancel(context.Background())
		var seen []map[string]string
		nm := &networkManager{log: logging.NewLogger(core), config: func() *config.Config { return cfg }, leaveTo: calls.leaveTo,
			watch: func(ctx context.Context, _ <-chan struct{}, onChange func(nmpolicy.Report), _ func(error)) error {
				if len(seen) > 0 {
					seen = append(seen, calls.last())
					cancel()
					return nil
				}
				onChange(running)
				seen = append(seen, calls.last())
				onChange(running)
				return nmdbus.ErrClosed
			}}
		if err := nm.run(ctx); err != nil {
			t.Fatalf("run: %v", err)
		}
		want := "left to NetworkManager: profile 'wired1' has mptcp-flags enabled,subflow"
		if got := seen[0]["eth1"]; got != want || len(seen[0]) != 1 {
			t.Errorf("manage=%v: path manager told %v, want eth1 %q", manage, seen[0], want)
		}
		// New addresses wait for a look at NetworkManager begun after
		// them while it runs, and for nothing once it is gone.
		if n := len(calls.asOf); n < 2 || !calls.asOf[0].Equal(readAt) || !calls.asOf[n-1].IsZero() {
			t.Errorf("manage=%v: the path manager was told the looks began at %v, want %v, then zero", manage, calls.asOf, readAt)
		}
		if len(seen) != 2 || len(seen[1]) != 0 || logs.FilterMessage("NetworkManager stopped").Len() != 1 {
			t.Errorf("manage=%v: after the bus went away the path manager was told %v; logs %v", manage, seen, logs.AllUntimed())
		}
		warned := logs.FilterMessageSnippet("turn its MPTCP handling off").AllUntimed()
		left := logs.FilterMessageSnippet("leaving the interface to NetworkManager").AllUntimed()
		if manage && (len(warned) != 1 || warned[0].ContextMap()["command"] != "nmcli connection modify 'wired1' connection.mptcp-flags disabled" || len(left) != 0) {
			t.Errorf("manage: warned %v, left %v; want one warning with the nmcli command", warned, left)
		}
		if !manage && (len(left) != 1 || len(warned) != 0) {
			t.Errorf("leave: left %v, warned %v; want one line for eth1, logged once for the same report twice", left, warned)
		}
	}
}

// A reapply takes a device's default route away for a moment, and with it
// NetworkManager's MPTCP verdict: the device stays left to NetworkManager
// for the grace, so that mptcpgd adds no endpoint NetworkManager removes a
// moment later; a verdict that stays off past the grace releases it.
func TestNetworkManagerReapplyIsNotARelease(t *testing.T) {
	on := nmpolicy.DeviceVerdict{Interface: "eth1", Profile: "wired1", On: true, Flags: "enabled,subflow", Reason: "profile 'wired1' has mptcp-flags enabled,subflow"}
	off := on
	off.On, off.Reason = false, "profile 'wired1' has mptcp-flags enabled,subflow, off without a default route from NetworkManager"
	report := func(d nmpolicy.DeviceVerdict) nmpolicy.Report {
		return nmpolicy.Report{Running: true, Version: "1.42.4", Devices: []nmpolicy.DeviceVerdict{d}}
	}
	core, logs := observer.New(zapcore.InfoLevel)
	var calls leaveCalls
	cfg := config.Default()
	nm := &networkManager{log: logging.NewLogger(core), config: func() *config.Config { return cfg }, leaveTo: calls.leaveTo, grace: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	nm.changed(ctx, report(on))
	nm.changed(ctx, report(off))
	if _, ok := calls.last()["eth1"]; !ok {
		t.Fatalf("a moment after NetworkManager's verdict turned off, eth1 was taken: path manager told %v", calls.last())
	}
	nm.changed(ctx, report(on))
	if logs.FilterMessage("NetworkManager no longer manages MPTCP on the interface").Len() != 0 {
		t.Errorf("a verdict off for a moment was logged as a release: %v", logs.AllUntimed())
	}

	nm.grace = time.Nanosecond
	nm.changed(ctx, report(off))
	time.Sleep(time.Millisecond)
	nm.changed(ctx, report(off))
	if _, ok := calls.last()["eth1"]; ok {
		t.Errorf("past the grace eth1 is still left to NetworkManager: %v", calls.last())
	}
	if n := logs.FilterMessage("NetworkManager no longer manages MPTCP on the interface").Len(); n != 1 {
		t.Errorf("%d release lines, want 1", n)
	}
}
