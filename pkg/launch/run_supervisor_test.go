package launch_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/internal/runlab"
)

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
