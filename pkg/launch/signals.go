package launch

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Signal delivery. The aim is that the program gets every signal once, as
// it would without the wrapper:
//
//   - With a controlling terminal, the program runs in a process group of
//     its own, in the foreground if mptcpgd run was. The terminal's signals
//     (Ctrl-C, Ctrl-\, Ctrl-Z, window size) then reach the program's group
//     alone, and a signal that reaches mptcpgd run was meant for it alone
//     (kill PID, or the shell's kill %JOB): it is forwarded to the
//     program's group, once. Job control follows the program: when it
//     stops, mptcpgd run takes the terminal back and stops with the same
//     signal, so the shell sees the job stopped; fg and bg continue both.
//     SIGTSTP and SIGTTIN keep their default action for that (Go's runtime
//     would swallow them once caught), so a SIGTSTP sent to mptcpgd run
//     itself stops it alone.
//   - Without one (a service, a script), the program stays in mptcpgd
//     run's process group and a signal is forwarded to the program's
//     process alone, as `kill $MAINPID` reaches the main process alone.
//     Signals that the sender also delivers to the program itself
//     (systemd's KillMode=control-group stop signal) are named with
//     --no-forward and dropped, which `mptcpgd enable` does.
//
// Signals ignored when mptcpgd run started stay ignored for the program
// and are not watched.

// watched are the signals mptcpgd run forwards, when not ignored at its
// start or named in noForward.
var watched = []syscall.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGALRM, unix.SIGWINCH,
}

// signalSetup is what mptcpgd run does with its own signal dispositions.
type signalSetup struct {
	// forward are caught and sent on to the program.
	forward []syscall.Signal
	// ignore are ignored by mptcpgd run itself: SIGPIPE, so that a closed
	// standard error cannot end the supervisor; SIGTTOU with a terminal,
	// so that it can hand the terminal back and forth and print from the
	// background; and those named in noForward.
	ignore []syscall.Signal
}

// planSignals decides the dispositions; ignoredAtStart says which signals
// were ignored when the process started.
func planSignals(terminal bool, ignoredAtStart func(syscall.Signal) bool, noForward []syscall.Signal) signalSetup {
	s := signalSetup{ignore: []syscall.Signal{unix.SIGPIPE}}
	if terminal {
		s.ignore = append(s.ignore, unix.SIGTTOU)
	}
	for _, sig := range watched {
		switch {
		case ignoredAtStart(sig):
		case slices.Contains(noForward, sig):
			s.ignore = append(s.ignore, sig)
		default:
			s.forward = append(s.forward, sig)
		}
	}
	return s
}

// forwardTarget is the kill(2) target for a signal to the program pid:
// its process group with a terminal, the process alone without.
func forwardTarget(pid int, terminal bool) int {
	if terminal {
		return -pid
	}
	return pid
}

// ParseSignals reads a comma-separated list of signal names or numbers
// ("SIGTERM,HUP,10").
func ParseSignals(list string) ([]syscall.Signal, error) {
	var out []syscall.Signal
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 65 {
			out = append(out, syscall.Signal(n))
			continue
		}
		sig := unix.SignalNum(strings.ToUpper(name))
		if sig == 0 {
			sig = unix.SignalNum("SIG" + strings.ToUpper(name))
		}
		if sig == 0 {
			return nil, fmt.Errorf("unknown signal %q", name)
		}
		out = append(out, sig)
	}
	return out, nil
}
