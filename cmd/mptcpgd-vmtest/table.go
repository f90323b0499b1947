package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// guestResults are one guest's results: which guest (a kernel release, or
// "systemd"), its jobs, and how the run itself went.
type guestResults struct {
	Guest   string
	Results []result
	// Wall is the guest's run from boot to power-off.
	Wall time.Duration
	// Err is why the guest did not finish (a timeout, qemu failing), if so.
	Err error
	// ConsoleTail are the last lines of its console when no job finished
	// or its kernel panicked: why the guest never ran them.
	ConsoleTail []string
	// Panic is the console's "Kernel panic" line, if the kernel panicked.
	Panic string
	// Notes say what the table alone does not: a second boot after a panic.
	Notes []string
}

// withoutResult counts g's jobs that did not finish.
func (g guestResults) withoutResult() int {
	n := 0
	for _, r := range g.Results {
		if r.Status == "no result" {
			n++
		}
	}
	return n
}

// bootFailureWall: a kernel guest that ran nothing and stopped sooner than
// this failed to boot or to start its run (a boot takes 5-15 s); one that
// took longer hung in a test, and booting it again would only hang again.
const bootFailureWall = 2 * time.Minute

// secondBootReason says why g's packages without a result deserve a second
// boot, or "" when they do not: its kernel panicked, or it failed to boot.
func (g guestResults) secondBootReason() string {
	switch {
	case g.withoutResult() == 0:
		return ""
	case g.Panic != "":
		return "its kernel panicked: " + g.Panic
	case g.ranNothing() && g.Wall < bootFailureWall:
		return fmt.Sprintf("it stopped after %s without running a package", round(g.Wall))
	}
	return ""
}

// retried merges the results of second, a boot for the jobs that g left
// without a result, into g, and notes why there was a second boot and
// where the first boot's console is.
func (g guestResults) retried(second guestResults, why, console string) guestResults {
	g.Notes = append(g.Notes, fmt.Sprintf("%s (console kept in %s): the packages it left without a result (%d) ran in a second boot",
		why, console, g.withoutResult()))
	results := slices.Clone(g.Results)
	for i, r := range results {
		if r.Status != "no result" {
			continue
		}
		for _, s := range second.Results {
			if s.Label == r.Label {
				results[i] = s
			}
		}
	}
	g.Results = results
	g.Wall += second.Wall
	g.Err = second.Err
	g.Panic, g.ConsoleTail = second.Panic, second.ConsoleTail
	g.Notes = append(g.Notes, second.Notes...)
	return g
}

// ranNothing reports whether no job of g finished.
func (g guestResults) ranNothing() bool {
	for _, r := range g.Results {
		if r.Status != "no result" {
			return false
		}
	}
	return true
}

// failed reports whether anything in g did not pass.
func (g guestResults) failed() bool {
	if g.Err != nil {
		return true
	}
	for _, r := range g.Results {
		if r.Status != "ok" {
			return true
		}
	}
	return false
}

// writeTable prints one line per guest and package, then one per guest
// with its wall time, then the failed tests with their logs.
func writeTable(w io.Writer, runs []guestResults) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GUEST\tPACKAGE\tRESULT\tTIME")
	for _, g := range runs {
		for _, r := range g.Results {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Guest, r.Label, r.Status, round(r.Took))
		}
		status := "ok"
		if g.Err != nil {
			status = g.Err.Error()
		} else if g.failed() {
			status = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t(whole guest, boot included)\t%s\t%s\n", g.Guest, status, round(g.Wall))
	}
	tw.Flush()
	writeFailures(w, runs)
}

// writeFailures writes what failed, and why as far as the logs say: the
// failed tests and their first messages; for a guest that ran none of its
// jobs, the end of its console.
func writeFailures(w io.Writer, runs []guestResults) {
	for _, g := range runs {
		for _, n := range g.Notes {
			fmt.Fprintf(w, "\n%s: %s\n", g.Guest, n)
		}
		if g.Panic != "" && !g.ranNothing() && g.withoutResult() > 0 {
			fmt.Fprintf(w, "\n%s: its kernel panicked; its console ended with:\n", g.Guest)
			for _, line := range g.ConsoleTail {
				fmt.Fprintf(w, "  | %s\n", line)
			}
		}
		if len(g.Results) > 0 && g.ranNothing() {
			why := "its console ended with:"
			if g.Err != nil {
				why = g.Err.Error() + "; " + why
			}
			fmt.Fprintf(w, "\n%s: none of its %d packages ran: %s\n", g.Guest, len(g.Results), why)
			for _, line := range g.ConsoleTail {
				fmt.Fprintf(w, "  | %s\n", line)
			}
			continue
		}
		for _, r := range g.Results {
			if r.Status == "ok" {
				continue
			}
			fmt.Fprintf(w, "\n%s %s: %s; log %s\n", g.Guest, r.Label, r.Status, r.Log)
			if len(r.Failed) > 0 {
				fmt.Fprintf(w, "  %s\n", strings.Join(r.Failed, "\n  "))
			}
			for _, m := range r.Errors {
				fmt.Fprintf(w, "    %s\n", m)
			}
		}
	}
}

// round keeps a duration readable: tenths of a second.
func round(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(100 * time.Millisecond).String()
}

// writeSummary writes to path one line per guest (ok, FAIL or why it did
// not finish) and the failures, or the error that stopped the run.
func writeSummary(path, cmd string, runs []guestResults, runErr error) error {
	var b bytes.Buffer
	if runErr != nil {
		fmt.Fprintf(&b, "mptcpgd-vmtest %s: %v\n", cmd, runErr)
	}
	for _, g := range runs {
		status := "ok"
		switch {
		case g.Err != nil:
			status = g.Err.Error()
		case g.failed():
			status = "FAIL"
		}
		fmt.Fprintf(&b, "%s: %s (%s)\n", g.Guest, status, round(g.Wall))
	}
	writeFailures(&b, runs)
	return os.WriteFile(path, b.Bytes(), 0o644)
}
