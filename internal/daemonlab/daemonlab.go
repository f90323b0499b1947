// Package daemonlab runs the real mptcpgd binary inside lab namespaces for
// tests: it builds the binary once per test process, starts it with its own
// state file, control socket and NOTIFY_SOCKET, reads what it tells systemd
// and what it logs, and stops it by its PID.
package daemonlab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/show"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the mptcpgd binary to run: $MPTCPGD_BIN when set (the
// demo passes the one `make` built), else cmd/mptcpgd built once per
// process.
func Binary(tb lab.TB) string {
	tb.Helper()
	if p := os.Getenv("MPTCPGD_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			tb.Fatal(err)
		}
		return abs
	}
	buildOnce.Do(func() {
		_, here, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(here), "..", "..")
		dir, err := os.MkdirTemp("", "mptcpgd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		// Daemons run AsService execute it as another user.
		if err := os.Chmod(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mptcpgd")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/mptcpgd")
		cmd.Dir = root
		// As make build does.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/mptcpgd: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

// Cleanup removes the binary Binary built, if it built one; a test
// package's TestMain calls it after its tests.
func Cleanup() {
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
}

// Options say how to start a daemon.
type Options struct {
	// Config is the configuration file; empty runs with no --config (the
	// default path, absent in tests: built-in defaults).
	Config string
	// Args are extra command-line arguments.
	Args []string
	// Env are extra environment variables (e.g. WATCHDOG_USEC=...).
	Env []string
	// NoWait returns at once instead of waiting for READY=1.
	NoWait bool
	// AsService runs the daemon as the unit does: as an unprivileged user
	// (ServiceUID, standing in for DynamicUser) with CAP_NET_ADMIN and no
	// other capability, its directory (state, socket, RUNTIME_DIRECTORY)
	// owned by that user.
	AsService bool
	// State is the state file; empty: one in the daemon's directory.
	State string
}

// ServiceUID is the user AsService daemons run as.
const ServiceUID = 65534

// ServiceCommand is the setpriv command line that runs args as the unit
// runs the daemon.
func ServiceCommand(args ...string) []string {
	return append([]string{"setpriv", fmt.Sprintf("--reuid=%d", ServiceUID), fmt.Sprintf("--regid=%d", ServiceUID),
		"--clear-groups", "--no-new-privs", "--inh-caps=-all,+net_admin", "--ambient-caps=-all,+net_admin",
		"--bounding-set=-all,+net_admin"}, args...)
}

// Daemon is a running mptcpgd.
type Daemon struct {
	NS     *lab.NS
	Cmd    *exec.Cmd
	Dir    string
	Socket string
	State  string

	tb     lab.TB
	notify *net.UnixConn
	msgs   chan string
	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan struct{}
	err    error
}

// Start runs mptcpgd in ns. Unless NoWait, it waits for READY=1 and fails
// the test if the daemon exits first. The daemon is stopped when tb ends.
func Start(tb lab.TB, ns *lab.NS, opt Options) *Daemon {
	tb.Helper()
	bin := Binary(tb)
	dir := tb.TempDir()
	if opt.AsService {
		dir = serviceDir(tb)
	}
	d := &Daemon{
		NS: ns, Dir: dir, tb: tb,
		Socket: filepath.Join(dir, "control.sock"),
		State:  filepath.Join(dir, "state.json"),
		msgs:   make(chan string, 64),
		exited: make(chan struct{}),
	}
	notifyPath := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		tb.Fatal(err)
	}
	d.notify = conn
	go d.readNotify()
	if opt.State != "" {
		d.State = opt.State
	}

	args := []string{bin, "--socket", d.Socket, "--state", d.State}
	if opt.Config != "" {
		args = append(args, "--config", opt.Config)
	}
	args = append(args, opt.Args...)
	env := append(os.Environ(), "NOTIFY_SOCKET="+notifyPath)
	if opt.AsService {
		if err := os.Chmod(notifyPath, 0o666); err != nil {
			tb.Fatal(err)
		}
		args = ServiceCommand(args...)
		env = append(env, "RUNTIME_DIRECTORY="+dir)
	} else {
		env = append(env, "RUNTIME_DIRECTORY="+lockDir(tb))
	}
	d.Cmd = ns.Command(context.Background(), args[0], args[1:]...)
	d.Cmd.Env = env
	d.Cmd.Env = append(d.Cmd.Env, opt.Env...)
	// A process left holding the daemon's stderr must not keep Stop
	// waiting once the daemon itself has gone.
	d.Cmd.WaitDelay = 5 * time.Second
	d.Cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.stderr.Write(b)
	})
	if err := d.Cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		d.err = d.Cmd.Wait()
		close(d.exited)
	}()
	tb.Cleanup(func() {
		d.Stop()
		conn.Close()
		if tb.Failed() {
			tb.Logf("mptcpgd in %s logged:\n%s", ns.Name, d.Stderr())
		}
	})
	if !opt.NoWait {
		d.WaitNotify("READY=1", 30*time.Second)
	}
	return d
}

// serviceDir is a directory of the service user's that the test removes,
// outside the test's own temporary directories, which only root may enter.
func serviceDir(tb lab.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "mptcpgd-service-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, ServiceUID, ServiceUID); err != nil {
		tb.Fatal(err)
	}
	return dir
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func (d *Daemon) readNotify() {
	buf := make([]byte, 4096)
	for {
		n, err := d.notify.Read(buf)
		if err != nil {
			close(d.msgs)
			return
		}
		d.msgs <- string(buf[:n])
	}
}

// WaitNotify waits for a notification datagram containing want and returns
// the whole datagram. Datagrams before it are dropped.
func (d *Daemon) WaitNotify(want string, timeout time.Duration) string {
	d.tb.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-d.msgs:
			if !ok {
				d.tb.Fatalf("notify socket closed while waiting for %q", want)
			}
			if strings.Contains(m, want) {
				return m
			}
		case <-d.exited:
			d.tb.Fatalf("mptcpgd exited (%v) while waiting for %q; it logged:\n%s", d.err, want, d.Stderr())
		case <-deadline:
			d.tb.Fatalf("no %q from mptcpgd within %v; it logged:\n%s", want, timeout, d.Stderr())
		}
	}
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig syscall.Signal) {
	d.tb.Helper()
	if err := d.Cmd.Process.Signal(sig); err != nil {
		d.tb.Fatalf("signal mptcpgd: %v", err)
	}
}

// Stop sends SIGTERM and waits for the daemon to exit (SIGKILL after 20 s).
// It returns the exit error, nil for a clean exit.
func (d *Daemon) Stop() error {
	select {
	case <-d.exited:
		return d.err
	default:
	}
	Terminate(d.Cmd.Process, d.exited, 20*time.Second)
	return d.err
}

// Terminate sends p SIGTERM and waits until exited is closed, killing p if
// it is still there after grace.
func Terminate(p *os.Process, exited <-chan struct{}, grace time.Duration) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
	}
}

// Exited is closed when the daemon process has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// Err is the exit error once Exited is closed.
func (d *Daemon) Err() error { return d.err }

// Stderr is everything the daemon wrote to standard error so far.
func (d *Daemon) Stderr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

// Logs parses the daemon's JSON log lines (its format when standard error
// is not a terminal).
func (d *Daemon) Logs() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(d.Stderr()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// Run runs `mptcpgd ARGS...` (a one-shot subcommand) in the daemon's
// namespace with its socket and state file, and returns its output and
// exit error.
func (d *Daemon) Run(args ...string) (stdout, stderr string, err error) {
	return RunIn(d.tb, d.NS, append(args, "--socket", d.Socket, "--state", d.State)...)
}

// RunIn runs `mptcpgd ARGS...` in ns.
func RunIn(tb lab.TB, ns *lab.NS, args ...string) (stdout, stderr string, err error) {
	tb.Helper()
	cmd := ns.Command(context.Background(), Binary(tb), args...)
	cmd.Env = append(os.Environ(), "RUNTIME_DIRECTORY="+lockDir(tb))
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	return o.String(), e.String(), err
}

// Show runs `mptcpgd show --json` against the daemon.
func (d *Daemon) Show() show.Report {
	d.tb.Helper()
	out, errOut, err := d.Run("show", "--json")
	if err != nil {
		d.tb.Fatalf("mptcpgd show: %v: %s", err, errOut)
	}
	var r show.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		d.tb.Fatalf("mptcpgd show --json: %v:\n%s", err, out)
	}
	return r
}

// WriteConfig writes text to a file in a temporary directory and returns
// its path.
func WriteConfig(tb lab.TB, text string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "mptcpgd.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

var (
	lockDirOnce sync.Once
	lockDirPath string
	lockDirErr  error
)

// lockDir is where the daemons this process starts as root keep their
// one-per-namespace lock: one directory for all of them, so two daemons in
// one namespace still meet, and not the host's /run/mptcpgd. Directories of
// earlier runs whose process is gone are removed first.
func lockDir(tb lab.TB) string {
	lockDirOnce.Do(func() {
		base := filepath.Join(os.TempDir(), "mptcpgd-lab-locks")
		if err := os.MkdirAll(base, 0o755); err != nil {
			lockDirErr = err
			return
		}
		entries, _ := os.ReadDir(base)
		for _, e := range entries {
			if pid, err := strconv.Atoi(e.Name()); err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) != nil {
				_ = os.RemoveAll(filepath.Join(base, e.Name()))
			}
		}
		lockDirPath = filepath.Join(base, strconv.Itoa(os.Getpid()))
		lockDirErr = os.MkdirAll(lockDirPath, 0o755)
	})
	if lockDirErr != nil {
		tb.Fatalf("lock directory for the lab's daemons: %v", lockDirErr)
	}
	return lockDirPath
}
