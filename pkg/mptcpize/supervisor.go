package mptcpize

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/seccomp"
)

// Supervisor answers the filter's notifications. The socket it makes is
// created in its own network namespace, charged to its own cgroup and owned
// by its own user, so it must run beside the program: same user, cgroup and
// network namespace. A program that moved to another network namespace
// gets its own TCP socket instead, with a warning. It must also live as
// long as any process uses the filter: after its last listener descriptor
// is closed, the filtered calls fail with ENOSYS.
type Supervisor struct {
	l     *seccomp.Listener
	warn  *Warnings
	stop  int
	netns string
	// netnsMade: a process under the filter entered or made a network
	// namespace (the filter sends those calls); until then every thread
	// is in ours, and none is read.
	netnsMade bool
}

// NewSupervisor serves the notifications of l, reporting through warn.
func NewSupervisor(l *seccomp.Listener, warn *Warnings) (*Supervisor, error) {
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("supervisor stop eventfd: %w", err)
	}
	netns, _ := os.Readlink("/proc/self/ns/net")
	// Linux 6.6+; on older kernels a socket() only costs more.
	_ = l.SyncWakeUp()
	return &Supervisor{l: l, warn: warn, stop: stop, netns: netns}, nil
}

// Serve answers notifications until no process uses the filter any more
// or Stop is called, then returns nil. The loop runs on an OS thread of its
// own with every signal blocked: a signal that interrupts an ioctl on the
// listener makes the kernel restart it at best and, with the atomic
// SECCOMP_ADDFD_FLAG_SEND, answer the program's socket() with 0 (Go's
// preemption signal did that within 1,000 to 18,000 calls); AddFD avoids
// that flag as well, so a job-control stop, which interrupts even a thread
// that blocks every signal, is harmless too.
func (s *Supervisor) Serve() error {
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it ends with this goroutine,
		// so no other goroutine inherits its signal mask.
		runtime.LockOSThread()
		var all unix.Sigset_t
		for i := range all.Val {
			all.Val[i] = ^uint64(0)
		}
		if err := unix.PthreadSigmask(unix.SIG_BLOCK, &all, nil); err != nil {
			errc <- fmt.Errorf("block signals on the supervisor thread: %w", err)
			return
		}
		errc <- s.loop()
	}()
	return <-errc
}

// Stop makes Serve return after the notification in hand, if any; the
// ones still waiting are left to another copy of the listener.
func (s *Supervisor) Stop() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(s.stop, one[:])
}

// loop serves until the filter is unused or Stop. An error means the
// listener itself fails; a notification that cannot be answered as
// planned is reported and handed back to the kernel to run as made.
func (s *Supervisor) loop() error {
	var n seccomp.Notif
	for {
		ev, err := s.l.Wait(s.stop, -1)
		if err != nil {
			return err
		}
		if ev != seccomp.Pending {
			return nil
		}
		err = s.l.Receive(&n)
		if errors.Is(err, seccomp.ErrGone) {
			continue
		}
		if err != nil {
			return err
		}
		if err := s.handle(&n); err != nil {
			s.warn.Warn("answer:"+err.Error(), "%s: %v; the call runs as the program made it", process(n.Pid), err)
			_ = s.l.Continue(n.ID)
		}
	}
}

// handle answers one notification; a program that went away meanwhile is
// no error.
func (s *Supervisor) handle(n *seccomp.Notif) error {
	c := classify(n.Data)
	switch c.kind {
	case makeMPTCP:
		if ns, ok := s.otherNetNS(n.Pid); ok {
			s.warn.Warn("netns:"+ns, "%s is in another network namespace (%s) than mptcpgd run: its sockets there stay plain TCP", process(n.Pid), ns)
			return s.answer(s.l.Continue(n.ID))
		}
		return s.makeMPTCP(n, c)
	case socketcall:
		s.warn.Warn("socketcall", "%s makes sockets through the 32-bit socketcall(2) interface, which mptcpgd run cannot convert: they stay plain TCP", process(n.Pid))
	case ioURing:
		s.warn.Warn("io_uring", "%s set up io_uring: sockets it makes through io_uring stay plain TCP (its socket() calls are converted)", process(n.Pid))
	case netnsChange:
		s.netnsMade = true
	}
	return s.answer(s.l.Continue(n.ID))
}

// makeMPTCP creates the MPTCP socket and installs it as the call's result.
// The supervisor's own descriptor is close-on-exec; the program's copy is
// close-on-exec if it asked for SOCK_CLOEXEC. SOCK_NONBLOCK is a flag of
// the open file, which both copies share.
func (s *Supervisor) makeMPTCP(n *seccomp.Notif, c call) error {
	fd, err := unix.Socket(c.domain, c.typ|unix.SOCK_CLOEXEC, unix.IPPROTO_MPTCP)
	if err != nil {
		s.warnNoMPTCP(n.Pid, c, err)
		return s.answer(s.l.Continue(n.ID))
	}
	target, err := s.l.AddFD(n.ID, fd, c.typ&unix.SOCK_CLOEXEC != 0)
	unix.Close(fd)
	var errno unix.Errno
	switch {
	case errors.Is(err, seccomp.ErrGone):
		return nil
	case errors.As(err, &errno):
		// The program's own limits (RLIMIT_NOFILE): its socket() fails
		// as it would have.
		return s.answer(s.l.Respond(n.ID, 0, errno))
	case err != nil:
		return err
	}
	return s.answer(s.l.Respond(n.ID, int64(target), 0))
}

// answer treats a program that went away before its answer as answered.
func (s *Supervisor) answer(err error) error {
	if errors.Is(err, seccomp.ErrGone) {
		return nil
	}
	return err
}

func (s *Supervisor) warnNoMPTCP(pid uint32, c call, err error) {
	switch {
	case errors.Is(err, unix.ENOPROTOOPT):
		s.warn.Warn(KeyMPTCPDisabled, "%s", DisabledText)
	case errors.Is(err, unix.EPROTONOSUPPORT):
		s.warn.Warn("noproto:"+familyName(c.domain), "the kernel has no MPTCP for %s: %s's %s sockets stay plain TCP", familyName(c.domain), process(pid), familyName(c.domain))
	default:
		s.warn.Warn("socket:"+err.Error(), "cannot create an MPTCP socket (%s, type %#x) for %s: %v; it gets a plain TCP socket", familyName(c.domain), c.typ, process(pid), err)
	}
}

// KeyMPTCPDisabled and DisabledText are the warning for a namespace with
// net.mptcp.enabled=0, given once whether the start-up check or a
// refused socket sees it first.
const (
	KeyMPTCPDisabled = "disabled"
	DisabledText     = "MPTCP is disabled in this network namespace (sysctl net.mptcp.enabled=0): " +
		"the program runs on plain TCP; enable it with sysctl -w net.mptcp.enabled=1"
)

func familyName(domain int) string {
	if domain == unix.AF_INET6 {
		return "IPv6"
	}
	return "IPv4"
}

// otherNetNS says whether thread tid is in a network namespace other
// than the supervisor's, and names it. A thread whose namespace cannot be
// read (gone, or hidden) counts as ours.
func (s *Supervisor) otherNetNS(tid uint32) (string, bool) {
	if tid == 0 || s.netns == "" || !s.netnsMade {
		return "", false
	}
	ns, err := os.Readlink("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/ns/net")
	if err != nil || ns == s.netns {
		return "", false
	}
	return ns, true
}

// process names a thread for a warning: "pid 42 (curl)".
func process(tid uint32) string {
	if tid == 0 {
		return "a process outside mptcpgd run's PID namespace"
	}
	comm, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/comm")
	if err != nil {
		return fmt.Sprintf("pid %d", tid)
	}
	return fmt.Sprintf("pid %d (%s)", tid, strings.TrimSpace(string(comm)))
}
