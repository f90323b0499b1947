// Package launch runs a program so that its TCP sockets are Multipath TCP
// sockets (`mptcpgd run`): the program gets GODEBUG=multipathtcp=1, for Go
// programs, and a seccomp filter whose notifications a supervisor in this
// process answers with MPTCP sockets (package mptcpize), for every program.
// It passes the program's exit status through, forwards signals once, and
// follows job control, so that the wrapper is invisible to a shell or a
// service manager.
package launch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/mptcpize"
	"github.com/mptcpgd/mptcpgd/pkg/seccomp"
)

const warnPrefix = "mptcpgd run: warning: "

// Options say what to run.
type Options struct {
	// Args are the program and its arguments; Args[0] is looked up in
	// PATH unless it has a slash.
	Args []string
	// Argv0, if set, is the program's argv[0] instead of Args[0].
	Argv0 string
	// Env is the program's environment before GODEBUG is merged.
	Env []string
	// NoForward are signals not to forward (see the package comment in
	// signals.go).
	NoForward []syscall.Signal
	// Stderr receives the warnings.
	Stderr io.Writer
}

// Status is how the program ended: its exit code, or the signal that
// killed it.
type Status struct {
	Code   int
	Signal syscall.Signal
}

// StartError is a program that could not be started, with the exit code a
// shell gives for it (127 not found, 126 not executable).
type StartError struct {
	Code int
	Err  error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// Run runs the program and returns once it has ended. If processes it
// started still use the filter then (a daemon that forked away), a
// detached supervisor process takes over their notifications.
func Run(o Options) (Status, error) {
	if len(o.Args) == 0 {
		return Status{}, &StartError{Code: 2, Err: errors.New("no program to run")}
	}
	path, err := exec.LookPath(o.Args[0])
	switch {
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist):
		return Status{}, &StartError{Code: 127, Err: fmt.Errorf("%s: command not found", o.Args[0])}
	case err != nil:
		return Status{}, &StartError{Code: 126, Err: fmt.Errorf("%s: %w", o.Args[0], errors.Unwrap(err))}
	}
	argv := slices.Clone(o.Args)
	if o.Argv0 != "" {
		argv[0] = o.Argv0
	}
	warn := mptcpize.NewWarnings(o.Stderr, warnPrefix)
	privs := checkPrivileges()
	preflight(path, privs, warn)

	inherited := inheritedFDs()
	cfg := childConfig{noNewPrivs: privs.setNoNewPrivs, ignored: ignoredAtStart(), socket: len(inherited)}
	term := findTerminal()
	sigs := newSignals(planSignals(term != nil, func(s syscall.Signal) bool { return cfg.ignored&(1<<(s-1)) != 0 }, o.NoForward))

	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return Status{}, fmt.Errorf("socket pair for the child stage: %w", err)
	}
	parentEnd, childEnd := pair[0], pair[1]
	// Raw descriptors: os.StartProcess would put a non-blocking one into
	// blocking mode, for the program too.
	attr := &syscall.ProcAttr{
		Env:   MergeGODEBUG(o.Env),
		Files: append(inherited, uintptr(childEnd)),
		Sys:   &syscall.SysProcAttr{},
	}
	if term != nil {
		attr.Sys.Setpgid = true
		attr.Sys.Foreground = term.foreground
		attr.Sys.Ctty = term.fd
	}
	stageArgv := append([]string{"mptcpgd", childStage, cfg.String(), path}, argv...)
	pid, err := syscall.ForkExec("/proc/self/exe", stageArgv, attr)
	unix.Close(childEnd)
	if err != nil {
		unix.Close(parentEnd)
		return Status{}, &StartError{Code: 126, Err: fmt.Errorf("start %s: %w", path, err)}
	}
	sigs.start(forwardTarget(pid, term != nil))

	l, lerr := receiveListener(parentEnd)
	unix.Close(parentEnd)
	var sup *mptcpize.Supervisor
	served := make(chan error, 1)
	if lerr == nil {
		sup, lerr = mptcpize.NewSupervisor(l, warn)
	}
	if lerr != nil {
		warn.Warn("listener", "cannot supervise the program's sockets (%v): Go programs still get MPTCP "+
			"through GODEBUG=multipathtcp=1, other programs run on plain TCP", lerr)
	} else {
		go serve(sup, l, served, warn)
	}

	st := waitProgram(pid, term, sigs)
	if sup != nil {
		handOff(l, sup, served, warn)
	}
	return st, nil
}

// noFD closes a descriptor number in the child (syscall.ProcAttr.Files).
const noFD = ^uintptr(0)

// inheritedFDs are the descriptors the program gets at the numbers this
// process got them: standard input, output and error, and every other
// one without close-on-exec (systemd's socket activation, a shell's
// 3>file), with noFD for the numbers in between. They are made
// close-on-exec here, so that only the program inherits them, not the
// supervisor stage.
func inheritedFDs() []uintptr {
	fds := []uintptr{0, 1, 2}
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		unix.CloseOnExec(fd)
		for len(fds) <= fd {
			fds = append(fds, noFD)
		}
		fds[fd] = uintptr(fd)
	}
	return fds
}

// waitProgram waits for the program to end. With a terminal, a stopped
// program stops mptcpgd run too, with the same signal, after taking the
// terminal back, so that the shell sees the job stopped; when the shell
// continues it, the program gets the terminal back (if the job is in the
// foreground) and is continued.
func waitProgram(pid int, term *terminal, sigs *signals) Status {
	opts := 0
	if term != nil {
		opts = unix.WUNTRACED
	}
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, opts, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		switch {
		case err != nil:
			sigs.stop()
			return Status{Code: 126}
		case ws.Stopped() && term != nil:
			if term.owner() == pid {
				term.give(term.pgrp)
			}
			sigs.stopLike(ws.StopSignal())
			if term.owner() == term.pgrp {
				term.give(pid)
			}
			_ = unix.Kill(-pid, unix.SIGCONT)
			continue
		}
		sigs.stop()
		if term != nil && term.owner() == pid {
			term.give(term.pgrp)
		}
		if ws.Signaled() {
			return Status{Signal: ws.Signal()}
		}
		return Status{Code: ws.ExitStatus()}
	}
}

// serve runs the supervisor. If its listener fails, the listener is
// closed, so that the program's socket calls fail (ENOSYS) rather than
// wait for an answer forever.
func serve(sup *mptcpize.Supervisor, l *seccomp.Listener, served chan<- error, warn *mptcpize.Warnings) {
	err := sup.Serve()
	if err != nil {
		warn.Warn("serve", "the supervisor failed (%v): the program's TCP socket() calls fail from now on", err)
		l.Close()
	}
	served <- err
}

// handOff ends the supervision once the program has ended: at once if no
// process uses the filter any more; otherwise a detached supervisor takes
// the listener over, or, if it cannot be started, this process serves
// until those processes are gone.
func handOff(l *seccomp.Listener, sup *mptcpize.Supervisor, served chan error, warn *mptcpize.Warnings) {
	select {
	case <-served:
		return // failed, and closed the listener
	default:
	}
	defer l.Close()
	ev, err := l.Wait(-1, 0)
	if err == nil && ev == seccomp.Unused {
		sup.Stop()
		<-served
		return
	}
	if err := startSupervisorStage(l); err != nil {
		warn.Warn("handoff", "the program left processes behind, and no supervisor could be started for them (%v): "+
			"mptcpgd run stays until they exit", err)
		<-served
		return
	}
	sup.Stop()
	<-served
}

// startSupervisorStage starts the supervisor stage with a copy of the
// listener, in a session of its own so that the terminal's signals and
// hangup leave it alone. It stays in this process's cgroup, user and
// network namespace, as the sockets it makes must. It keeps standard
// error for its warnings unless that is a pipe, whose reader (a shell's
// command substitution, a logger) would otherwise wait for the daemon to
// end, although the daemon closed its own end.
func startSupervisorStage(l *seccomp.Listener) error {
	null, err := unix.Open(os.DevNull, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(null)
	errOut := uintptr(2)
	var st unix.Stat_t
	if unix.Fstat(2, &st) != nil || st.Mode&unix.S_IFMT == unix.S_IFIFO {
		errOut = uintptr(null)
	}
	_, err = syscall.ForkExec("/proc/self/exe", []string{"mptcpgd", supervisorStage}, &syscall.ProcAttr{
		Files: []uintptr{uintptr(null), uintptr(null), errOut, uintptr(l.FD())},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	return err
}

// signals catches the signals to forward and forwards them to the program
// until it has been reaped.
type signals struct {
	setup signalSetup
	ch    chan os.Signal
	mu    sync.Mutex
	// target is the kill(2) target, 0 before the start and after the end.
	target int
}

// newSignals sets the dispositions at once, so that nothing sent before
// the program runs is lost or ends this process.
func newSignals(setup signalSetup) *signals {
	s := &signals{setup: setup, ch: make(chan os.Signal, 32)}
	for _, sig := range setup.ignore {
		signal.Ignore(sig)
	}
	for _, sig := range setup.forward {
		signal.Notify(s.ch, sig)
	}
	return s
}

func (s *signals) start(target int) {
	s.mu.Lock()
	s.target = target
	s.mu.Unlock()
	go func() {
		for sig := range s.ch {
			s.mu.Lock()
			if s.target != 0 {
				_ = unix.Kill(s.target, sig.(syscall.Signal))
			}
			s.mu.Unlock()
		}
	}()
}

// stop ends forwarding: the program has been reaped and its PID may be
// reused. The dispositions stay, so that a late signal does not end the
// supervisor.
func (s *signals) stop() {
	s.mu.Lock()
	s.target = 0
	s.mu.Unlock()
}

// stopLike stops this process with sig, the signal that stopped the
// program, and returns once it is continued. SIGTSTP and SIGTTIN have
// their default action; SIGTTOU, which this process ignores, gets it for
// the moment.
func (s *signals) stopLike(sig syscall.Signal) {
	ignored := slices.Contains(s.setup.ignore, sig)
	if ignored {
		_ = setDisposition(sig, sigDefault)
	}
	runtime.LockOSThread()
	// Sent to this thread, which does not block it, so the stop takes
	// effect before the call returns.
	_ = unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
	runtime.UnlockOSThread()
	if ignored {
		_ = setDisposition(sig, sigIgnore)
	}
}
