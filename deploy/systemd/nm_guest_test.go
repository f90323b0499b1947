//go:build guest

package systemd_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/guest"
	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// NetworkManager (Debian 12's 1.42) beside the installed unit: a dummy
// device NetworkManager creates and configures from a profile with a
// static address and gateway, on which it manages MPTCP endpoints by its
// built-in default (enabled,subflow: net.mptcp.enabled is 1 and it gave
// the device a default route).

const (
	nmProfile = "mptcp-test"
	nmDevice  = "nmtest0"
	// nmDisable is the command mptcpgd must print for the profile.
	nmDisable = "nmcli connection modify 'mptcp-test' connection.mptcp-flags disabled"
)

var nmAddr = netip.MustParseAddr("192.0.2.10")

// nmConfig gives our endpoints the backup flag, so that an endpoint of
// ours tells itself apart from NetworkManager's (subflow), and resyncs
// often, so that a fight would show within the minute watched.
const nmConfig = `
[daemon]
resync_interval = "5s"

[endpoints]
flags = ["subflow", "backup"]
families = ["ipv4"]
`

const nmManageConfig = nmConfig + `
[networkmanager]
mptcp_devices = "manage"
`

func TestGuestNetworkManager(t *testing.T) {
	guest.Install(t)
	// The journal outlives a test: only this run's entries count.
	since := fmt.Sprintf("--since=@%d", time.Now().Unix())
	t.Cleanup(func() {
		if t.Failed() {
			// The whole run, to the microsecond: a fight is a race.
			out, _ := guest.Run("journalctl", "--no-pager", "-o", "short-precise", since, "-u", "mptcpgd", "-u", "NetworkManager")
			t.Logf("journal:\n%s", out)
		}
		_, _ = guest.Run("systemctl", "stop", service)
		_, _ = guest.Run("/usr/local/sbin/mptcpgd", "cleanup")
		_, _ = guest.Run("nmcli", "connection", "delete", nmProfile)
		_, _ = guest.Run("systemctl", "stop", "NetworkManager.service")
		_, _ = guest.Run("ip", "link", "del", nmDevice)
	})
	// mptcpgd first, so that it sees the address appear and would race
	// NetworkManager for it.
	writeConfig(t, nmConfig)
	_, _ = guest.Run("systemctl", "reset-failed", service)
	guest.Must(t, "systemctl", "restart", service)
	guest.Must(t, "systemctl", "start", "NetworkManager.service")
	guest.Must(t, "nmcli", "connection", "add", "type", "dummy", "ifname", nmDevice, "con-name", nmProfile,
		"ipv4.method", "manual", "ipv4.addresses", "192.0.2.10/24", "ipv4.gateway", "192.0.2.1", "ipv6.method", "disabled")
	guest.Must(t, "nmcli", "--wait", "90", "connection", "up", nmProfile)

	t.Run("NetworkManager's endpoint stays alone: no fight", func(t *testing.T) {
		nmEndpoint := func() (bool, string) {
			ep, ok := endpoints(t)[nmAddr]
			return ok && ep.Flags&netlinkmptcp.FlagBackup == 0 && ep.Flags&netlinkmptcp.FlagSubflow != 0, fmt.Sprintf("endpoint %+v (present %v)", ep, ok)
		}
		waitFor(t, "NetworkManager's endpoint for "+nmAddr.String(), nmEndpoint)
		waitFor(t, "show to say nmtest0 is left to NetworkManager", showSays(
			"not managed: left to NetworkManager: profile 'mptcp-test' takes NetworkManager's default mptcp-flags enabled,subflow"))

		// A minute in which NetworkManager reapplies its profile twice
		// (syncing its endpoints, removing those it does not want) and
		// mptcpgd resyncs a dozen times and reloads once: the endpoint
		// must be written by nobody.
		first := endpoints(t)[nmAddr]
		var changes []string
		last := first
		start := time.Now()
		step := 0
		for time.Since(start) < time.Minute {
			switch elapsed := time.Since(start); {
			case step == 0 && elapsed > 10*time.Second, step == 2 && elapsed > 40*time.Second:
				guest.Must(t, "nmcli", "device", "reapply", nmDevice)
				step++
			case step == 1 && elapsed > 25*time.Second:
				guest.Must(t, "systemctl", "reload", service)
				step++
			}
			ep, ok := endpoints(t)[nmAddr]
			if !ok {
				ep = netlinkmptcp.Endpoint{}
			}
			if ep != last {
				changes = append(changes, fmt.Sprintf("%+v", ep))
				last = ep
			}
			time.Sleep(250 * time.Millisecond)
		}
		if len(changes) > 0 {
			t.Errorf("the endpoint for %s changed within the minute (from %+v): %v", nmAddr, first, changes)
		}
		if step != 3 {
			t.Errorf("only %d of the 3 disturbances ran", step)
		}
		// A figure for the closing notes (the cost issue's budget), not an
		// assertion: the daemon's memory while it follows NetworkManager.
		if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", mainPID(t))); err == nil {
			for line := range strings.Lines(string(status)) {
				if strings.HasPrefix(line, "VmRSS:") {
					t.Logf("mptcpgd following NetworkManager: %s", strings.TrimSpace(line))
				}
			}
		}
		for _, e := range guest.Journal(t, since, "-u", "mptcpgd", "IFACE="+nmDevice) {
			// An endpoint write logs "endpoint added/removed ..." with
			// ENDPOINT_ID, or a failed write "... op=add endpoint ...".
			if msg := e.Field("MESSAGE"); e.Field("ENDPOINT_ID") != "" || strings.HasPrefix(msg, "endpoint ") || strings.Contains(msg, "add endpoint") {
				t.Errorf("mptcpgd touched an endpoint on %s: %s", nmDevice, e.Field("MESSAGE"))
			}
		}
	})

	t.Run("NetworkManager stopping and starting is followed", func(t *testing.T) {
		guest.Must(t, "systemctl", "stop", "NetworkManager.service")
		waitFor(t, "show to say NetworkManager stopped and nmtest0 is ours", showSays("NetworkManager\n  not running", "  "+nmDevice, "managed (included by"))
		guest.Must(t, "systemctl", "start", "NetworkManager.service")
		waitFor(t, "show to say nmtest0 is left to NetworkManager again", showSays("not managed: left to NetworkManager: profile 'mptcp-test'"))
	})

	t.Run("mptcp_devices = manage prints the nmcli command, which hands the device over", func(t *testing.T) {
		writeConfig(t, nmManageConfig)
		guest.Must(t, "systemctl", "restart", service)
		waitFor(t, "show to print the nmcli command", showSays("NetworkManager manages MPTCP here too", nmDisable))
		logged := false
		for _, e := range guest.Journal(t, since, "-u", "mptcpgd", "IFACE="+nmDevice) {
			logged = logged || e.Field("COMMAND") == nmDisable
		}
		if !logged {
			t.Errorf("the journal has no entry for %s with COMMAND=%s", nmDevice, nmDisable)
		}

		guest.Must(t, "sh", "-c", nmDisable)
		guest.Must(t, "nmcli", "device", "reapply", nmDevice)
		waitFor(t, "mptcpgd's endpoint (subflow,backup) for "+nmAddr.String(), func() (bool, string) {
			ep, ok := endpoints(t)[nmAddr]
			return ok && ep.Flags&netlinkmptcp.FlagBackup != 0, fmt.Sprintf("endpoint %+v (present %v)", ep, ok)
		})
		waitFor(t, "show to say NetworkManager's MPTCP is off on nmtest0", showSays("off: profile 'mptcp-test' has mptcp-flags disabled"))
		if text := show(t); strings.Contains(text, "nmcli") {
			t.Errorf("show still prints an nmcli command:\n%s", text)
		}
	})
}

func show(t *testing.T) string {
	t.Helper()
	return guest.Must(t, "/usr/local/sbin/mptcpgd", "show")
}

// showSays is a condition: `mptcpgd show` contains every one of want.
func showSays(want ...string) func() (bool, string) {
	return func() (bool, string) {
		text, err := guest.Run("/usr/local/sbin/mptcpgd", "show")
		if err != nil {
			return false, fmt.Sprintf("%v\n%s", err, text)
		}
		for _, w := range want {
			if !strings.Contains(text, w) {
				return false, fmt.Sprintf("no %q in:\n%s", w, text)
			}
		}
		return true, ""
	}
}

// waitFor waits, at most guestWait, until cond holds.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	lab.WaitFor(t, guestWait, what, func() error {
		if ok, why := cond(); !ok {
			return errors.New(why)
		}
		return nil
	})
}
