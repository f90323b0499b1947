package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mptcpgd/mptcpgd/pkg/control"
)

func runArgs(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestHelpListsEveryCommandAndFlag(t *testing.T) {
	code, _, stderr := runArgs("--help")
	if code != 0 {
		t.Errorf("--help exit %d", code)
	}
	for _, want := range []string{"check", "show", "cleanup", "reload", "version", "-config", "-socket", "-state", "-log-level", "-json", "-version"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("--help does not mention %q:\n%s", want, stderr)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"--no-such-flag"}, {"check", "extra"}} {
		if code, _, stderr := runArgs(args...); code != 2 || stderr == "" {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 with a message", args, code, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, _ := runArgs(args...)
		if code != 0 || !strings.HasPrefix(stdout, "mptcpgd ") {
			t.Errorf("%s: exit %d, %q", args[0], code, stdout)
		}
	}
}

func TestLogLevelChecked(t *testing.T) {
	code, stdout, stderr := runArgs("check", "--log-level", "bogus", "--config", filepath.Join(t.TempDir(), "none.toml"))
	if code != 2 || stdout != "" || !strings.Contains(stderr, `--log-level: unknown level "bogus" (want debug, info, warn or error)`) {
		t.Errorf("check --log-level bogus: exit %d, stdout %q, stderr %q; want exit 2 naming the flag", code, stdout, stderr)
	}
}

func TestCheckWarnsWhenTheServiceCannotRead(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "mptcpgd.toml")
	if err := os.WriteFile(cfg, []byte("[limits]\nsubflows = 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runArgs("check", "--config", cfg)
	if code != 0 || !strings.Contains(stderr, "warning: "+cfg+" has mode 0600") || !strings.Contains(stderr, "chmod 0644 "+cfg) {
		t.Errorf("check of a 0600 file: exit %d, stderr %q; want exit 0 and a warning naming chmod 0644", code, stderr)
	}
}

// fakeDaemon answers the control socket as a daemon would reload: with
// the verdict given.
func fakeDaemon(t *testing.T, verdict error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go control.Serve(ctx, ln, func(_ context.Context, cmd string) (any, error) {
		if cmd != control.Reload {
			return nil, fmt.Errorf("unknown command %q", cmd)
		}
		return nil, verdict
	})
	return path
}

func TestReload(t *testing.T) {
	code, stdout, stderr := runArgs("reload", "--socket", fakeDaemon(t, nil))
	if code != 0 || stdout != "" || stderr != "" {
		t.Errorf("reload accepted: exit %d, stdout %q, stderr %q; want a silent exit 0", code, stdout, stderr)
	}
	reason := "/etc/mptcpgd.toml:12: routing.protocol: 16 is dhcp's in /etc/iproute2/rt_protos"
	code, _, stderr = runArgs("reload", "--socket", fakeDaemon(t, errors.New(reason)))
	if want := "mptcpgd: reload refused, the daemon keeps its running configuration: " + reason + "\n"; code != 1 || stderr != want {
		t.Errorf("reload refused: exit %d, stderr %q; want exit 1 and %q", code, stderr, want)
	}
	none := filepath.Join(t.TempDir(), "none.sock")
	code, _, stderr = runArgs("reload", "--socket", none)
	if code != 1 || !strings.Contains(stderr, none) {
		t.Errorf("reload without a daemon: exit %d, stderr %q; want exit 1 naming the socket", code, stderr)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(good, []byte("[limits]\nsubflows = \"auto\"\n"), 0o644)
	os.WriteFile(bad, []byte("[limits]\n\nsubflows = 9\n"), 0o644)

	code, stdout, stderr := runArgs("check", "--config", good)
	if code != 0 || !strings.Contains(stdout, "subflows = 'auto'") || !strings.Contains(stdout, "[routing]") {
		t.Errorf("check of a good file: exit %d, stdout:\n%s\nstderr: %s", code, stdout, stderr)
	}
	code, _, stderr = runArgs("check", "--config", bad)
	if code != 1 || !strings.Contains(stderr, bad+":3: limits.subflows:") {
		t.Errorf("check of a bad file: exit %d, stderr %q; want exit 1 naming %s:3 and limits.subflows", code, stderr, bad)
	}
	// check foresees what the kernel would refuse: a gateway outside the
	// interface's prefixes (lo's, read without privilege, is 127.0.0.1/8).
	outside := filepath.Join(dir, "outside.toml")
	os.WriteFile(outside, []byte("[[interface]]\nmatch = \"lo\"\ngateway4 = \"192.0.2.1\"\n"), 0o644)
	code, _, stderr = runArgs("check", "--config", outside)
	if code != 0 || !strings.Contains(stderr, "warning: interface[1].gateway4 192.0.2.1 is outside lo's prefixes (127.0.0.1/8)") {
		t.Errorf("check of a gateway outside the prefix: exit %d, stderr %q; want a warning", code, stderr)
	}
	missing := filepath.Join(dir, "missing.toml")
	code, _, stderr = runArgs("check", "--config", missing)
	if code != 1 || !strings.Contains(stderr, missing) {
		t.Errorf("check of a named missing file: exit %d, stderr %q; want an error naming it", code, stderr)
	}
}
