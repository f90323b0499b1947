package launch_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/internal/runlab"
)

// terminal is an interactive bash on a pseudo-terminal, driven as a user
// types.
type terminal struct {
	t      *testing.T
	master *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	seen   int
}

func newTerminal(t *testing.T, ns *lab.NS) *terminal {
	t.Helper()
	bash := runlab.Command(t, "bash")
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 100}); err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	cmd := ns.Command(t.Context(), bash, "--norc", "--noprofile", "-i")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TERM=dumb", "PS1=$ "}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, master: master}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("the terminal showed:\n%s", term.output())
		}
	})
	return term
}

func (term *terminal) output() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

func (term *terminal) send(s string) {
	term.t.Helper()
	if _, err := term.master.WriteString(s); err != nil {
		term.t.Fatal(err)
	}
}

// expect waits for s in what the terminal shows after the last match.
func (term *terminal) expect(s string) {
	term.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := term.output()
		if i := strings.Index(out[term.seen:], s); i >= 0 {
			term.seen += i + len(s)
			return
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("the terminal never showed %q", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTerminal: in an interactive shell, Ctrl-C reaches the program once,
// Ctrl-Z stops the job and fg continues it, a killed job's status is the
// same, and the program owns the terminal (its size, its input).
func TestTerminal(t *testing.T) {
	ns := lab.New(t, "tty")
	python := runlab.Command(t, "python3")
	run := tool(t, "mptcpgd") + " run "
	term := newTerminal(t, ns)
	term.send("echo SHELL-$((1+1))\n")
	term.expect("SHELL-2")

	// The program counts its SIGINTs for a while after the first.
	term.send(run + python + ` -c 'import signal,time; n=[0]; signal.signal(signal.SIGINT, lambda s,f: n.__setitem__(0, n[0]+1)); print("RE"+"ADY", flush=True)
while n[0] == 0: time.sleep(0.01)
time.sleep(0.5); print("INTS", n[0])'` + "\n")
	term.expect("READY")
	term.send("\x03")
	term.expect("INTS 1\r\n")

	term.send(run + `sh -c 'echo ST$((1))ARTED; exec sleep 60'` + "\n")
	term.expect("ST1ARTED")
	// The shell prints, then execs sleep: Ctrl-Z once sleep runs, so that
	// it is sleep that must be stopped.
	waitFor(t, "sleep to run", func() bool {
		for k := range processStates(t, ns) {
			if strings.HasPrefix(k, "sleep/") {
				return true
			}
		}
		return false
	})
	term.send("\x1a")
	term.expect("Stopped")
	if states := processStates(t, ns); !allStopped(states) {
		t.Errorf("after Ctrl-Z, want mptcpgd run and sleep stopped: %v", states)
	}
	term.send("fg\n")
	term.expect("sleep 60")
	waitRunning(t, ns)
	term.send("\x03")
	term.send("echo STATUS-$?\n")
	term.expect("STATUS-130")

	term.send(run + `sh -c 'stty size; read x; echo GOT-$x'` + "\n")
	term.expect("40 100")
	term.send("abc\n")
	term.expect("GOT-abc")
}

// processStates maps the command of every process in ns but the shell to
// its state letter (R, S, T, ...).
func processStates(t *testing.T, ns *lab.NS) map[string]string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", ns.Name).Output()
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, pid := range strings.Fields(string(out)) {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		name := s[strings.IndexByte(s, '(')+1 : strings.LastIndexByte(s, ')')]
		if name != "bash" {
			states[name+"/"+pid] = strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
		}
	}
	return states
}

func allStopped(states map[string]string) bool {
	names := 0
	for k, st := range states {
		if st != "T" {
			return false
		}
		if strings.HasPrefix(k, "mptcpgd/") || strings.HasPrefix(k, "sleep/") {
			names++
		}
	}
	return names == 2
}

// waitFor waits, at most 10 s, until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitRunning waits until no process in ns is stopped.
func waitRunning(t *testing.T, ns *lab.NS) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stopped := false
		for _, st := range processStates(t, ns) {
			stopped = stopped || st == "T"
		}
		if !stopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after fg, processes stay stopped: %v", processStates(t, ns))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
