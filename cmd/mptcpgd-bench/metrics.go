package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// Metrics cost: the idle daemon with each output, scraped as Prometheus
// does by default.
const (
	metricsPort     = 9477
	scrapeInterval  = 15 * time.Second
	metricsIdle     = time.Minute
	topWarmup       = time.Second
	metricsSections = "off, textfile, http"
)

type metricsResult struct {
	rssKiB   int
	cpu      time.Duration
	wakeups  int
	textfile int // bytes, textfile mode
	scrape   int // bytes, http mode
}

type topResult struct {
	start     time.Duration
	cpu       time.Duration
	daemonCPU time.Duration
	rssKiB    int
}

// metricsSection measures the idle daemon with metrics off, with the
// textfile (default interval) and with the HTTP listener scraped every 15
// s; then `mptcpgd top` against it: the time to its first frame and the
// CPU it and the daemon spend per minute of it.
func metricsSection(s *lab.Scope, e *env) {
	l := newChurnLab(s)
	limits := readLimits(s, l.client)
	addr := netip.MustParseAddr("192.0.2.2")
	res := map[string]*metricsResult{}
	var tr topResult
	for _, mode := range strings.Split(metricsSections, ", ") {
		s.Sub("metrics/"+mode, func(c *lab.Scope) {
			textfile := filepath.Join(c.TempDir(), "mptcpgd.prom")
			extra := map[string]string{
				"off":      "",
				"textfile": fmt.Sprintf("[metrics]\ntextfile = %q\n", textfile),
				"http":     fmt.Sprintf("[metrics]\nlisten = \"127.0.0.1:%d\"\n", metricsPort),
			}[mode]
			d := startMptcpgd(c, l.client, extra)
			p := &poller{c: mptcpClient(c, l.client)}
			if _, _, err := p.until(10*time.Second, "the daemon's endpoint", hasAddrs(addr)); err != nil {
				c.Fatal(err)
			}
			time.Sleep(startupQuiet)
			r := &metricsResult{}
			p0 := mustProc(c, d)
			deadline := time.Now().Add(metricsIdle)
			for time.Now().Before(deadline) {
				if mode == "http" {
					n, err := scrapeOnce(l.client)
					if err != nil {
						c.Fatal(err)
					}
					r.scrape = n
				}
				time.Sleep(min(scrapeInterval, time.Until(deadline)))
			}
			p1 := mustProc(c, d)
			r.rssKiB, r.cpu, r.wakeups = p1.rssKiB, p1.cpu-p0.cpu, p1.switches-p0.switches
			if mode == "textfile" {
				fi, err := os.Stat(textfile)
				if err != nil {
					c.Fatalf("the textfile: %v", err)
				}
				r.textfile = int(fi.Size())
			}
			res[mode] = r
			c.Logf("%s: RSS %s, CPU %v, %d wakeups per idle minute", mode, mib(r.rssKiB), r.cpu, r.wakeups)
			if mode == "off" {
				tr = measureTop(c, d, l.client)
			}
		})
		e.reset(s, l.client, limits, "mptcpgd")
	}
	e.report.add(metricsTable(res, tr))
}

// scrapeOnce GETs /metrics in ns and returns the body's size.
func scrapeOnce(ns *lab.NS) (int, error) {
	body, err := ns.ScrapeMetrics(metricsPort)
	return len(body), err
}

// measureTop runs `mptcpgd top` with its output in a pipe for a minute.
func measureTop(c *lab.Scope, d gd, ns *lab.NS) topResult {
	var r topResult
	cmd := ns.Command(context.Background(), daemonlab.Binary(c), "top", "--socket", d.d.Socket)
	out, err := cmd.StdoutPipe()
	if err != nil {
		c.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		c.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}()
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if lines.Text() == "" {
			break // the end of the first frame
		}
	}
	r.start = time.Since(start)
	go io.Copy(io.Discard, out)
	time.Sleep(topWarmup)
	t0, err := readProc(cmd.Process.Pid)
	if err != nil {
		c.Fatal(err)
	}
	d0 := mustProc(c, d)
	time.Sleep(time.Minute)
	t1, err := readProc(cmd.Process.Pid)
	if err != nil {
		c.Fatal(err)
	}
	d1 := mustProc(c, d)
	r.cpu, r.daemonCPU, r.rssKiB = t1.cpu-t0.cpu, d1.cpu-d0.cpu, t1.rssKiB
	c.Logf("top: first frame after %v, CPU %v per minute (daemon %v)", r.start, r.cpu, r.daemonCPU)
	return r
}

func metricsTable(res map[string]*metricsResult, tr topResult) *table {
	t := &table{
		title: "Metrics: cost of the outputs, and of `mptcpgd top`",
		intro: fmt.Sprintf("The client namespace of the cost lab (one veth, one address), mptcpgd alone, no connections. For each "+
			"output (%s) the daemon starts, idles %v, then idles %v measured: VmRSS at the end, utime+stime and context "+
			"switches over the window (10 ms CPU resolution). The textfile uses its default interval (15 s); the HTTP "+
			"listener is scraped every %v, as Prometheus does by default. Then, with metrics off, `mptcpgd top` runs "+
			"against the daemon with its output in a pipe: time from exec to its first full frame, and the CPU it and "+
			"the daemon spend over one minute of it (after %v).",
			metricsSections, startupQuiet, metricsIdle, scrapeInterval, topWarmup),
		header: []string{"", "off", "textfile", "http"},
	}
	off, tf, h := res["off"], res["textfile"], res["http"]
	if off == nil || tf == nil || h == nil {
		t.note("incomplete: a mode failed")
		return t
	}
	t.row("resident memory (VmRSS), idle", mib(off.rssKiB), mib(tf.rssKiB), mib(h.rssKiB))
	t.row("CPU per idle minute", ms(off.cpu), ms(tf.cpu), ms(h.cpu))
	t.row("wakeups per idle minute", fmt.Sprint(off.wakeups), fmt.Sprint(tf.wakeups), fmt.Sprint(h.wakeups))
	t.note("Exposition size: textfile %d bytes, scrape %d bytes.", tf.textfile, h.scrape)
	t.note("`mptcpgd top`: first frame %v after exec; CPU %s per minute in top (VmRSS %s) and %s in the daemon answering it.",
		tr.start.Round(time.Millisecond), ms(tr.cpu), mib(tr.rssKiB), ms(tr.daemonCPU))
	return t
}
