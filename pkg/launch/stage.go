package launch

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/mptcpize"
	"github.com/mptcpgd/mptcpgd/pkg/seccomp"
)

// mptcpgd run re-executes its own binary for two helper processes, named
// by their first argument:
//
//   - the child stage becomes the program: it installs the filter on
//     itself, hands the listener to mptcpgd run, and executes the program,
//     which keeps the filter (Go cannot run code between fork and execve);
//   - the supervisor stage takes the listener over when the program has
//     exited but processes it started still use the filter (a daemon that
//     forked away), so that mptcpgd run can exit with the program's status.
const (
	childStage      = "__mptcpgd-run-child"
	supervisorStage = "__mptcpgd-run-supervisor"
	// listenerFD is where the supervisor stage finds the listener. The
	// child stage's socket follows the descriptors the program inherits.
	listenerFD = 3
)

// Messages of the child stage on its socket: the listener as SCM_RIGHTS,
// or why there is none.
const (
	msgListener = 'L'
	msgError    = 'E'
)

// RunStage runs the helper process that args (os.Args) name, if any, and
// returns its exit code and true; false means args are no stage's.
func RunStage(args []string) (int, bool) {
	if len(args) < 2 {
		return 0, false
	}
	switch args[1] {
	case childStage:
		return childMain(args[2:]), true
	case supervisorStage:
		return supervisorMain(), true
	}
	return 0, false
}

// childConfig is what mptcpgd run tells the child stage besides the
// program: whether to set no_new_privs, which signals were ignored when
// mptcpgd run started (they stay ignored for the program; every other one
// gets its default action), and where its socket to mptcpgd run is.
type childConfig struct {
	noNewPrivs bool
	ignored    uint64 // bit n-1 for signal n
	socket     int
}

func (c childConfig) String() string {
	nnp := 0
	if c.noNewPrivs {
		nnp = 1
	}
	return fmt.Sprintf("nnp=%d,ignored=%x,socket=%d", nnp, c.ignored, c.socket)
}

func parseChildConfig(s string) (childConfig, error) {
	var c childConfig
	var nnp int
	_, err := fmt.Sscanf(s, "nnp=%d,ignored=%x,socket=%d", &nnp, &c.ignored, &c.socket)
	c.noNewPrivs = nnp == 1
	if err != nil || c.String() != s {
		return c, fmt.Errorf("bad child stage configuration %q", s)
	}
	return c, nil
}

// childMain is the child stage: args are the configuration, the program's
// path, and its argv.
func childMain(args []string) int {
	// Everything below, execve included, runs on this thread: the filter
	// is installed for all threads, no_new_privs set on this one first.
	runtime.LockOSThread()
	if len(args) < 3 {
		fmt.Fprintln(os.Stderr, "mptcpgd run: child stage: missing arguments")
		return 126
	}
	cfg, err := parseChildConfig(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "mptcpgd run: child stage: %v\n", err)
		return 126
	}
	path, argv := args[1], args[2:]

	msg, oob := []byte{msgListener}, []byte(nil)
	l, err := installFilter(cfg.noNewPrivs)
	if err != nil {
		msg = append([]byte{msgError}, err.Error()...)
	} else {
		oob = unix.UnixRights(l.FD())
	}
	if err := unix.Sendmsg(cfg.socket, msg, oob, nil, 0); err != nil {
		fmt.Fprintf(os.Stderr, "mptcpgd run: child stage: hand the listener over: %v\n", err)
		return 126
	}
	unix.Close(cfg.socket)
	if l != nil {
		l.Close()
	}
	adoptMainPID()

	if err := resetSignals(cfg.ignored); err != nil {
		fmt.Fprintf(os.Stderr, "mptcpgd run: child stage: %v\n", err)
		return 126
	}
	err = unix.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "mptcpgd run: cannot run %s: %v\n", path, err)
	if errors.Is(err, unix.ENOENT) {
		return 127
	}
	return 126
}

// adoptMainPID makes the program the process that systemd's socket
// activation and watchdog variables name: they name the main process,
// mptcpgd run, and a program checks them against its own PID (sd_listen_fds,
// sd_watchdog_enabled), which is this stage's.
func adoptMainPID() {
	parent, self := strconv.Itoa(os.Getppid()), strconv.Itoa(os.Getpid())
	for _, name := range []string{"LISTEN_PID", "WATCHDOG_PID"} {
		if os.Getenv(name) == parent {
			os.Setenv(name, self)
		}
	}
}

func installFilter(noNewPrivs bool) (*seccomp.Listener, error) {
	prog, err := mptcpize.Filter()
	if err != nil {
		return nil, err
	}
	if noNewPrivs {
		if err := seccomp.SetNoNewPrivs(); err != nil {
			return nil, err
		}
	}
	return seccomp.InstallListener(prog)
}

// resetSignals gives the program the signal dispositions and mask a
// program started by mptcpgd run's parent would have had: default
// actions except for the signals ignored then, nothing blocked.
func resetSignals(ignored uint64) error {
	for sig := syscall.Signal(1); sig < 32; sig++ {
		if sig == unix.SIGKILL || sig == unix.SIGSTOP {
			continue
		}
		h := sigDefault
		if ignored&(1<<(sig-1)) != 0 {
			h = sigIgnore
		}
		if err := setDisposition(sig, h); err != nil {
			return fmt.Errorf("reset the disposition of %v: %w", sig, err)
		}
	}
	var none unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &none, nil); err != nil {
		return fmt.Errorf("clear the signal mask: %w", err)
	}
	return nil
}

// ignoredAtStart reads which of the signals 1..31 the process was started
// with ignored; call it before any Notify or Ignore.
func ignoredAtStart() uint64 {
	var mask uint64
	for sig := syscall.Signal(1); sig < 32; sig++ {
		if signal.Ignored(sig) {
			mask |= 1 << (sig - 1)
		}
	}
	return mask
}

// supervisorMain is the supervisor stage: it answers the filter's
// notifications until no process uses it. It ignores the signals of a
// terminal and of a stopping service: the processes it serves get those
// themselves and may still make sockets while they shut down; it ends by
// itself once they are gone (or with SIGKILL).
func supervisorMain() int {
	signal.Ignore(unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGPIPE,
		unix.SIGUSR1, unix.SIGUSR2, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU)
	warn := mptcpize.NewWarnings(os.Stderr, warnPrefix)
	sup, err := mptcpize.NewSupervisor(seccomp.NewListener(listenerFD), warn)
	if err == nil {
		err = sup.Serve()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mptcpgd run: supervisor: %v\n", err)
		return 1
	}
	return 0
}

// receiveListener reads the child stage's message from its socket.
func receiveListener(sock int) (*seccomp.Listener, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receive the listener from the child stage: %w", err)
	}
	if n == 0 {
		return nil, errors.New("the child stage ended before installing the filter")
	}
	if buf[0] == msgError {
		return nil, errors.New(string(buf[1:n]))
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("the child stage sent no listener (%d control messages, %v)", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("the child stage sent no listener (%v)", err)
	}
	return seccomp.NewListener(fds[0]), nil
}
