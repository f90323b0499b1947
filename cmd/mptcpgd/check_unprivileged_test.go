package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
)

// TestCheckUnprivileged (issues 11 and 14): `mptcpgd check` run by a user
// without privileges makes the same checks as root: it foresees the
// configured gateway the kernel would refuse, and every check it makes is
// either made or named as not made ("could not check ..."), never passed
// over in silence.
func TestCheckUnprivileged(t *testing.T) {
	requireSetpriv(t)
	c := client(t)
	// A directory the unprivileged user can read, outside the test's own
	// temporary directories, which only root may enter.
	dir, err := os.MkdirTemp("", "mptcpgd-check-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "mptcpgd.toml")
	if err := os.WriteFile(cfg, []byte("[[interface]]\nmatch = \"eth2\"\ngateway4 = \"203.0.113.1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(user bool) (string, error) {
		args := []string{daemonlab.Binary(t), "check", "--config", cfg}
		if user {
			args = append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--no-new-privs"}, args...)
		}
		cmd := c.Command(t.Context(), args[0], args[1:]...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		return stderr.String(), err
	}
	asRoot, err := run(false)
	if err != nil {
		t.Fatalf("check as root: %v: %s", err, asRoot)
	}
	asUser, err := run(true)
	if err != nil {
		t.Fatalf("check as an unprivileged user: %v: %s", err, asUser)
	}
	const gateway = "interface[1].gateway4 203.0.113.1 is outside eth2's prefixes (198.51.100.2/24)"
	if !strings.Contains(asUser, gateway) {
		t.Errorf("unprivileged check says:\n%s\nwant the gateway warning %q", asUser, gateway)
	}
	// What the user could not check, it names; what root checked, the user
	// checked too or named.
	for _, l := range strings.Split(strings.TrimSpace(asRoot), "\n") {
		if !strings.Contains(asUser, l) && !strings.Contains(asUser, "could not check") {
			t.Errorf("root's check says %q, the unprivileged one neither says it nor names a check it could not make:\n%s", l, asUser)
		}
	}
}
