package systemd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// dropIns are the optional drop-ins shipped beside the unit.
var dropIns = []string{"metrics-textfile.conf", "metrics-http.conf"}

// TestDropInsVerify checks that systemd accepts the unit with each
// drop-in, which systemd-analyze verify reads from mptcpgd.service.d
// beside the unit, and that each drop-in changes what it says it does.
func TestDropInsVerify(t *testing.T) {
	analyze := requireAnalyze(t)
	for _, name := range dropIns {
		t.Run(name, func(t *testing.T) {
			path := verifiableCopy(t)
			dir := filepath.Join(filepath.Dir(path), unitFile+".d")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			text, err := os.ReadFile(filepath.Join(unitFile+".d", name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), text, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(analyze, "verify", path)
			cmd.Dir = filepath.Dir(path)
			if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
				t.Fatalf("systemd-analyze verify with %s: %v\n%s", name, err, out)
			}
			want := map[string][]string{
				"metrics-textfile.conf": {"ReadWritePaths=/var/lib/prometheus/node-exporter", "chgrp mptcpgd"},
				"metrics-http.conf":     {"RestrictAddressFamilies=AF_INET AF_INET6", "IPAddressAllow="},
			}[name]
			for _, w := range want {
				if !strings.Contains(string(text), w) {
					t.Errorf("%s lacks %q", name, w)
				}
			}
		})
	}
}
