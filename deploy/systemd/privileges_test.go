package systemd_test

import (
	"bufio"
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// nobody stands in for the unit's DynamicUser: an unprivileged uid.
const nobody = "65534"

// serviceArgs is a setpriv command line that runs args as the unit runs the
// daemon: an unprivileged user, no new privileges, and the unit's ambient
// capabilities (none when withCaps is false).
func serviceArgs(caps []string, withCaps bool, args ...string) []string {
	set := "-all"
	if withCaps {
		for _, c := range caps {
			set += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
		}
	}
	setpriv := []string{
		"setpriv", "--reuid=" + nobody, "--regid=" + nobody, "--clear-groups", "--no-new-privs",
		"--inh-caps=" + set, "--ambient-caps=" + set, "--bounding-set=" + set,
	}
	return append(setpriv, args...)
}

// asService prepares args to run in ns as the daemon's service.
func asService(ctx context.Context, ns *lab.NS, caps []string, withCaps bool, args ...string) *exec.Cmd {
	a := serviceArgs(caps, withCaps, args...)
	return ns.Command(ctx, a[0], a[1:]...)
}

func requireSetpriv(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		skipOrFail(t, "needs setpriv (util-linux)")
	}
}

// TestUnitPrivilegesSuffice runs what the daemon does to the kernel with the
// privileges the unit grants, and without its capabilities as a control.
func TestUnitPrivilegesSuffice(t *testing.T) {
	ns := lab.New(t, "unit")
	requireSetpriv(t)
	caps := parseUnit(t, unitFile).words("Service", "AmbientCapabilities")
	ns.IP("addr", "add", "192.0.2.1/24", "dev", "lo")

	writes := [][]string{
		{"ip", "mptcp", "endpoint", "add", "192.0.2.1", "dev", "lo", "subflow"},
		{"ip", "mptcp", "limits", "set", "subflow", "4", "add_addr_accepted", "4"},
		{"ip", "rule", "add", "from", "192.0.2.1", "lookup", "10001", "pref", "10000", "protocol", "177"},
		{"ip", "route", "add", "default", "dev", "lo", "table", "10001", "proto", "177"},
	}
	for _, args := range writes {
		t.Run(strings.Join(args[:3], " "), func(t *testing.T) {
			out, err := asService(context.Background(), ns, caps, false, args...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "Operation not permitted") {
				t.Errorf("without %v: %s: err %v, want Operation not permitted\n%s", caps, strings.Join(args, " "), err, out)
			}
			if out, err := asService(context.Background(), ns, caps, true, args...).CombinedOutput(); err != nil {
				t.Errorf("with %v: %s: %v\n%s", caps, strings.Join(args, " "), err, out)
			}
		})
	}
	if out := ns.IP("mptcp", "endpoint", "show"); !strings.Contains(out, "192.0.2.1 id") {
		t.Errorf("endpoint missing after the writes:\n%s", out)
	}

	// ProtectKernelTunables= remounts /proc/sys read-only; the daemon only
	// reads net.mptcp.enabled.
	t.Run("read net.mptcp.enabled", func(t *testing.T) {
		protect := []string{"unshare", "--mount", "--propagation", "private", "sh", "-c", `mount --bind -o ro /proc/sys /proc/sys && exec "$@"`, "sh"}
		service := serviceArgs(caps, true, "sh", "-c", "cat /proc/sys/net/mptcp/enabled; echo 1 > /proc/sys/net/mptcp/enabled")
		out, _ := ns.Command(context.Background(), protect[0], append(protect[1:], service...)...).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 2 || lines[0] != "1" || !strings.Contains(lines[1], "Read-only file system") {
			t.Errorf("want the value 1 read and the write refused by the read-only mount, got:\n%s", out)
		}
	})

	t.Run("subscribe to MPTCP events", func(t *testing.T) {
		// The timeouts only keep a monitor that subscribed from blocking.
		unprivileged, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := asService(unprivileged, ns, caps, false, "ip", "mptcp", "monitor").CombinedOutput()
		if unprivileged.Err() != nil || err == nil || !strings.Contains(string(out), "Operation not permitted") {
			t.Errorf("without %v: ip mptcp monitor: err %v, want Operation not permitted\n%s", caps, err, out)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		monitor := asService(ctx, ns, caps, true, "ip", "mptcp", "monitor")
		stdout, err := monitor.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := monitor.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = monitor.Process.Kill()
			_ = monitor.Wait()
		}()
		events := make(chan string)
		go func() {
			defer close(events)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				events <- sc.Text()
			}
		}()
		// The monitor says nothing when it has subscribed, so keep making
		// events (an MPTCP connection and its close) until one arrives.
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := ns.Do(mptcpConnection); err != nil {
				t.Fatal(err)
			}
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("with %v: ip mptcp monitor ended without an event", caps)
				}
				t.Logf("event: %s", ev)
				return
			case <-ctx.Done():
				t.Fatalf("with %v: no MPTCP event reached ip mptcp monitor", caps)
			case <-tick.C:
			}
		}
	})
}

// mptcpConnection opens and closes an MPTCP connection over loopback: it
// makes connection events (created, established, closed), which every
// kernel with MPTCP events sends; listener events alone are Linux 6.2+.
func mptcpConnection() error {
	var lc net.ListenConfig
	lc.SetMultipathTCP(true)
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	var d net.Dialer
	d.SetMultipathTCP(true)
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		return err
	}
	return s.Close()
}
