package main

import (
	"fmt"
	"io"
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
	for _, g := range runs {
		for _, r := range g.Results {
			if r.Status == "ok" {
				continue
			}
			fmt.Fprintf(w, "\n%s %s: %s; log %s\n", g.Guest, r.Label, r.Status, r.Log)
			if len(r.Failed) > 0 {
				fmt.Fprintf(w, "  %s\n", strings.Join(r.Failed, "\n  "))
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
