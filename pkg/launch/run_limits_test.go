package launch_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/internal/runlab"
)

// TestMPTCPDisabledRunsOnTCPWithOneWarning: with net.mptcp.enabled=0 the
// program works on plain TCP, and mptcpgd run says why once, however many
// sockets it makes.
func TestMPTCPDisabledRunsOnTCPWithOneWarning(t *testing.T) {
	ns := lab.New(t, "nomptcp")
	ns.Sysctl("net.mptcp.enabled", "0")
	srv := newServer(t, ns, false)
	probe := tool(t, "sockprobe")
	r := run(t, ns, "sh", "-c", fmt.Sprintf("%s kinds && %s connect 127.0.0.1 %s && %s threads 4", probe, probe, srv.port(), probe))
	if r.code() != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code(), r.stdout, r.stderr)
	}
	got := lines(r.stdout)
	if got["tcp4"] != "6" || got["tcp6"] != "6" || got["protocol"] != "6" || !strings.Contains(r.stdout, "ok") {
		t.Errorf("want plain TCP sockets (protocol 6) that work:\n%s", r.stdout)
	}
	if w := r.warnings(); len(w) != 1 || !strings.Contains(w[0], "net.mptcp.enabled=0") {
		t.Errorf("want exactly one warning naming net.mptcp.enabled=0, got:\n%s", r.stderr)
	}
}

// TestNoRootNeeded runs mptcpgd run as an unprivileged user: the sockets
// are still MPTCP, the program runs under no_new_privs, and a setuid
// program is warned about before it runs. As root, no_new_privs is not
// needed and not set.
func TestNoRootNeeded(t *testing.T) {
	ns := lab.New(t, "noroot")
	setpriv := runlab.Command(t, "setpriv")
	nobody := []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"}
	mptcpgd, probe := tool(t, "mptcpgd"), tool(t, "sockprobe")
	cmd := ns.Command(t.Context(), nobody[0], append(nobody[1:], mptcpgd, "run", "--", "sh", "-c",
		probe+" kinds; grep -E '^(Uid|NoNewPrivs):' /proc/self/status")...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := lines(string(out))
	if got["tcp4"] != "262" || got["udp4"] != "17" || !strings.HasPrefix(got["Uid:"], "65534") || got["NoNewPrivs:"] != "1" {
		t.Errorf("as user 65534: want MPTCP sockets under no_new_privs:\n%s", out)
	}
	if r := run(t, ns, "grep", "NoNewPrivs:", "/proc/self/status"); !strings.Contains(r.stdout, "NoNewPrivs:\t0") {
		t.Errorf("as root, no_new_privs was set: %s", r.stdout)
	}

	// A copy of true(1) with a file capability.
	dir, err := os.MkdirTemp("", "mptcpgd-filecaps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	capped := filepath.Join(dir, "capped-true")
	if b, err := os.ReadFile("/bin/true"); err != nil || os.WriteFile(capped, b, 0o755) != nil {
		t.Fatalf("copy /bin/true: %v", err)
	}
	if b, err := exec.Command(runlab.Command(t, "setcap"), "cap_net_raw+ep", capped).CombinedOutput(); err != nil {
		t.Fatalf("setcap: %v: %s", err, b)
	}
	cmd = ns.Command(t.Context(), nobody[0], append(nobody[1:], mptcpgd, "run", "--", capped)...)
	out, _ = cmd.CombinedOutput()
	if !strings.Contains(string(out), "mptcpgd run: warning: "+capped+" has file capabilities") {
		t.Errorf("no warning before running %s with a file capability:\n%s", capped, out)
	}

	setuid := ""
	for _, p := range []string{"/usr/bin/passwd", "/usr/bin/su", "/usr/bin/mount", "/bin/su"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSetuid != 0 {
			setuid = p
			break
		}
	}
	if setuid == "" {
		t.Skip("no setuid program found to run")
	}
	cmd = ns.Command(t.Context(), nobody[0], append(nobody[1:], mptcpgd, "run", "--", setuid, "--help")...)
	out, _ = cmd.CombinedOutput()
	if !strings.Contains(string(out), "mptcpgd run: warning: "+setuid+" is setuid") {
		t.Errorf("no warning before running the setuid %s:\n%s", setuid, out)
	}
}

// TestWhatItCannotDoIsSaid: a filter already in place (mptcpgd run inside
// mptcpgd run stands in for a container runtime's) makes it fall back to
// GODEBUG with a warning; io_uring and a move to another network namespace
// are reported once.
func TestWhatItCannotDoIsSaid(t *testing.T) {
	ns := lab.New(t, "limits")
	mptcpgd, probe := tool(t, "mptcpgd"), tool(t, "sockprobe")

	r := run(t, ns, mptcpgd, "run", "--", "sh", "-c", "echo GODEBUG $GODEBUG; "+probe+" kinds")
	if w := r.warnings(); r.code() != 0 || len(w) != 1 || !strings.Contains(w[0], "GODEBUG=multipathtcp=1") {
		t.Errorf("nested mptcpgd run: exit %d, want one warning about the GODEBUG-only fallback:\n%s", r.code(), r.stderr)
	}
	if got := lines(r.stdout); got["GODEBUG"] != "multipathtcp=1" || got["tcp4"] != "262" {
		t.Errorf("nested mptcpgd run: want GODEBUG set and the outer supervisor converting:\n%s", r.stdout)
	}

	r = run(t, ns, probe, "iouring")
	if w := r.warnings(); len(w) != 1 || !strings.Contains(w[0], "io_uring") {
		t.Errorf("io_uring: want one warning, got:\n%s", r.stderr)
	}

	other := lab.New(t, "other")
	r = run(t, ns, "ip", "netns", "exec", other.Name, probe, "kinds")
	if got := lines(r.stdout); got["tcp4"] != "6" {
		t.Errorf("in another network namespace: tcp4 %q, want its own TCP socket (6)", got["tcp4"])
	}
	if w := r.warnings(); len(w) != 1 || !strings.Contains(w[0], "another network namespace") {
		t.Errorf("in another network namespace: want one warning, got:\n%s", r.stderr)
	}
	// A namespace made by unshare rather than entered by setns (the
	// supervisor reads namespaces only once one of those calls came).
	r = run(t, ns, "unshare", "--net", "sh", "-c", "ip link set lo up && "+probe+" kinds")
	if got := lines(r.stdout); got["tcp4"] != "6" {
		t.Errorf("in a namespace of its own: tcp4 %q, want its own TCP socket (6)\n%s", got["tcp4"], r.stderr)
	}
	if w := r.warnings(); len(w) != 1 || !strings.Contains(w[0], "another network namespace") {
		t.Errorf("in a namespace of its own: want one warning, got:\n%s", r.stderr)
	}
}

// TestThirtyTwoBitPrograms: a 32-bit program's socket(2) is converted; its
// socketcall(2) cannot be and is reported.
func TestThirtyTwoBitPrograms(t *testing.T) {
	ns := lab.New(t, "compat")
	gosock := tool(t, "gosock386")
	if err := exec.Command(gosock, "compat").Run(); errors.Is(err, syscall.ENOEXEC) {
		t.Skip("this kernel runs no 32-bit programs (CONFIG_IA32_EMULATION)")
	}
	r := run(t, ns, gosock, "compat")
	got := lines(r.stdout)
	if got["socket"] != "262" || got["socketcall"] != "6" {
		t.Errorf("want socket(2) converted and socketcall(2) not:\n%s", r.stdout)
	}
	if w := r.warnings(); len(w) != 1 || !strings.Contains(w[0], "socketcall") {
		t.Errorf("want one warning about socketcall, got:\n%s", r.stderr)
	}
}
