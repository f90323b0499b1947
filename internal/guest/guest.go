// Package guest serves tests that run inside the systemd test guest: a
// Debian 12 machine under qemu whose PID 1 is systemd, booted by
// `make test-guest` (cmd/mptcpgd-vmtest, scripts/vm). Such tests live in
// files tagged `//go:build guest`, are named TestGuest*, and run as root
// once multi-user.target is reached, with CI=true; the checkout is mounted
// read-only at $MPTCPGD_REPO. Anything goes in the guest: it is discarded
// when it powers off. The helpers refuse to run anywhere else.
package guest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// Require fails the test unless it runs in the test guest under systemd.
func Require(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(lab.GuestMarker); err != nil {
		t.Fatalf("guest tests change the machine's systemd and network: they run only in the test guest (make test-guest): %v", err)
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		t.Fatalf("the test guest is not running systemd: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("guest tests run as root")
	}
}

// Repo is the checkout under test, as the guest mounts it.
func Repo(t testing.TB) string {
	t.Helper()
	r := os.Getenv("MPTCPGD_REPO")
	if r == "" {
		t.Fatal("MPTCPGD_REPO is not set: the runner (make test-guest) names the checkout")
	}
	return r
}

var (
	installOnce sync.Once
	installErr  error
)

// Install runs the checkout's `make install` in the guest, as an
// administrator does, once per test process, and reloads systemd. The
// binary is the one the host built (bin/mptcpgd: make's build step is
// skipped, the guest has no Go).
func Install(t testing.TB) {
	t.Helper()
	Require(t)
	repo := Repo(t)
	installOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(repo, "bin", "mptcpgd")); err != nil {
			installErr = fmt.Errorf("the checkout has no bin/mptcpgd (make build on the host): %w", err)
			return
		}
		if out, err := Run("make", "-C", repo, "-o", "build", "install"); err != nil {
			installErr = fmt.Errorf("make install: %w\n%s", err, out)
			return
		}
		if out, err := Run("systemctl", "daemon-reload"); err != nil {
			installErr = fmt.Errorf("systemctl daemon-reload: %w\n%s", err, out)
		}
	})
	if installErr != nil {
		t.Fatal(installErr)
	}
}

// Run runs a command and returns its standard output and error together;
// the error says the exit status.
func Run(name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out.String(), err
}

// Must is Run that fails the test on error.
func Must(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := Run(name, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// Property is a unit's property (systemctl show -p NAME --value).
func Property(t testing.TB, unit, name string) string {
	t.Helper()
	return strings.TrimSpace(Must(t, "systemctl", "show", "-p", name, "--value", unit))
}

// DropIn installs a drop-in for unit (/etc/systemd/system/UNIT.d/NAME.conf)
// and reloads systemd; it is removed, and systemd reloaded, when the test
// ends.
func DropIn(t testing.TB, unit, name, text string) {
	t.Helper()
	dir := filepath.Join("/etc/systemd/system", unit+".d")
	path := filepath.Join(dir, name+".conf")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.Remove(path)
		if out, err := Run("systemctl", "daemon-reload"); err != nil {
			t.Errorf("%v\n%s", err, out)
		}
	})
	Must(t, "systemctl", "daemon-reload")
}

// Entry is one journal entry, its fields as journalctl -o json gives them.
type Entry map[string]any

// Field is a field's text ("" when absent or not text).
func (e Entry) Field(name string) string {
	s, _ := e[name].(string)
	return s
}

// Journal runs journalctl -o json with args (units, matches, --cursor...)
// and returns the entries.
func Journal(t testing.TB, args ...string) []Entry {
	t.Helper()
	out := Must(t, "journalctl", append([]string{"--no-pager", "-o", "json"}, args...)...)
	var entries []Entry
	for line := range strings.Lines(out) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var e Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("journalctl -o json: %v: %q", err, line)
		}
		entries = append(entries, e)
	}
	return entries
}
