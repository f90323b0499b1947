package unitwrap_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
	"github.com/mptcpgd/mptcpgd/internal/runlab"
	"github.com/mptcpgd/mptcpgd/internal/unitlab"
)

// TestEnableDisableRoundTrip runs the round trip on a --root tree, with
// systemd's handling of the unit emulated (unitlab.Offline); a guest whose
// PID 1 is systemd runs the same round trip with the real one.
func TestEnableDisableRoundTrip(t *testing.T) {
	runlab.Command(t, "systemd-analyze")
	root := t.TempDir()
	bin := daemonlab.Binary(t)
	// systemd-analyze verify wants the commands of ExecStart= in the tree.
	for _, p := range []string{bin, "/usr/bin/env"} {
		copyFile(t, p, filepath.Join(root, p))
	}
	unitlab.RoundTrip(t, unitlab.Options{Root: root, Mptcpgd: bin, Env: unitlab.Offline(root)})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
