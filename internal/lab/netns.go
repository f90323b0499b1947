// Package lab builds throwaway network namespaces for tests: named
// namespaces, veth links between them, commands and Go functions run inside
// them, and a teardown that runs even when a test fails or panics.
//
// Everything the lab creates lives in namespaces named with Prefix and the
// test process id, so a run that was killed before its cleanup can be swept by
// the next one without touching anything else on the host.
package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of every namespace the lab creates.
const Prefix = "mgdlab-"

const netnsDir = "/run/netns"

var (
	seq       atomic.Uint32
	sweepOnce sync.Once
)

// TB is what the lab needs of a test: testing.TB satisfies it, and so can
// a program (the demo) that runs the lab outside `go test`.
type TB interface {
	Helper()
	Cleanup(func())
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
	Skip(args ...any)
	Failed() bool
	TempDir() string
}

// NS is a network namespace owned by one test.
type NS struct {
	// Name is the namespace's name under /run/netns.
	Name string
	tb   TB
	// machine: the machine's own namespace (Machine), which outlives the
	// test and holds processes that are not the test's.
	machine bool

	fdOnce sync.Once
	fd     *os.File
}

// GuestMarker is the file that marks a throwaway test guest (the systemd
// guest of scripts/vm): Machine works only where it exists.
const GuestMarker = "/etc/mptcpgd-test-guest"

// Machine returns the machine's own network namespace (PID 1's) as an NS,
// named with `ip netns attach` so that the lab's helpers reach it: a test
// that runs the daemon as a service under systemd builds its topology
// around it. It fails the test anywhere but in a test guest, since the
// test then changes the machine's own network. Its cleanup removes the
// name only; the links the test added go with the lab's other namespaces.
func Machine(tb TB) *NS {
	tb.Helper()
	Require(tb)
	if _, err := os.Stat(GuestMarker); err != nil {
		tb.Fatalf("lab.Machine changes this machine's own network: it runs only in a test guest (%s, scripts/vm); %v", GuestMarker, err)
	}
	sweepOnce.Do(sweepStale)
	name := fmt.Sprintf("%s%d-%d-machine", Prefix, os.Getpid(), seq.Add(1))
	if out, err := exec.Command("ip", "netns", "attach", name, "1").CombinedOutput(); err != nil {
		tb.Fatalf("ip netns attach %s 1: %v: %s", name, err, out)
	}
	n := &NS{Name: name, tb: tb, machine: true}
	tb.Cleanup(func() { n.delete() })
	return n
}

// Require skips the test when it cannot create namespaces (not root, no ip
// command), or under -short. Under CI=true a skip for want of root or ip is
// a failure: CI runs as root and must run every kernel test.
func Require(tb TB) {
	tb.Helper()
	if shortTests() {
		tb.Skip("kernel test: not run with -short")
	}
	reason := ""
	switch {
	case os.Geteuid() != 0:
		reason = "needs root to create network namespaces"
	default:
		if _, err := exec.LookPath("ip"); err != nil {
			reason = "needs the ip command (iproute2)"
		}
	}
	if reason == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("kernel test cannot run under CI=true: %s", reason)
	}
	tb.Skip(reason)
}

// shortTests tells whether `go test -short` runs us: the quick loop that
// leaves the kernel out. Programs that use the lab (the demo, the bench)
// have no such flag.
func shortTests() bool {
	f := flag.Lookup("test.short")
	return f != nil && f.Value.String() == "true"
}

// New creates an empty namespace with loopback up and registers its
// deletion with tb.Cleanup. role is a short word that names it in logs.
func New(tb TB, role string) *NS {
	tb.Helper()
	Require(tb)
	sweepOnce.Do(sweepStale)
	name := fmt.Sprintf("%s%d-%d-%s", Prefix, os.Getpid(), seq.Add(1), role)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	n := &NS{Name: name, tb: tb}
	tb.Cleanup(func() { n.delete() })
	n.IP("link", "set", "lo", "up")
	if os.Getenv(MonitorEnv) != "" {
		n.monitor(role)
	}
	return n
}

// MonitorEnv, when set in the environment, makes every namespace log what
// `ip mptcp monitor` sees there, for a test that fails on a kernel that
// cannot be debugged interactively (the guests of make test-kernels).
const MonitorEnv = "MPTCPGD_LAB_MONITOR"

// monitor logs the namespace's MPTCP events until the test ends.
func (n *NS) monitor(role string) {
	cmd := exec.Command("ip", "-n", n.Name, "mptcp", "monitor")
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		n.tb.Logf("%s: ip mptcp monitor: %v", role, err)
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n.tb.Logf("%s %s mptcp monitor: %s", time.Now().Format("15:04:05.000"), role, sc.Text())
		}
	}()
	n.tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
	})
}

// delete kills every process still inside the namespace (only processes the
// test started can be there) and removes it; of the machine's namespace it
// removes the name only.
func (n *NS) delete() {
	if out, err := exec.Command("ip", "netns", "pids", n.Name).Output(); err == nil && !n.machine {
		for _, f := range strings.Fields(string(out)) {
			// Never the test binary itself, should one of its threads
			// have been stranded inside.
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
		n.tb.Errorf("ip netns del %s: %v: %s", n.Name, err, out)
	}
}

// sweepStale deletes namespaces left behind by lab processes that no longer
// run (a test binary killed by a timeout cannot run its cleanups).
func sweepStale() {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), Prefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		_ = exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}

// Path is the namespace's bind-mount, usable with setns(2) or ip -n.
func (n *NS) Path() string { return filepath.Join(netnsDir, n.Name) }

// Open returns a file descriptor of the namespace, for example for
// netlink.Config.NetNS. The caller closes it.
func (n *NS) Open() (*os.File, error) { return os.Open(n.Path()) }

// FD returns a descriptor of the namespace for the NetNS field of a
// netlink socket's configuration. It stays open until the test that created
// the namespace ends; every call returns the same one.
func (n *NS) FD() int {
	n.tb.Helper()
	n.fdOnce.Do(func() {
		f, err := n.Open()
		if err != nil {
			n.tb.Fatalf("open namespace %s: %v", n.Name, err)
		}
		n.fd = f
		n.tb.Cleanup(func() { f.Close() })
	})
	return int(n.fd.Fd())
}

// Command prepares name args... to run inside the namespace.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Exec runs a command inside the namespace and returns its standard output.
// The error includes standard error.
func (n *NS) Exec(name string, args ...string) (string, error) {
	cmd := n.Command(context.Background(), name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A daemon it started must not keep the caller waiting on its output.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), n.Name, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// MustExec is Exec that fails the test on error.
func (n *NS) MustExec(name string, args ...string) string {
	n.tb.Helper()
	out, err := n.Exec(name, args...)
	if err != nil {
		n.tb.Fatal(err)
	}
	return out
}

// IP runs `ip ARGS...` inside the namespace and fails the test on error.
func (n *NS) IP(args ...string) string {
	n.tb.Helper()
	return n.tool(n.tb, "ip", args...)
}

// tool runs an iproute2 program (ip, tc) with -n NAME and reports a failure
// to tb, which may be a subtest of the one that created the namespace.
func (n *NS) tool(tb TB, prog string, args ...string) string {
	tb.Helper()
	out, err := exec.Command(prog, append([]string{"-n", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s -n %s %s: %v: %s", prog, n.Name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Sysctl sets a sysctl (dotted name, e.g. net.ipv4.conf.all.rp_filter) in
// the namespace.
func (n *NS) Sysctl(key, value string) {
	n.tb.Helper()
	n.MustExec("sysctl", "-qw", key+"="+value)
}

// Do runs fn on an OS thread that has entered the namespace. The thread is
// returned to the test's namespace afterwards, also when fn panics, or
// retired if that fails.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- n.doLocked(fn)
	}()
	return <-errc
}

func (n *NS) doLocked(fn func() error) (err error) {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := n.Open()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", n.Name, err)
	}
	defer func() {
		// A panic inside the namespace must not kill the test binary
		// before its cleanups have deleted the namespaces; and the thread
		// must leave the namespace even then: a thread that stays in it
		// may be the process's main thread, which Go cannot retire, and
		// the namespace's cleanup kills every process inside it.
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in namespace %s: %v", n.Name, r)
		}
		if serr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); serr != nil {
			// The thread stays locked and exits with its goroutine, so no
			// other goroutine ever runs in the wrong namespace.
			err = errors.Join(err, fmt.Errorf("return from %s: %w", n.Name, serr))
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// Veth connects namespace a (device aDev) and b (device bDev) with a veth
// pair and brings both ends up.
func Veth(a *NS, aDev string, b *NS, bDev string) {
	a.tb.Helper()
	veth(a.tb, a, aDev, b, bDev)
}

func veth(tb TB, a *NS, aDev string, b *NS, bDev string) {
	tb.Helper()
	a.tool(tb, "ip", "link", "add", aDev, "type", "veth", "peer", "name", bDev, "netns", b.Name)
	a.tool(tb, "ip", "link", "set", aDev, "up")
	b.tool(tb, "ip", "link", "set", bDev, "up")
}
