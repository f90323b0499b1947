// Package deploy holds what `make install` puts on a host: the systemd unit
// (deploy/systemd) and the protocol name for iproute2 (rt_protos.d). Its test
// checks the install itself.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func requireMake(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("make is not installed")
		}
		t.Skip("make is not installed")
	}
}

// makeInstall runs make install into root with the given variables.
func makeInstall(t *testing.T, root string, vars ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-C", "..", "install", "DESTDIR=" + root}, vars...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	return string(out)
}

func TestMakeInstallKeepsExistingConfig(t *testing.T) {
	requireMake(t)
	root := t.TempDir()
	install := func() string { return makeInstall(t, root) }
	install()
	for _, f := range []string{
		"usr/local/sbin/mptcpgd",
		"etc/systemd/system/mptcpgd.service",
		"etc/iproute2/rt_protos.d/mptcpgd.conf",
		"etc/mptcpgd.toml",
	} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("make install did not install %s: %v", f, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "usr/local/sbin/mptcpgd")); err == nil && fi.Mode()&0o111 == 0 {
		t.Errorf("the binary is not executable: %v", fi.Mode())
	}
	protos, _ := os.ReadFile(filepath.Join(root, "etc/iproute2/rt_protos.d/mptcpgd.conf"))
	if !strings.Contains(string(protos), "177\tmptcpgd") {
		t.Errorf("rt_protos.d entry = %q, want 177 named mptcpgd", protos)
	}

	cfg := filepath.Join(root, "etc/mptcpgd.toml")
	mine := []byte("# edited by the administrator\n[limits]\nsubflows = 2\n")
	if err := os.WriteFile(cfg, mine, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := install(); !strings.Contains(out, "keeping the existing /etc/mptcpgd.toml") {
		t.Errorf("second install did not say it kept the configuration:\n%s", out)
	}
	if got, _ := os.ReadFile(cfg); string(got) != string(mine) {
		t.Errorf("make install overwrote an existing /etc/mptcpgd.toml:\n%s", got)
	}
}

// TestMakeInstallPrefix: the unit runs the binary where PREFIX put it.
func TestMakeInstallPrefix(t *testing.T) {
	requireMake(t)
	root := t.TempDir()
	makeInstall(t, root, "PREFIX=/usr")
	if _, err := os.Stat(filepath.Join(root, "usr/sbin/mptcpgd")); err != nil {
		t.Fatalf("make install PREFIX=/usr: %v", err)
	}
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/mptcpgd.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nExecStart=/usr/sbin/mptcpgd --config /etc/mptcpgd.toml\n",
		"\nExecReload=/usr/sbin/mptcpgd reload\n",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("installed unit lacks %q:\n%s", strings.TrimSpace(want), unit)
		}
	}
	if strings.Contains(string(unit), "/usr/local") {
		t.Errorf("installed unit still names /usr/local:\n%s", unit)
	}
}
