package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mptcpgd/mptcpgd/pkg/launch"
	"github.com/mptcpgd/mptcpgd/pkg/procsock"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

const runUsage = `Usage:
  mptcpgd run [flags] [--] CMD [ARGS...]
      run CMD so that its TCP sockets, and those of everything it starts, are
      Multipath TCP sockets: static, dynamic and Go programs alike, no root
      needed. Exit status and signals pass through.
  mptcpgd run --check PID|NAME...
      how many of the TCP sockets of these processes (and their children)
      are MPTCP, from the kernel's socket diagnostics

It cannot convert sockets made through io_uring or the 32-bit socketcall(2)
interface, and says so when a program uses them. Without CAP_SYS_ADMIN it
sets no_new_privs: setuid and file-capability programs run without their
privileges.

Flags:
`

// runProgram is `mptcpgd run`.
func runProgram(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mptcpgd run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	check := fs.Bool("check", false, "report the sockets of running processes instead of running a program")
	noForward := fs.String("no-forward", "", "comma-separated `signals` not to forward, because the sender signals the program too "+
		"(mptcpgd enable sets systemd's stop signal here)")
	argv0 := fs.String("argv0", "", "the program's argv[0], if not CMD (systemd's @ prefix)")
	if code, ok := parseSubcommand(fs, args, runUsage, stderr); !ok {
		return code
	}
	if *check {
		return checkSockets(fs.Args(), stdout, stderr)
	}
	signals, err := launch.ParseSignals(*noForward)
	if err != nil {
		fmt.Fprintf(stderr, "mptcpgd run: --no-forward: %v\n", err)
		return 2
	}
	st, err := launch.Run(launch.Options{
		Args: fs.Args(), Argv0: *argv0, Env: os.Environ(), NoForward: signals, Stderr: stderr,
	})
	var serr *launch.StartError
	if errors.As(err, &serr) {
		fmt.Fprintf(stderr, "mptcpgd run: %v\n", err)
		return serr.Code
	}
	if err != nil {
		fmt.Fprintf(stderr, "mptcpgd run: %v\n", err)
		return 126
	}
	if st.Signal != 0 {
		launch.Exit(st)
	}
	return st.Code
}

// checkSockets is `mptcpgd run --check`: exit 0 when every listed TCP
// socket of the processes is an MPTCP socket, 1 otherwise.
func checkSockets(args []string, stdout, stderr io.Writer) int {
	pids, err := procsock.Find(args)
	if err == nil {
		pids, err = procsock.WithDescendants(pids)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mptcpgd run --check: %v\n", err)
		return 2
	}
	code, shown := 0, 0
	for _, p := range procsock.Inspect(pids) {
		if p.Err != nil {
			fmt.Fprintf(stdout, "pid %d (%s): %v\n", p.PID, p.Comm, p.Err)
			code = 1
			continue
		}
		mptcp, all := p.Counts()
		if all == 0 {
			continue
		}
		shown++
		fmt.Fprintf(stdout, "pid %d (%s): %d of %d TCP sockets are MPTCP\n", p.PID, p.Comm, mptcp, all)
		if mptcp < all {
			code = 1
		}
		for _, s := range p.Sockets {
			fmt.Fprintf(stdout, "  %s\n", socketLine(s))
		}
		if p.Unlisted > 0 {
			fmt.Fprintf(stdout, "  and %d other sockets (UDP, unix, or TCP not yet listening or connecting)\n", p.Unlisted)
		}
	}
	if shown == 0 && code == 0 {
		fmt.Fprintf(stdout, "no listening or connected TCP socket in %d processes\n", len(pids))
	}
	return code
}

func socketLine(s sockdiag.Socket) string {
	kind, note := "TCP  ", ""
	if s.MPTCP {
		kind = "MPTCP"
		switch {
		case s.Fallback:
			note = "  fell back to TCP: the peer (or a middlebox) does not do MPTCP"
		case s.JoinedSubflows > 0:
			note = fmt.Sprintf("  %d more subflows", s.JoinedSubflows)
		}
	}
	if s.State == sockdiag.StateListen {
		return fmt.Sprintf("%s listen %s", kind, s.Local)
	}
	return fmt.Sprintf("%s %s %s -> %s%s", kind, s.State, s.Local, s.Remote, note)
}

// parseSubcommand parses a subcommand's flags, which must leave arguments;
// when it returns false, the command ends with the code (0 for --help).
func parseSubcommand(fs *flag.FlagSet, args []string, usage string, stderr io.Writer) (int, bool) {
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2, false
	}
	return 0, true
}
