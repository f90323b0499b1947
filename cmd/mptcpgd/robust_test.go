package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
)

func requireSetpriv(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("setpriv (util-linux) is not installed")
		}
		t.Skip("setpriv (util-linux) is not installed")
	}
}

// waitExit waits for a daemon that must refuse to start; the bound only
// keeps one that runs instead from hanging the test.
func waitExit(t *testing.T, d *daemonlab.Daemon) {
	t.Helper()
	select {
	case <-d.Exited():
	case <-time.After(time.Minute):
		t.Fatalf("mptcpgd still runs, want it to refuse to start; it logged:\n%s", d.Stderr())
	}
}

// TestOneDaemonPerNamespace: a second daemon in a namespace, even with its
// own socket and state file, is refused; one in another namespace runs;
// cleanup is refused while a daemon runs, whichever socket it names.
func TestOneDaemonPerNamespace(t *testing.T) {
	c := client(t)
	first := daemonlab.Start(t, c, daemonlab.Options{})
	second := daemonlab.Start(t, c, daemonlab.Options{NoWait: true})
	waitExit(t, second)
	if exitCode(second.Err()) != 1 || !strings.Contains(second.Stderr(), "mptcpgd already runs in this network namespace") ||
		!strings.Contains(second.Stderr(), "stop it first") {
		t.Errorf("second daemon in %s: exit %v, stderr %q; want exit 1 saying one already runs", c.Name, second.Err(), second.Stderr())
	}

	other := client(t)
	daemonlab.Start(t, other, daemonlab.Options{}) // fails the test unless READY=1

	_, stderr, err := daemonlab.RunIn(t, c, "cleanup", "--socket", filepath.Join(t.TempDir(), "elsewhere.sock"), "--state", first.State)
	if exitCode(err) != 1 || !strings.Contains(stderr, "already runs in this network namespace") {
		t.Errorf("cleanup with another --socket while the daemon runs: exit %v, %q; want a refusal", err, stderr)
	}
	if endpointShow(c) == "" {
		t.Error("the refused cleanup removed the endpoints")
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	daemonlab.Start(t, c, daemonlab.Options{}) // the lock went with the first
}

// TestServiceStartsAfterRootCleanup: `mptcpgd cleanup` as root must leave
// the state file readable by the service's user, and a state file the
// service cannot read is named with its fix.
func TestServiceStartsAfterRootCleanup(t *testing.T) {
	requireSetpriv(t)
	c := client(t)
	d := daemonlab.Start(t, c, daemonlab.Options{AsService: true})
	if endpointShow(c) == "" {
		t.Fatal("no endpoints from the daemon run as the service")
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := d.Run("cleanup"); err != nil {
		t.Fatalf("cleanup as root: %v: %s", err, stderr)
	}
	again := daemonlab.Start(t, c, daemonlab.Options{AsService: true, State: d.State})
	if err := again.Stop(); err != nil {
		t.Fatal(err)
	}

	// A state file root left unreadable, as cleanup did before.
	if err := os.Chown(d.State, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d.State, 0o600); err != nil {
		t.Fatal(err)
	}
	refused := daemonlab.Start(t, c, daemonlab.Options{AsService: true, State: d.State, NoWait: true})
	waitExit(t, refused)
	want := "chown --reference=" + filepath.Dir(d.State) + " " + d.State
	if exitCode(refused.Err()) != 1 || !strings.Contains(refused.Stderr(), want) {
		t.Errorf("service with a root-owned 0600 state file: exit %v, stderr %q; want exit 1 with %q", refused.Err(), refused.Stderr(), want)
	}
}

func TestServiceCannotReadConfig(t *testing.T) {
	requireSetpriv(t)
	c := client(t)
	cfg := daemonlab.WriteConfig(t, "[limits]\nsubflows = 2\n") // root's, in a directory of root's
	d := daemonlab.Start(t, c, daemonlab.Options{AsService: true, Config: cfg, NoWait: true})
	waitExit(t, d)
	if exitCode(d.Err()) != 1 || !strings.Contains(d.Stderr(), "chmod 0644 "+cfg) {
		t.Errorf("service with an unreadable configuration: exit %v, stderr %q; want exit 1 naming chmod 0644", d.Err(), d.Stderr())
	}
}

// TestUnprivilegedCommands: a user without privileges is told what is
// missing, in one line.
func TestUnprivilegedCommands(t *testing.T) {
	requireSetpriv(t)
	c := client(t)
	d := daemonlab.Start(t, c, daemonlab.Options{})
	user := func(args ...string) (string, error) {
		setpriv := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", daemonlab.Binary(t)}
		cmd := c.Command(t.Context(), setpriv[0], append(setpriv[1:], append(args, "--socket", d.Socket, "--state", d.State)...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := user("show")
	if exitCode(err) != 1 || !strings.Contains(out, "permission denied") || strings.Contains(out, "no daemon answered") {
		t.Errorf("unprivileged show: exit %v, output %q; want exit 1 saying permission denied", err, out)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	out, err = user("cleanup")
	if exitCode(err) != 1 || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, "needs root or CAP_NET_ADMIN") {
		t.Errorf("unprivileged cleanup: exit %v, output %q; want exit 1 with one line naming CAP_NET_ADMIN", err, out)
	}
	if endpointShow(c) == "" {
		t.Error("the unprivileged cleanup removed endpoints")
	}
}
