// Command mptcpgd is the MPTCP path manager daemon: it keeps the kernel's
// MPTCP endpoints, limits and per-interface source routing in line with
// /etc/mptcpgd.toml as interfaces, carriers and addresses come and go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/control"
	"github.com/mptcpgd/mptcpgd/pkg/daemon"
	"github.com/mptcpgd/mptcpgd/pkg/launch"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

const usage = `Usage:
  mptcpgd [flags]            run the daemon
  mptcpgd check [flags]      validate the configuration, print the effective one; exit 0 or 1
  mptcpgd show [flags]       what is managed and why: interfaces, addresses (and why one is
                             skipped), endpoints, limits, our rules and routes; live
                             connections and subflows when the daemon answers
  mptcpgd cleanup [flags]    remove every endpoint, rule and route that is ours and restore
                             the limits found at first start (stop the daemon first)
  mptcpgd reload [flags]     ask the running daemon to reload its configuration; exit 1 with
                             its reason when it refuses the new one (systemctl reload runs it)
  mptcpgd rejoin [flags]     retry every failed join now (after fixing a firewall, say)
  mptcpgd metrics [flags]    print the running daemon's metrics in the Prometheus text format
  mptcpgd top [flags]        live view of the interfaces: MPTCP throughput, subflows, joins and
                             failures, endpoint state and why; q or Ctrl-C quits
  mptcpgd adopt [flags]      take over endpoints someone else made on addresses mptcpgd
                             manages (after a lost state file); --dry-run only lists them
  mptcpgd run [--] CMD ...   run CMD with its TCP sockets made MPTCP (mptcpgd run --help)
  mptcpgd enable UNIT        run a systemd unit's program under mptcpgd run (a drop-in)
  mptcpgd disable UNIT       remove that drop-in
  mptcpgd version            print the version (also --version)

Flags:
`

type options struct {
	config   string
	socket   string
	state    string
	logLevel string
	json     bool
	version  bool
	dryRun   bool
	count    int
}

func main() {
	if code, ok := launch.RunStage(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runProgram(args, stdout, stderr)
	case "enable", "disable":
		return unitCommand(cmd, args, stdout, stderr)
	}
	fs := flag.NewFlagSet("mptcpgd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.config, "config", config.DefaultPath, "configuration `file`; only the default may be absent (built-in defaults apply)")
	fs.StringVar(&o.socket, "socket", control.DefaultPath, "control socket `path`, so daemons in several network namespaces can share a host")
	fs.StringVar(&o.state, "state", defaultStatePath(), "ownership record `file` (endpoints we own, limits found at first start)")
	fs.StringVar(&o.logLevel, "log-level", "", "log `level` (debug, info, warn, error), overriding [log] level")
	fs.BoolVar(&o.json, "json", false, "show: print the report as JSON")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVar(&o.dryRun, "dry-run", false, "adopt: only list what it would take over")
	fs.IntVar(&o.count, "count", 0, "top: stop after `n` refreshes (0: until q or Ctrl-C)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mptcpgd: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if o.logLevel != "" {
		if err := config.CheckLevel(o.logLevel); err != nil {
			fmt.Fprintf(stderr, "mptcpgd: --log-level: %v\n", err)
			return 2
		}
	}
	if o.version {
		cmd = "version"
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })

	var err error
	switch cmd {
	case "":
		err = runDaemon(o, explicit, stderr)
	case "check":
		err = check(o, explicit, stdout, stderr)
	case "show":
		err = showCmd(o, explicit, stdout)
	case "cleanup":
		err = cleanup(o, explicit, stdout)
	case "reload":
		err = reload(o)
	case "adopt":
		err = adopt(o, explicit, stdout)
	case "rejoin":
		err = rejoinNow(o)
	case "metrics":
		err = printMetrics(o, stdout)
	case "top":
		err = topCmd(o, stdout, os.Stdin)
	case "version":
		fmt.Fprintln(stdout, "mptcpgd", version)
	case "help":
		fs.Usage()
	default:
		fmt.Fprintf(stderr, "mptcpgd: unknown command %q\n", cmd)
		fs.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "mptcpgd: %v\n", err)
		return 1
	}
	return 0
}

// defaultStatePath honours systemd's StateDirectory= ($STATE_DIRECTORY).
func defaultStatePath() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return filepath.Join(d, "state.json")
	}
	return statefile.DefaultPath
}

func runDaemon(o options, explicit bool, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	return daemon.Run(ctx, daemon.Options{
		ConfigPath: o.config, ConfigExplicit: explicit,
		SocketPath: o.socket, StatePath: o.state,
		LogLevel: o.logLevel, Stderr: stderr,
		Version: version, Reload: reload,
	})
}
