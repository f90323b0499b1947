package unitwrap_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/runlab"
)

func TestMain(m *testing.M) {
	code := m.Run()
	runlab.Cleanup()
	os.Exit(code)
}

// TestWrapperNeedsOnlySeccompBeyondSystemService traces every system call
// mptcpgd run makes (its child stage and supervisor included) while it
// converts sockets, and checks that systemd's @system-service set plus
// seccomp, which the drop-in adds, allows them all: a unit hardened with
// SystemCallFilter=@system-service runs its program under the wrapper.
func TestWrapperNeedsOnlySeccompBeyondSystemService(t *testing.T) {
	strace, analyze := runlab.Command(t, "strace"), runlab.Command(t, "systemd-analyze")
	allowed := map[string]bool{"seccomp": true}
	expandGroup(t, analyze, "@system-service", allowed, map[string]bool{})

	out := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command(strace, "-f", "-qq", "-o", out, runlab.Tool(t, "mptcpgd"), "run", "--", runlab.Tool(t, "sockprobe"), "threads", "4")
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "tcp 262") {
		t.Fatalf("strace mptcpgd run: %v\n%s", err, b)
	}
	trace, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	call := regexp.MustCompile(`^\d+ +(?:<\.\.\. )?([a-z0-9_]+)[( ]`)
	seen := map[string]bool{}
	for _, l := range strings.Split(string(trace), "\n") {
		if m := call.FindStringSubmatch(l); m != nil && m[1] != "exit" {
			seen[m[1]] = true
		}
	}
	if !seen["seccomp"] || !seen["ioctl"] {
		t.Fatalf("the trace shows no seccomp or ioctl call; is it complete?\n%s", trace)
	}
	var missing []string
	for c := range seen {
		if !allowed[c] {
			missing = append(missing, c)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("mptcpgd run makes system calls outside @system-service and seccomp: %v", missing)
	}
}

// expandGroup adds the calls of a systemd system-call group, and of the
// groups it names, to set.
func expandGroup(t *testing.T, analyze, group string, set, done map[string]bool) {
	t.Helper()
	if done[group] {
		return
	}
	done[group] = true
	out, err := exec.Command(analyze, "syscall-filter", "--no-pager", group).Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter %s: %v", group, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || l == group:
		case strings.HasPrefix(l, "@"):
			expandGroup(t, analyze, l, set, done)
		default:
			set[l] = true
		}
	}
}
