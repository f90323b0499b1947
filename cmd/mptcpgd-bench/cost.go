package main

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// Cost measurement: idle a minute, then costConns connections.
const (
	idleWindow   = time.Minute
	costConns    = 10_000
	costWorkers  = 4
	settleAfter  = time.Second
	startupQuiet = 2 * time.Second
)

type costResult struct {
	idleRSS, afterRSS int
	wakeups           int
	threads           int
	perThread         []int
	// cpuPer1k is the CPU time per 1,000 connections.
	cpuPer1k time.Duration
	rate     float64
}

// startDaemon starts the named daemon in ns and waits until the endpoint
// of addr is in place.
func startDaemon(c *lab.Scope, e *env, name string, ns *lab.NS, addr netip.Addr) daemon {
	var d daemon
	if name == "mptcpgd" {
		d = startMptcpgd(c, ns, "")
	} else {
		d = startMptcpd(c, ns, e.mptcpd)
	}
	p := &poller{c: mptcpClient(c, ns)}
	if _, _, err := p.until(10*time.Second, "the daemon's endpoint for "+addr.String(), hasAddrs(addr)); err != nil {
		c.Fatal(err)
	}
	return d
}

// costSection measures what each daemon costs: memory idle and after
// 10,000 connections, CPU per 1,000 connections on either side, and
// wakeups per idle minute.
func costSection(s *lab.Scope, e *env) {
	l := newChurnLab(s)
	limitsC, limitsS := readLimits(s, l.client), readLimits(s, l.server)
	sides := []struct {
		name   string
		ns     *lab.NS
		addr   netip.Addr
		idle   bool
		limits netlinkmptcp.Limits
	}{
		{"client", l.client, netip.MustParseAddr("192.0.2.2"), true, limitsC},
		{"server", l.server, netip.MustParseAddr(churnServer), false, limitsS},
	}
	res := map[string]*costResult{}
	for _, side := range sides {
		for _, name := range []string{"mptcpgd", "mptcpd"} {
			key := name + "/" + side.name
			s.Sub(key, func(c *lab.Scope) {
				r := &costResult{}
				d := startDaemon(c, e, name, side.ns, side.addr)
				time.Sleep(startupQuiet)
				if side.idle {
					p0 := mustProc(c, d)
					r.idleRSS = p0.rssKiB
					time.Sleep(idleWindow)
					p1 := mustProc(c, d)
					r.wakeups, r.threads, r.perThread = p1.switches-p0.switches, p1.threads, threadDeltas(p0, p1)
				}
				before := mustProc(c, d)
				cr := churn(c, l, costConns, costWorkers)
				if cr.failed > 0 || cr.notMPTCP > 0 {
					c.Fatalf("%d of %d connections failed (first: %v), %d fell back to TCP", cr.failed, cr.n, cr.firstErr, cr.notMPTCP)
				}
				time.Sleep(settleAfter)
				after := mustProc(c, d)
				r.afterRSS = after.rssKiB
				r.cpuPer1k = (after.cpu - before.cpu) * 1000 / costConns
				r.rate = cr.rate()
				res[key] = r
				c.Logf("%.0f connections/s, CPU %v per 1,000, RSS %s", r.rate, r.cpuPer1k, mib(r.afterRSS))
			})
			e.reset(s, side.ns, side.limits, name)
		}
	}
	e.report.add(costTable(res))
}

func costTable(res map[string]*costResult) *table {
	gc, dc, gs, ds := res["mptcpgd/client"], res["mptcpd/client"], res["mptcpgd/server"], res["mptcpd/server"]
	t := &table{
		title: "3. Cost: memory, CPU, wakeups",
		intro: fmt.Sprintf("A client and a server namespace joined by one veth, one daemon at a time, on the client and then "+
			"on the server side. Each daemon keeps the endpoint of its one address and follows the MPTCP events of "+
			"every connection. After %v of quiet the daemon idles for %v (client side), then %d MPTCP connections come and "+
			"go (%d threads opening them as fast as they can; the server closes each at once). Figures from /proc of the "+
			"daemon's process: VmRSS; utime+stime of the whole process (all threads, in units of 10 ms: CPU per 1,000 "+
			"connections is resolved to 1 ms); voluntary and nonvoluntary context switches summed over all its threads.",
			startupQuiet, idleWindow, costConns, costWorkers),
		header: []string{"", "mptcpgd", "mptcpd", "mptcpgd/mptcpd"},
	}
	t.row("resident memory (VmRSS), idle", mib(gc.idleRSS), mib(dc.idleRSS), ratio(float64(gc.idleRSS), float64(dc.idleRSS)))
	t.row(fmt.Sprintf("resident memory after %d connections (client side)", costConns), mib(gc.afterRSS), mib(dc.afterRSS), ratio(float64(gc.afterRSS), float64(dc.afterRSS)))
	t.row(fmt.Sprintf("resident memory after %d connections (server side)", costConns), mib(gs.afterRSS), mib(ds.afterRSS), ratio(float64(gs.afterRSS), float64(ds.afterRSS)))
	t.row("CPU per 1,000 connections, client side", ms(gc.cpuPer1k), ms(dc.cpuPer1k), dratio(gc.cpuPer1k, dc.cpuPer1k))
	t.row("CPU per 1,000 connections, server side", ms(gs.cpuPer1k), ms(ds.cpuPer1k), dratio(gs.cpuPer1k, ds.cpuPer1k))
	t.row("wakeups per idle minute", fmt.Sprint(gc.wakeups), fmt.Sprint(dc.wakeups), ratio(float64(gc.wakeups), float64(dc.wakeups)))
	t.row("threads", fmt.Sprint(gc.threads), fmt.Sprint(dc.threads), "")
	t.row("connections per second reached (client side)", fmt.Sprintf("%.0f", gc.rate), fmt.Sprintf("%.0f", dc.rate), "")
	t.note("Idle wakeups per thread: mptcpgd %v, mptcpd %v.", gc.perThread, dc.perThread)
	if gc.idleRSS > dc.idleRSS {
		t.note("**mptcpgd uses more memory** (%s against %s idle): it is a Go program, whose runtime, heap and "+
			"goroutine stacks come on top of its state; mptcpd is C on the small ELL library.", mib(gc.idleRSS), mib(dc.idleRSS))
	}
	if gc.cpuPer1k > dc.cpuPer1k {
		t.note("**mptcpgd uses more CPU per connection** (%s against %s per 1,000 on the client): it applies every "+
			"event to its view of the live connections and subflows (for `mptcpgd show` and its STATUS line), while "+
			"mptcpd hands events to its addr_adv plugin, which has nothing to do with them. On this 2-CPU machine that "+
			"also lowered the connection rate the load generator reached next to it.", ms(gc.cpuPer1k), ms(dc.cpuPer1k))
	}
	if gc.wakeups > dc.wakeups {
		t.note("**mptcpgd wakes up more often when idle** (%d against %d a minute, spread over its threads as above): its "+
			"timers (the safety-net resync every 30 s by default among them) and the Go runtime wake more than one of its "+
			"%d threads each time; mptcpd sleeps in one poll until the kernel has news.",
			gc.wakeups, dc.wakeups, gc.threads)
	}
	return t
}
