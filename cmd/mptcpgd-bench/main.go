// Command mptcpgd-bench measures mptcpgd against mptcpd 0.12, side by side
// in one run, in network namespaces it creates and deletes: reaction to
// addresses and carrier loss, the stall a running transfer sees, memory,
// CPU and wakeups, a burst of connections, 64 interfaces at once, and the
// seed scenario's goodput and failover. Each figure sits beside the floor,
// the same kernel writes issued by the bench with no daemon. It prints the
// tables and writes them to a Markdown file, keeping that file's
// hand-written introduction. Run it as root (`make bench`).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// env is what every measurement needs.
type env struct {
	mptcpd      string
	configs     string
	cycles      int
	batchCycles int
	report      *report

	mu        sync.Mutex
	observed  []string
	leftovers map[string]*leftover
}

// observe records something noticed along the way for the report.
func (e *env) observe(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.observed = append(e.observed, fmt.Sprintf(format, args...))
}

// reset cleans ns after subject ran in it (resetMPTCP) and keeps count of
// what the daemons left behind; the floor's and the static setup's
// leftovers are the bench's own.
func (e *env) reset(s *lab.Scope, ns *lab.NS, limits netlinkmptcp.Limits, subject string) {
	left := resetMPTCP(s, ns, limits)
	if subject != "mptcpgd" && subject != "mptcpd" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.leftovers == nil {
		e.leftovers = map[string]*leftover{}
	}
	l := e.leftovers[subject]
	if l == nil {
		l = &leftover{}
		e.leftovers[subject] = l
	}
	l.runs++
	if len(left) > 0 {
		l.dirty++
		if l.example == "" {
			l.example = fmt.Sprintf("%s: %s", s.Name(), strings.Join(left, "; "))
		}
	}
}

// leftover counts a daemon's runs and those after which the namespace still
// held endpoints, rules or routes of its.
type leftover struct {
	runs, dirty int
	example     string
}

// leftoverNotes says what the daemons left behind when they stopped.
func (e *env) leftoverNotes() []string {
	var out []string
	for _, name := range []string{"mptcpgd", "mptcpd"} {
		l := e.leftovers[name]
		switch {
		case l == nil:
		case l.dirty == 0:
			out = append(out, fmt.Sprintf("When it stopped, %s left nothing behind in any of its %d runs.", name, l.runs))
		default:
			out = append(out, fmt.Sprintf("When it stopped, %s left its endpoints (or rules, routes) in the kernel after %d "+
				"of its %d runs; the bench removed them before the next subject. First case: %s.", name, l.dirty, l.runs, l.example))
		}
	}
	return out
}

// section is one measurement of the bench.
type section struct {
	name string
	run  func(s *lab.Scope, e *env)
}

func main() {
	out := flag.String("out", "", "Markdown file to write the results to (its text above the generated part is kept)")
	mptcpdBin := flag.String("mptcpd", "/usr/libexec/mptcpd", "the mptcpd binary (Debian's package puts it here)")
	cycles := flag.Int("cycles", 200, "cycles per reaction measurement (percentiles need at least 200)")
	batchCycles := flag.Int("batch-cycles", 200, "cycles of 8 addresses removed at once")
	configs := flag.String("configs", "configs", "directory with mptcpgd's example configurations (client.toml)")
	only := flag.String("only", "", "run only the sections whose names contain this (for development)")
	flag.Parse()

	if _, err := os.Stat(*mptcpdBin); err != nil {
		fmt.Fprintf(os.Stderr, "bench: mptcpd not found at %s (install Debian's mptcpd package, as `make bench` does): %v\n", *mptcpdBin, err)
		os.Exit(1)
	}
	r := lab.NewRunner("bench", true)
	go r.HandleSignals()
	started := time.Now()
	e := &env{mptcpd: *mptcpdBin, configs: *configs, cycles: *cycles, batchCycles: *batchCycles, report: &report{}}

	var bin string
	if err := r.Run("setup", func(s *lab.Scope) { bin = daemonlab.Binary(s) }); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	e.report.machine = machineFacts(bin, *mptcpdBin)
	e.report.add(setupTable(*mptcpdBin))

	sections := []section{
		{"reaction", reactionSection},
		{"carrier", carrierSection},
		{"stall", stallSection},
		{"rejoin", rejoinSection},
		{"cost", costSection},
		{"burst", burstSection},
		{"scale", scaleSection},
		{"seed", seedSection},
		{"metrics", metricsSection},
	}
	for _, sec := range sections {
		if *only != "" && !strings.Contains(sec.name, *only) {
			continue
		}
		t0 := time.Now()
		fmt.Fprintf(os.Stderr, "bench: %s ...\n", sec.name)
		if err := r.Run(sec.name, func(s *lab.Scope) { sec.run(s, e) }); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			e.report.failed(err)
		}
		fmt.Fprintf(os.Stderr, "bench: %s took %v\n", sec.name, time.Since(t0).Round(time.Second))
	}
	r.Teardown()
	if notes := append(e.leftoverNotes(), e.observed...); len(notes) > 0 {
		t := &table{title: "Also observed in this run"}
		for _, o := range notes {
			t.note("- %s", o)
		}
		e.report.add(t)
	}

	var body bytes.Buffer
	e.report.render(&body, time.Since(started))
	os.Stdout.Write(body.Bytes())
	if *out != "" {
		err := os.MkdirAll(filepath.Dir(*out), 0o755)
		if err == nil {
			err = writeDoc(*out, body.String())
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: write %s: %v\n", *out, err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "bench: wrote %s\n", *out)
	}
	if left := leftoverNamespaces(); left != "" {
		fmt.Fprintf(os.Stderr, "bench: namespaces left behind: %s\n", left)
		os.Exit(1)
	}
	if r.Failed() {
		os.Exit(1)
	}
}

// setupTable says how the daemons were run.
func setupTable(mptcpdBin string) *table {
	t := &table{title: "How the daemons ran"}
	t.note("- mptcpd: `ip netns exec NS %s %s`, inside the lab's namespace. The command line sets everything it "+
		"reads; /etc/mptcpd/mptcpd.conf supplies only its plugin directory. Its addr_adv plugin adds an endpoint with "+
		"the address flags, bound to the address's device, for every address, and also sets the limits (subflows and "+
		"add_addr_accepted grow with the number of addresses). Every measurement first waits for its endpoints.",
		mptcpdBin, strings.Join(mptcpdArgs, " "))
	t.note("- mptcpgd: `ip netns exec NS mptcpgd --config FILE --socket ... --state ...` with the built-in defaults " +
		"(subflow endpoints on every interface but lo, veth*, ...; limits 4/4; source routing: table 10000+ifindex, " +
		"rule priority 10000, protocol 177; resync every 30 s) plus `cleanup_on_exit = true`, so that the next subject " +
		"finds the namespace as the lab made it; table 6 adds configs/client.toml. Its JSON log is read for what it did.")
	t.note("- One daemon at a time, never beside the floor: the generic-netlink lock is host-wide. Between subjects the " +
		"bench checks the namespace is clean (no endpoints, no rule or route with protocol 177, the lab's limits).")
	return t
}

// leftoverNamespaces lists the lab namespaces of this process that still
// exist after the teardown.
func leftoverNamespaces() string {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return ""
	}
	var left []string
	mine := fmt.Sprintf("%s%d-", lab.Prefix, os.Getpid())
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], mine) {
			left = append(left, f[0])
		}
	}
	return strings.Join(left, ", ")
}
