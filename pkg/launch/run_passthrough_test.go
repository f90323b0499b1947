package launch_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/internal/runlab"
)

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
