package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	for _, want := range []string{"check", "show", "cleanup", "run", "enable", "disable", "version", "-config", "-socket", "-state", "-log-level", "-json"} {
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
	code, stdout, _ := runArgs("version")
	if code != 0 || !strings.HasPrefix(stdout, "mptcpgd ") {
		t.Errorf("version: exit %d, %q", code, stdout)
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
	missing := filepath.Join(dir, "missing.toml")
	code, _, stderr = runArgs("check", "--config", missing)
	if code != 1 || !strings.Contains(stderr, missing) {
		t.Errorf("check of a named missing file: exit %d, stderr %q; want an error naming it", code, stderr)
	}
}
