//go:build guest

package systemd_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/guest"
	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// The installed unit under a real systemd (Debian 12's 252, the guest's
// PID 1), driven as an administrator drives it. The guest's own network
// namespace is the client of a lab topology: uplinks eth1 and eth2 to a
// router (DHCP-style default routes) and a server behind it.

const (
	service    = "mptcpgd.service"
	configFile = "/etc/mptcpgd.toml"
	// guestWait bounds waits in the guest, which runs under software
	// emulation beside other work; it asserts nothing about speed.
	guestWait = 90 * time.Second
)

// baseConfig manages the two uplinks (lo is excluded by default).
const baseConfig = `
[limits]
subflows = 4
add_addr_accepted = 4

[endpoints]
flags = ["subflow"]
families = ["ipv4"]
`

// backupConfig makes eth2's endpoint a backup.
const backupConfig = baseConfig + `
[[interface]]
match = "eth2"
flags = ["subflow", "backup"]
`

// badConfig is refused: a limit above the kernel's 8.
const badConfig = `
[limits]
subflows = 99
add_addr_accepted = 4

[endpoints]
flags = ["subflow"]
families = ["ipv4"]
`

func TestGuestSystemdUnit(t *testing.T) {
	guest.Install(t)
	top := lab.NewTopology(t, lab.TopologyOptions{Variant: lab.DHCP, Client: lab.Machine(t), RateMbit: 20, Checksums: true})
	top.Server.IP("mptcp", "limits", "set", "subflows", "4", "add_addr_accepted", "4")
	writeConfig(t, baseConfig)
	t.Cleanup(func() {
		_, _ = guest.Run("systemctl", "stop", service)
		_, _ = guest.Run("/usr/local/sbin/mptcpgd", "cleanup")
	})
	eth1, eth2 := top.Uplinks[0].Addr4, top.Uplinks[1].Addr4

	t.Run("start reaches active after READY=1 with the endpoints in place", func(t *testing.T) {
		if got := guest.Property(t, service, "Type"); got != "notify" {
			t.Fatalf("Type=%s, want notify: systemctl start would not wait for READY=1", got)
		}
		// With Type=notify, systemctl start returns once the daemon sent
		// READY=1: the endpoints must be in the kernel by then.
		guest.Must(t, "systemctl", "start", service)
		eps := endpoints(t)
		for _, a := range []netip.Addr{eth1, eth2} {
			if _, ok := eps[a]; !ok {
				t.Errorf("when systemctl start returned, no endpoint for %s: %v", a, eps)
			}
		}
		if got := guest.Property(t, service, "ActiveState"); got != "active" {
			t.Errorf("ActiveState=%s after start, want active", got)
		}
		if status := guest.Property(t, service, "StatusText"); !strings.Contains(status, "endpoint") {
			t.Errorf("STATUS= %q, want a line that counts endpoints", status)
		}
	})

	t.Run("journalctl -u mptcpgd IFACE=eth1", func(t *testing.T) {
		ensureRunning(t)
		text := guest.Must(t, "journalctl", "--no-pager", "-u", "mptcpgd", "IFACE=eth1")
		if !strings.Contains(text, "endpoint added") {
			t.Errorf("journalctl -u mptcpgd IFACE=eth1 lacks the endpoint's line:\n%s", text)
		}
		entries := guest.Journal(t, "-u", "mptcpgd", "IFACE=eth1")
		added := false
		for _, e := range entries {
			if e.Field("IFACE") != "eth1" {
				t.Errorf("entry with IFACE=%q among IFACE=eth1's: %v", e.Field("IFACE"), e)
			}
			added = added || strings.Contains(e.Field("MESSAGE"), "endpoint added") && e.Field("ADDR") == eth1.String() && e.Field("ENDPOINT_ID") != ""
		}
		if !added {
			t.Errorf("no \"endpoint added\" entry with ADDR=%s and ENDPOINT_ID among the IFACE=eth1 entries: %v", eth1, entries)
		}
	})

	t.Run("reload applies a good configuration and refuses a bad one visibly", func(t *testing.T) {
		ensureRunning(t)
		pid := guest.Property(t, service, "MainPID")
		before := endpoints(t)
		t.Cleanup(func() {
			writeConfig(t, baseConfig)
			_, _ = guest.Run("systemctl", "reload", service)
		})

		writeConfig(t, backupConfig)
		if out, err := guest.Run("systemctl", "reload", service); err != nil {
			t.Fatalf("systemctl reload with a good configuration: %v\n%s", err, out)
		}
		lab.WaitFor(t, guestWait, "eth2's endpoint to become a backup", func() error {
			if e := endpoints(t)[eth2]; e.Flags&netlinkmptcp.FlagBackup == 0 {
				return fmt.Errorf("eth2's endpoint %v", e)
			}
			return nil
		})
		after := endpoints(t)
		for a, e := range before {
			if after[a].ID != e.ID {
				t.Errorf("the reload changed %s's endpoint id %d -> %d", a, e.ID, after[a].ID)
			}
		}

		refusals := countMessages(t, "reload refused, keeping the running configuration")
		writeConfig(t, badConfig)
		out, err := guest.Run("systemctl", "reload", service)
		if err == nil {
			t.Errorf("systemctl reload with a bad configuration exited 0; want a failure the administrator sees:\n%s", out)
		}
		lab.WaitFor(t, guestWait, "the daemon to log that it refused the reload", func() error {
			if n := countMessages(t, "reload refused, keeping the running configuration"); n == refusals {
				return fmt.Errorf("%d refusals logged", n)
			}
			return nil
		})
		if got := guest.Property(t, service, "ActiveState"); got != "active" {
			t.Errorf("after the refused reload ActiveState=%s, want active", got)
		}
		if got := guest.Property(t, service, "MainPID"); got != pid {
			t.Errorf("after the reloads MainPID %s, want %s: the daemon restarted", got, pid)
		}
		if e := endpoints(t)[eth2]; e.Flags&netlinkmptcp.FlagBackup == 0 || e.ID != after[eth2].ID {
			t.Errorf("after the refused reload eth2's endpoint is %v; want %v kept", e, after[eth2])
		}
	})

	t.Run("the watchdog restarts a hung daemon", func(t *testing.T) {
		// A short watchdog, and no long wait for a hung process to abort.
		guest.DropIn(t, service, "watchdog-test", "[Service]\nWatchdogSec=5s\nTimeoutAbortSec=5s\nRestartSec=1s\n")
		guest.Must(t, "systemctl", "restart", service)
		before := endpoints(t)
		pid, restarts := mainPID(t), nRestarts(t)
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		lab.WaitFor(t, guestWait, "systemd to restart the hung daemon", func() error {
			if p, state := mainPID(t), guest.Property(t, service, "ActiveState"); p == pid || p == 0 || state != "active" {
				return fmt.Errorf("MainPID %d, ActiveState %s", p, state)
			}
			return nil
		})
		if n := nRestarts(t); n <= restarts {
			t.Errorf("NRestarts %d, want more than %d", n, restarts)
		}
		if !slices.ContainsFunc(guest.Journal(t, "-u", "mptcpgd", "_PID=1"), func(e guest.Entry) bool {
			return strings.Contains(e.Field("MESSAGE"), "Watchdog timeout")
		}) {
			t.Error("systemd logged no watchdog timeout for the unit")
		}
		after := endpoints(t)
		for a, e := range before {
			if after[a].ID != e.ID {
				t.Errorf("after the watchdog's restart %s's endpoint is %v, want id %d", a, after[a], e.ID)
			}
		}
	})

	t.Run("restart keeps endpoint ids and disturbs no connection", func(t *testing.T) {
		guest.Must(t, "systemctl", "restart", service)
		ids := endpointIDs(endpoints(t))
		events := watchEvents(t)
		// 48 MiB over two 20 Mbit/s uplinks: long enough for the restart.
		tr := lab.StartTransfer(t, top, top.ServerAddr(lab.V4), 48<<20)
		info, err := lab.MPTCPInfo(tr.Conn)
		if err != nil {
			t.Fatal(err)
		}
		lab.WaitFor(t, guestWait, "a subflow over eth2", func() error { return guest.SubflowFrom(tr, eth2) })

		guest.Must(t, "systemctl", "restart", service)
		if after := endpointIDs(endpoints(t)); !slices.Equal(after, ids) {
			t.Errorf("endpoint ids %v after the restart, want %v", after, ids)
		}
		// What the restart did to the connection shows within a moment;
		// the events are taken while it still runs, for its own end
		// closes it.
		time.Sleep(2 * time.Second)
		during := events()
		select {
		case <-tr.Received():
			t.Fatal("the transfer ended before the restart's aftermath was seen: it proves nothing, make it longer")
		default:
		}
		res := tr.Wait(t)
		if res.WriteErr != nil {
			t.Fatalf("sending: %v", res.WriteErr)
		}
		lab.CheckStream(t, res.Report, top.Client, top.Server)
		for _, e := range during {
			if e.Token == info.Token && (e.Type == netlinkmptcp.EventSubClosed || e.Type == netlinkmptcp.EventClosed) {
				t.Errorf("during the restart the connection saw %v", e)
			}
		}
		if res.Sent[1] == 0 {
			t.Errorf("eth2 carried nothing: %v", res.Sent)
		}
	})

	t.Run("stop, cleanup as root, start", func(t *testing.T) {
		ensureRunning(t)
		guest.Must(t, "systemctl", "stop", service)
		out := guest.Must(t, "/usr/local/sbin/mptcpgd", "cleanup")
		if eps := endpoints(t); len(eps) != 0 {
			t.Errorf("after mptcpgd cleanup the endpoints are %v; want none\n%s", eps, out)
		}
		if out, err := guest.Run("systemctl", "start", service); err != nil {
			status, _ := guest.Run("systemctl", "status", "--no-pager", "-l", "-n", "0", service)
			log, _ := guest.Run("journalctl", "--no-pager", "-u", "mptcpgd", "-n", "8", "-o", "cat")
			t.Fatalf("systemctl start after mptcpgd cleanup: %v\n%s\n%s\nlast lines of the journal:\n%s\nstate directory:\n%s", err, out, status, log, stateDirectory(t))
		}
		eps := endpoints(t)
		for _, a := range []netip.Addr{eth1, eth2} {
			if _, ok := eps[a]; !ok {
				t.Errorf("after stop, cleanup and start no endpoint for %s: %v", a, eps)
			}
		}
	})

	t.Run("systemd-analyze security", func(t *testing.T) {
		out, _ := guest.Run("systemd-analyze", "security", "--no-pager", service)
		m := regexp.MustCompile(`Overall exposure level for mptcpgd.service: ([0-9.]+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no overall exposure level in:\n%s", out)
		}
		level, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the running unit's exposure level: %.1f (at most %.1f)", level, maxExposure)
		if level > maxExposure {
			t.Errorf("exposure level %.1f, want at most %.1f:\n%s", level, maxExposure, out)
		}
	})
}

// writeConfig replaces the daemon's configuration file.
func writeConfig(t *testing.T, text string) {
	t.Helper()
	if err := os.WriteFile(configFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ensureRunning starts the service with the base configuration if an
// earlier step left it stopped or failed.
func ensureRunning(t *testing.T) {
	t.Helper()
	if guest.Property(t, service, "ActiveState") == "active" {
		return
	}
	writeConfig(t, baseConfig)
	_, _ = guest.Run("systemctl", "reset-failed", service)
	guest.Must(t, "systemctl", "start", service)
}

// endpoints are the kernel's endpoints in the guest, by address.
func endpoints(t *testing.T) map[netip.Addr]netlinkmptcp.Endpoint {
	return guest.Endpoints(t)
}

func endpointIDs(eps map[netip.Addr]netlinkmptcp.Endpoint) []uint8 {
	var ids []uint8
	for _, e := range eps {
		ids = append(ids, e.ID)
	}
	slices.Sort(ids)
	return ids
}

func mainPID(t *testing.T) int {
	t.Helper()
	pid, err := strconv.Atoi(guest.Property(t, service, "MainPID"))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func nRestarts(t *testing.T) int {
	t.Helper()
	n, err := strconv.Atoi(guest.Property(t, service, "NRestarts"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// countMessages counts the daemon's journal entries whose message (which
// ends with the entry's fields) contains msg.
func countMessages(t *testing.T, msg string) int {
	t.Helper()
	n := 0
	for _, e := range guest.Journal(t, "-u", "mptcpgd") {
		if strings.Contains(e.Field("MESSAGE"), msg) {
			n++
		}
	}
	return n
}

// watchEvents records the guest's MPTCP events until the test ends; the
// function returns those seen so far.
func watchEvents(t *testing.T) func() []netlinkmptcp.Event {
	t.Helper()
	ev, err := netlinkmptcp.ListenEvents(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := &eventLog{t: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := ev.Run(ctx, log); ctx.Err() == nil {
			t.Errorf("MPTCP events: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		ev.Close()
	})
	return func() []netlinkmptcp.Event {
		log.mu.Lock()
		defer log.mu.Unlock()
		return slices.Clone(log.all)
	}
}

// eventLog keeps every event it is handed; a lost one fails the test,
// which counts events.
type eventLog struct {
	t   *testing.T
	mu  sync.Mutex
	all []netlinkmptcp.Event
}

func (l *eventLog) Events(evs []netlinkmptcp.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, evs...)
}

func (l *eventLog) Lost(err error) { l.t.Errorf("MPTCP events: %v", err) }

// stateDirectory lists the daemon's state directory with owners and
// modes, for a failure message.
func stateDirectory(t *testing.T) string {
	t.Helper()
	out, _ := guest.Run("ls", "-laL", "/var/lib/mptcpgd", "/var/lib/private/mptcpgd")
	return out
}
