package launch_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/internal/runlab"
)

// pythonProbe reports the protocol of each kind of socket Python makes,
// then connects to the server given as argv[1].
const pythonProbe = `
import socket, sys
for name, fam, typ in (("tcp4", socket.AF_INET, socket.SOCK_STREAM), ("tcp6", socket.AF_INET6, socket.SOCK_STREAM),
                       ("udp4", socket.AF_INET, socket.SOCK_DGRAM), ("unix-stream", socket.AF_UNIX, socket.SOCK_STREAM)):
    s = socket.socket(fam, typ)
    print(name, s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
    s.close()
host, port = sys.argv[1].rsplit(":", 1)
c = socket.create_connection((host, int(port)))
print("connected", c.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
c.sendall(b"hello\n")
print("reply", c.recv(100).decode().strip())
`

// TestEveryTCPSocketIsMPTCP runs programs of every kind under mptcpgd run:
// each TCP stream socket they make is an MPTCP socket (what the program
// reads back with SO_PROTOCOL, and what the server accepts), and their
// UDP and unix sockets are what they asked for.
func TestEveryTCPSocketIsMPTCP(t *testing.T) {
	ns := lab.New(t, "run")
	python := runlab.Command(t, "python3")
	nc := runlab.Command(t, "nc.openbsd")
	curl := runlab.Command(t, "curl")
	probe, gosock := tool(t, "sockprobe"), tool(t, "gosock")

	type check struct {
		name     string
		args     []string
		protos   map[string]string // output lines "kind protocol"
		contains []string
		conns    int // connections the server must see, all MPTCP
	}
	srv := newServer(t, ns, true)
	checks := []check{
		{"python", []string{python, "-c", pythonProbe, srv.addr()},
			map[string]string{"tcp4": "262", "tcp6": "262", "udp4": "17", "unix-stream": "0", "connected": "262", "reply": "ok"}, nil, 1},
		{"static Go, raw socket(2)", []string{gosock, "kinds"},
			map[string]string{"tcp4": "262", "tcp6": "262", "udp4": "17", "unix-stream": "0"}, nil, 0},
		{"static Go, net with MPTCP off in its Dialer", []string{gosock, "dial", srv.addr(), "plain"},
			map[string]string{"multipath": "true <nil>"}, []string{"ok"}, 1},
		{"static Go, net with GODEBUG", []string{gosock, "dial", srv.addr(), "default"},
			map[string]string{"multipath": "true <nil>"}, []string{"ok"}, 1},
		{"dynamic C", []string{probe, "kinds"},
			map[string]string{"tcp4": "262", "tcp6": "262", "tcp4-nonblock-cloexec": "262", "tcp4-explicit": "262",
				"udp4": "17", "udp6": "17", "unix-stream": "0", "unix-dgram": "0"}, nil, 0},
		{"dynamic C client", []string{probe, "connect", "127.0.0.1", srv.port()}, map[string]string{"protocol": "262"}, []string{"ok"}, 1},
		{"nc.openbsd", []string{nc, "-N", "127.0.0.1", srv.port()}, nil, []string{"ok"}, 1},
		{"curl", []string{curl, "-sS", "http://" + srv.addr() + "/"}, nil, []string{"hello"}, 1},
		{"shell pipeline", []string{"sh", "-c", fmt.Sprintf("echo hello | %s -N 127.0.0.1 %s | tr a-z A-Z; %s -sS http://%s/ | cat",
			nc, srv.port(), curl, srv.addr())}, nil, []string{"OK", "hello"}, 2},
		{"eight threads at once", []string{probe, "threads", "8"}, nil, []string{strings.Repeat("tcp 262\n", 8)}, 0},
	}
	seen := 0
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, ns, c.args...)
			if r.code() != 0 || len(r.warnings()) > 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code(), r.stdout, r.stderr)
			}
			got := lines(r.stdout)
			for k, v := range c.protos {
				if got[k] != v {
					t.Errorf("%s: %q, want %q\n%s", k, got[k], v, r.stdout)
				}
			}
			for _, s := range c.contains {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("the output lacks %q:\n%s", s, r.stdout)
				}
			}
			seen += c.conns
			if all, mptcp := srv.accepted(seen); all != seen || mptcp != seen {
				t.Errorf("the server accepted %d connections so far, %d of them MPTCP; want %d, all MPTCP", all, mptcp, seen)
			}
		})
	}
}

// TestManySocketsThroughTheSupervisor makes 100,000 sockets from 8 threads
// through a supervisor that runs with Go's default GODEBUG (asynchronous
// preemption on): every socket() must return a real MPTCP socket, never a
// bogus descriptor, and the supervisor's descriptors and memory must stay
// bounded.
func TestManySocketsThroughTheSupervisor(t *testing.T) {
	ns := lab.New(t, "storm")
	cmd := wrapped(t, ns, tool(t, "sockprobe"), "storm", "8", "100000")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// ip netns exec executes mptcpgd in place: this is the supervisor.
	pid := cmd.Process.Pid
	samples := make(chan [2]int, 1)
	stop := make(chan struct{})
	go func() {
		maxFDs, maxRSS := 0, 0
		for {
			select {
			case <-stop:
				samples <- [2]int{maxFDs, maxRSS}
				return
			case <-time.After(20 * time.Millisecond):
			}
			if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
				maxFDs = max(maxFDs, len(fds))
			}
			maxRSS = max(maxRSS, rssKiB(pid))
		}
	}()
	report, _ := bufio.NewReader(out).ReadString('\n')
	err = cmd.Wait()
	close(stop)
	peak := <-samples
	t.Logf("storm: %s; supervisor peak: %d descriptors, %d KiB resident", strings.TrimSpace(report), peak[0], peak[1])
	if err != nil || !strings.HasPrefix(report, "ok 100000 bad 0 ") {
		t.Fatalf("storm: %q, %v; stderr:\n%s", report, err, stderr.String())
	}
	// Standard streams, the listener, the stop eventfd, Go's own: a
	// leak of one descriptor per socket would be 100,000.
	if peak[0] > 16 {
		t.Errorf("the supervisor held up to %d descriptors, want at most 16", peak[0])
	}
	if peak[1] > 64<<10 {
		t.Errorf("the supervisor grew to %d KiB resident, want at most 64 MiB", peak[1])
	}
}

func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// TestDaemonizedChildStaysMPTCP runs a program that daemonizes (double
// fork, the parent exits): mptcpgd run exits with the parent, and the
// daemon's later sockets are still MPTCP; the supervisor that took over
// ends when the daemon does.
func TestDaemonizedChildStaysMPTCP(t *testing.T) {
	ns := lab.New(t, "daemon")
	python := runlab.Command(t, "python3")
	dir := t.TempDir()
	goFile, outFile := filepath.Join(dir, "go"), filepath.Join(dir, "protocol")
	daemon := `
import os, socket, sys, time
if os.fork(): os._exit(0)
os.setsid()
if os.fork(): os._exit(0)
for fd in (0, 1, 2): os.close(fd)
while not os.path.exists(sys.argv[1]): time.sleep(0.01)
s = socket.socket()
open(sys.argv[2] + ".tmp", "w").write(str(s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
`
	r := run(t, ns, python, "-c", daemon, goFile, outFile)
	if r.code() != 0 {
		t.Fatalf("exit %d: %s", r.code(), r.stderr)
	}
	// mptcpgd run has exited; the daemon makes its socket only now.
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	proto := waitFile(t, outFile)
	if proto != "262" {
		t.Errorf("the daemon's socket has protocol %s, want 262 (MPTCP)", proto)
	}
	waitNoProcesses(t, ns)
}

func waitFile(t *testing.T, p string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(p)
		if err == nil {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitNoProcesses waits until nothing runs in ns any more: the supervisor
// stage must end once the processes it served are gone.
func waitNoProcesses(t *testing.T, ns *lab.NS) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := exec.Command("ip", "netns", "pids", ns.Name).Output()
		if err == nil && strings.TrimSpace(string(out)) == "" {
			return
		}
		if time.Now().After(deadline) {
			ps, _ := exec.Command("ps", "-o", "pid,args", "-p", strings.Join(strings.Fields(string(out)), ",")).Output()
			t.Fatalf("processes left in %s:\n%s", ns.Name, ps)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

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

// TestExitStatusAndSignals: the exit code and a killing signal pass
// through; a signal sent to mptcpgd run reaches the program once; one
// named in --no-forward (systemd's stop signal, which systemd sends to
// the program itself) does not.
func TestExitStatusAndSignals(t *testing.T) {
	ns := lab.New(t, "signals")
	if r := run(t, ns, "sh", "-c", "exit 3"); r.code() != 3 {
		t.Errorf("exit 3 became %d", r.code())
	}
	if r := run(t, ns, "sh", "-c", "kill -USR1 $$"); r.signal() != syscall.SIGUSR1 {
		t.Errorf("a program killed by SIGUSR1: mptcpgd run ended with %v", r.state)
	}
	if r := run(t, ns, "no-such-program"); r.code() != 127 || !strings.Contains(r.stderr, "command not found") {
		t.Errorf("a missing program: exit %d, %q; want 127 and a message", r.code(), r.stderr)
	}
	python := runlab.Command(t, "python3")
	// Counts the signals it gets until stdin closes.
	counter := `
import signal, sys
n = {"TERM": 0, "USR1": 0, "HUP": 0}
def h(sig, _): n[signal.Signals(sig).name[3:]] += 1
for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP): signal.signal(s, h)
print("ready", flush=True)
sys.stdin.read()
print(" ".join("%s=%d" % kv for kv in sorted(n.items())))
`
	cases := []struct {
		name      string
		noForward string
		send      func(cmd *exec.Cmd)
		want      string
	}{
		{"once each", "", func(c *exec.Cmd) {
			c.Process.Signal(syscall.SIGUSR1)
			c.Process.Signal(syscall.SIGHUP)
		}, "HUP=1 TERM=0 USR1=1"},
		{"not the stop signal systemd sends to all", "SIGTERM", func(c *exec.Cmd) {
			c.Process.Signal(syscall.SIGTERM)
			c.Process.Signal(syscall.SIGUSR1)
		}, "HUP=0 TERM=0 USR1=1"},
		{"to the process group, as systemd's control-group kill", "SIGTERM", func(c *exec.Cmd) {
			syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		}, "HUP=0 TERM=1 USR1=0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"run"}
			if c.noForward != "" {
				args = append(args, "--no-forward="+c.noForward)
			}
			cmd := ns.Command(t.Context(), tool(t, "mptcpgd"), append(args, "--", python, "-c", counter)...)
			// A process group of its own, as systemd gives a service.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			rd := bufio.NewReader(stdout)
			if l, err := rd.ReadString('\n'); l != "ready\n" {
				t.Fatalf("program: %q, %v; stderr:\n%s", l, err, stderr.String())
			}
			c.send(cmd)
			// The signals are queued in order behind this one, which
			// only mptcpgd run's forwarding can deliver.
			time.Sleep(200 * time.Millisecond)
			stdin.Close()
			counts, _ := rd.ReadString('\n')
			if err := cmd.Wait(); err != nil {
				t.Errorf("mptcpgd run: %v; stderr:\n%s", err, stderr.String())
			}
			if strings.TrimSpace(counts) != c.want {
				t.Errorf("the program counted %q, want %q", strings.TrimSpace(counts), c.want)
			}
		})
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

// TestDescriptorsAndMainPIDPassThrough: descriptors the wrapper inherits
// reach the program at their numbers (systemd's socket activation, a
// shell's 3>file), and the variables with which systemd names the main
// process for socket activation and the watchdog name the program.
func TestDescriptorsAndMainPIDPassThrough(t *testing.T) {
	ns := lab.New(t, "passthrough")
	out, err := os.Create(filepath.Join(t.TempDir(), "fd3"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := wrapped(t, ns, "sh", "-c", "echo through descriptor 3 >&3")
	cmd.ExtraFiles = []*os.File{out}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if b, _ := os.ReadFile(out.Name()); string(b) != "through descriptor 3\n" {
		t.Errorf("descriptor 3 got %q", b)
	}

	script := `exec env LISTEN_PID=$$ LISTEN_FDS=0 WATCHDOG_PID=$$ WATCHDOG_USEC=1000000 OTHER_PID=$$ ` +
		tool(t, "mptcpgd") + ` run -- sh -c 'echo wrapper $PPID program $$ listen $LISTEN_PID watchdog $WATCHDOG_PID other $OTHER_PID'`
	b, err := ns.Command(t.Context(), "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	got := strings.Fields(string(b))
	if len(got) != 10 || got[5] != got[3] || got[7] != got[3] || got[9] != got[1] {
		t.Errorf("want LISTEN_PID and WATCHDOG_PID to name the program, OTHER_PID the wrapper: %s", b)
	}
}

// TestCheckCountsMPTCPSockets: mptcpgd run --check, given the wrapper's
// PID, finds the program's connection and says it is MPTCP; given a
// program that runs without the wrapper, it says its connection is not,
// and exits 1.
func TestCheckCountsMPTCPSockets(t *testing.T) {
	ns := lab.New(t, "check")
	python := runlab.Command(t, "python3")
	srv := newServer(t, ns, true)
	holder := `import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
c = socket.create_connection((host, int(port)))
print("ready", flush=True)
sys.stdin.read()`
	start := func(wrap bool) (*exec.Cmd, func()) {
		var cmd *exec.Cmd
		if wrap {
			cmd = wrapped(t, ns, python, "-c", holder, srv.addr())
		} else {
			cmd = ns.Command(t.Context(), python, "-c", holder, srv.addr())
		}
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if l, err := bufio.NewReader(stdout).ReadString('\n'); l != "ready\n" {
			t.Fatalf("program: %q, %v", l, err)
		}
		return cmd, func() { stdin.Close(); cmd.Wait() }
	}
	check := func(pid int) (string, int) {
		c := ns.Command(t.Context(), tool(t, "mptcpgd"), "run", "--check", strconv.Itoa(pid))
		out, _ := c.CombinedOutput()
		return string(out), c.ProcessState.ExitCode()
	}

	w, stop := start(true)
	out, code := check(w.Process.Pid)
	stop()
	if code != 0 || !strings.Contains(out, "1 of 1 TCP sockets are MPTCP") || !strings.Contains(out, "MPTCP established 127.0.0.1:") {
		t.Errorf("the wrapped program: exit %d, want 0 and its MPTCP connection:\n%s", code, out)
	}
	p, stop := start(false)
	out, code = check(p.Process.Pid)
	stop()
	if code != 1 || !strings.Contains(out, "0 of 1 TCP sockets are MPTCP") || !strings.Contains(out, "TCP   established") {
		t.Errorf("a program without the wrapper: exit %d, want 1 and its TCP connection:\n%s", code, out)
	}
}
