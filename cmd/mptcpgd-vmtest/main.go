// Command mptcpgd-vmtest runs tests in qemu guests, for what the host
// cannot show: other kernels and a real systemd.
//
//	mptcpgd-vmtest kernels [flags] [SERIES...]
//	    The kernel test packages (those whose tests use internal/lab or
//	    internal/daemonlab) on Debian's kernels of each series (default:
//	    $KERNELS, else "6.1 6.12"), each booted from a busybox initramfs
//	    with the host's root shared read-only.
//	mptcpgd-vmtest systemd [flags]
//	    The guest tests (files tagged //go:build guest, tests named
//	    TestGuest*) in a Debian 12 guest whose PID 1 is systemd.
//
// Kernels, initramfs and the Debian image are built on demand and cached
// (-cache). Test binaries are static (CGO_ENABLED=0) and run as root with
// CI=true, so that no kernel test can skip. It prints a table of packages
// per guest and exits 1 if anything failed; the logs and each guest's
// console stay in -logs. Run it as root (`make test-kernels`,
// `make test-guest`).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/internal/vm"
)

// opts are what both commands share.
type opts struct {
	root         string
	cache        vm.Cache
	logs         string
	accel        vm.Accel
	cpus         int
	memoryMiB    int
	guestTimeout time.Duration
	testTimeout  time.Duration
	run          string
	packages     *regexp.Regexp
	testArgs     []string
	env          []string
	verbose      bool
}

func (o opts) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "vmtest: "+format+"\n", args...)
}

// console opens a guest's console log. Its "vmtest: " lines (the run
// script's progress) are echoed to standard error, everything when verbose.
func (o opts) console(path string) (io.Writer, func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return io.MultiWriter(f, &progressFilter{all: o.verbose, w: os.Stderr}), f.Close, nil
}

// boot writes run's script into work, boots m (sized and bounded by the
// options) with its console in the logs, and returns what the guest wrote
// to out, its job logs moved to the logs. guest names the guest in the
// table and its logs' directory.
func (o opts) boot(ctx context.Context, guest string, m vm.Machine, run guestRun, work, out string) (guestResults, error) {
	if err := os.WriteFile(filepath.Join(work, "run.sh"), []byte(run.Script()), 0o755); err != nil {
		return guestResults{}, err
	}
	logs := o.logDir(guest)
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return guestResults{}, err
	}
	console, closeConsole, err := o.console(filepath.Join(logs, "console.log"))
	if err != nil {
		return guestResults{}, err
	}
	defer closeConsole()
	m.CPUs, m.MemoryMiB, m.Accel, m.Timeout, m.Console = o.cpus, o.memoryMiB, o.accel, o.guestTimeout, console
	start := time.Now()
	runErr := m.Run(ctx)
	g := guestResults{Guest: guest, Wall: time.Since(start), Err: runErr}
	g.Results = readResults(out, run.Jobs)
	closeConsole()
	consoleLog := filepath.Join(logs, "console.log")
	g.Panic = kernelPanic(consoleLog)
	if g.ranNothing() || g.Panic != "" {
		g.ConsoleTail = tailLines(consoleLog, consoleTail)
	}
	return g, keepLogs(g.Results, logs)
}

// logDir is where guest's console and job logs are kept.
func (o opts) logDir(guest string) string {
	return filepath.Join(o.logs, strings.Fields(guest)[0])
}

// kernelPanic returns the console's "Kernel panic" line, if it has one.
func kernelPanic(console string) string {
	b, err := os.ReadFile(console)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if i := strings.Index(line, "Kernel panic - not syncing"); i >= 0 {
			return strings.TrimSpace(line[i:])
		}
	}
	return ""
}

// consoleTail is how many console lines a guest that ran nothing shows.
const consoleTail = 15

// tailLines returns the last n lines of the file at path (none if it cannot
// be read).
func tailLines(path string, n int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return lines[max(0, len(lines)-n):]
}

// progressFilter passes on the lines that carry "vmtest: ", or all of them.
type progressFilter struct {
	all     bool
	w       io.Writer
	partial []byte
}

func (p *progressFilter) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	for {
		i := strings.IndexByte(string(p.partial), '\n')
		if i < 0 {
			return len(b), nil
		}
		line := string(p.partial[:i+1])
		p.partial = p.partial[i+1:]
		if p.all {
			_, _ = io.WriteString(p.w, line)
		} else if _, msg, ok := strings.Cut(line, "vmtest: "); ok {
			_, _ = io.WriteString(p.w, "guest: "+msg)
		}
	}
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "kernels" && os.Args[1] != "systemd") {
		fmt.Fprintln(os.Stderr, "usage: mptcpgd-vmtest kernels [flags] [SERIES...] | systemd [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	root, _ := os.Getwd()
	o := opts{accel: vm.HostAccel()}
	fs.StringVar(&o.root, "repo", root, "the checkout whose tests run")
	cacheDir := fs.String("cache", vm.DefaultCacheDir(), "where kernels, initramfs and the Debian image are kept")
	fs.StringVar(&o.logs, "logs", filepath.Join(root, "out", "vmtest"), "where the logs and consoles go")
	fs.IntVar(&o.cpus, "cpus", 2, "guest CPUs")
	fs.IntVar(&o.memoryMiB, "memory", 4096, "guest memory in MiB")
	fs.DurationVar(&o.guestTimeout, "timeout", 30*time.Minute, "hard limit for one guest, boot to power-off")
	fs.DurationVar(&o.testTimeout, "test-timeout", 12*time.Minute, "go test -timeout of one package in a guest")
	fs.StringVar(&o.run, "run", "", "go test -run pattern (systemd: default ^TestGuest)")
	count := fs.Int("count", 1, "go test -count: run each test this many times")
	monitor := fs.Bool("monitor", false, "log `ip mptcp monitor` of every lab namespace in the tests' output ("+lab.MonitorEnv+")")
	fs.BoolVar(&o.verbose, "v", false, "echo the guests' consoles")
	pkgPattern := fs.String("packages", "", "only the packages whose directory matches this regexp")
	summary := fs.String("summary", "", "also write the failures (or that all passed) to this file, for a summary at the end of a longer run")
	_ = fs.Parse(os.Args[2:])
	var err error
	if o.packages, err = regexp.Compile(*pkgPattern); err != nil {
		fmt.Fprintf(os.Stderr, "mptcpgd-vmtest: -packages: %v\n", err)
		os.Exit(2)
	}
	o.cache = vm.Cache{Dir: *cacheDir}
	if o.run != "" && cmd == "kernels" {
		o.testArgs = append(o.testArgs, "-test.run="+o.run)
	}
	o.testArgs = append(o.testArgs, fmt.Sprintf("-test.count=%d", *count))
	if *monitor {
		o.env = append(o.env, lab.MonitorEnv+"=1")
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "mptcpgd-vmtest: needs root (apt-get download, mmdebstrap, 9p shares of the host's root)")
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	o.progress("accelerator: %s", o.accel.Name)
	var runs []guestResults
	switch cmd {
	case "kernels":
		series := fs.Args()
		if len(series) == 0 {
			series = strings.Fields(os.Getenv("KERNELS"))
		}
		if len(series) == 0 {
			series = []string{"6.1", "6.12"}
		}
		runs, err = runKernels(ctx, o, series)
	case "systemd":
		var g guestResults
		g, err = runSystemd(ctx, o)
		if g.Guest != "" {
			runs = append(runs, g)
		}
	}
	if len(runs) > 0 {
		fmt.Println()
		writeTable(os.Stdout, runs)
	}
	failed := err != nil
	for _, g := range runs {
		failed = failed || g.failed()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mptcpgd-vmtest %s: %v\n", cmd, err)
	}
	if *summary != "" {
		if werr := writeSummary(*summary, cmd, runs, err); werr != nil {
			fmt.Fprintf(os.Stderr, "mptcpgd-vmtest: %v\n", werr)
		}
	}
	if failed {
		os.Exit(1)
	}
}
