package main

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// The burst: burstConns connections on burstWorkers threads.
const (
	burstConns   = 20_000
	burstWorkers = 16
	// quietWait bounds the wait for mptcpgd's view to empty after the
	// burst.
	quietWait = 10 * time.Second
)

type burstResult struct {
	rate      float64
	cpuPer1k  time.Duration
	cpuAfter  time.Duration // CPU spent after the last connection closed
	lostLines int           // log lines saying events were lost
	resyncs   int           // full resyncs for lost events (mptcpgd)
	losses    uint64        // the connection view's loss count (mptcpgd)
	rebuilds  uint64
	// consistent says the state afterwards was right: mptcpgd's view
	// empty and complete, the endpoints as before.
	consistent bool
	detail     string
	newLog     []string
}

// burstSection opens a burst of short MPTCP connections while a daemon
// on the client follows their events, and checks what it lost and whether
// its state is right afterwards.
func burstSection(s *lab.Scope, e *env) {
	l := newChurnLab(s)
	limits := readLimits(s, l.client)
	addr := netip.MustParseAddr("192.0.2.2")
	res := map[string]*burstResult{}
	for _, name := range []string{"mptcpgd", "mptcpd"} {
		s.Sub(name, func(c *lab.Scope) {
			d := startDaemon(c, e, name, l.client, addr)
			time.Sleep(startupQuiet)
			mp := mptcpClient(c, l.client)
			epBefore, err := mp.Endpoints()
			if err != nil {
				c.Fatal(err)
			}
			logBefore := len(d.Log())
			p0 := mustProc(c, d)
			cr := churn(c, l, burstConns, burstWorkers)
			if cr.failed > 0 || cr.notMPTCP > 0 {
				c.Fatalf("%d of %d connections failed (first: %v), %d fell back to TCP", cr.failed, cr.n, cr.firstErr, cr.notMPTCP)
			}
			p1 := mustProc(c, d)
			r := &burstResult{rate: cr.rate()}
			var problems []string
			if g, ok := d.(gd); ok {
				deadline := time.Now().Add(quietWait)
				for {
					rep := g.d.Show()
					v := rep.Connections
					if v != nil && v.Complete && len(v.Connections) == 0 {
						r.losses, r.rebuilds = v.Losses, v.Rebuilds
						break
					}
					if time.Now().After(deadline) {
						if v == nil {
							problems = append(problems, "show reported no connection view")
						} else {
							problems = append(problems, fmt.Sprintf("view after %v: %d connections, complete %t (%s)",
								quietWait, len(v.Connections), v.Complete, v.IncompleteReason))
							r.losses, r.rebuilds = v.Losses, v.Rebuilds
						}
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				for _, m := range g.d.Logs() {
					msg, _ := m["msg"].(string)
					switch {
					case strings.HasPrefix(msg, "rebuilt the MPTCP connection view after lost events"):
						r.lostLines++
					case msg == "full resync" && m["reason"] == "MPTCP events lost":
						r.resyncs++
					}
				}
			} else {
				time.Sleep(settleAfter)
			}
			p2 := mustProc(c, d)
			r.cpuPer1k = (p1.cpu - p0.cpu) * 1000 / burstConns
			r.cpuAfter = p2.cpu - p1.cpu
			epAfter, err := mp.Endpoints()
			if err != nil {
				c.Fatal(err)
			}
			if !slices.Equal(epBefore, epAfter) {
				problems = append(problems, fmt.Sprintf("endpoints changed: %v -> %v", epBefore, epAfter))
			}
			r.consistent = len(problems) == 0
			r.detail = strings.Join(problems, "; ")
			for line := range strings.Lines(d.Log()[logBefore:]) {
				r.newLog = append(r.newLog, strings.TrimSpace(line))
			}
			res[name] = r
			c.Logf("%.0f connections/s; CPU %v per 1,000 (+%v after); lost-event lines %d, resyncs %d, view losses %d; consistent %t %s",
				r.rate, r.cpuPer1k, r.cpuAfter, r.lostLines, r.resyncs, r.losses, r.consistent, r.detail)
		})
		e.reset(s, l.client, limits, name)
	}
	e.report.add(burstTable(res))
}

func burstTable(res map[string]*burstResult) *table {
	g, d := res["mptcpgd"], res["mptcpd"]
	t := &table{
		title: "4. Event load: a burst of short connections",
		intro: fmt.Sprintf("The client and server of table 3; the daemon on the client. %d MPTCP connections are opened "+
			"and closed as fast as %d threads can (the server closes each at once): three events each (created, "+
			"established, closed) for the daemon to read. CPU is the daemon's utime+stime during the burst; "+
			"\"afterwards\" is what it spent after the last connection had closed.", burstConns, burstWorkers),
		header: []string{"", "mptcpgd", "mptcpd", "mptcpgd/mptcpd"},
	}
	t.row("connections per second", fmt.Sprintf("%.0f", g.rate), fmt.Sprintf("%.0f", d.rate), "")
	t.row("CPU per 1,000 connections during the burst", ms(g.cpuPer1k), ms(d.cpuPer1k), dratio(g.cpuPer1k, d.cpuPer1k))
	t.row("CPU afterwards", ms(g.cpuAfter), ms(d.cpuAfter), "")
	t.row("events lost (\"rebuilt the MPTCP connection view after lost events\")", fmt.Sprint(g.lostLines), "not reported by mptcpd", "")
	t.row("full resyncs with reason \"MPTCP events lost\"", fmt.Sprint(g.resyncs), "–", "")
	t.row("connection view: losses / rebuilds (show --json)", fmt.Sprintf("%d / %d", g.losses, g.rebuilds), "–", "")
	state := func(r *burstResult, what string) string {
		if r.consistent {
			return what
		}
		return "no: " + r.detail
	}
	t.row("state consistent afterwards", state(g, "yes: no connections, view complete, endpoints unchanged"), state(d, "endpoints unchanged"), "")
	logged := func(r *burstResult) string {
		if len(r.newLog) == 0 {
			return "nothing"
		}
		return fmt.Sprintf("%d lines, e.g. `%s`", len(r.newLog), strings.ReplaceAll(r.newLog[0], "|", "\\|"))
	}
	if g.cpuPer1k > d.cpuPer1k {
		t.note("**mptcpgd uses more CPU under the burst** (%s against %s per 1,000 connections): as in table 3, it "+
			"applies every event to its connection view; mptcpd ignores them.", ms(g.cpuPer1k), ms(d.cpuPer1k))
	}
	t.note("Logged during and after the burst: mptcpgd %s; mptcpd %s. mptcpd does not report lost events; with "+
		"its addr_adv plugin it takes no action on connection events.", logged(g), logged(d))
	return t
}
