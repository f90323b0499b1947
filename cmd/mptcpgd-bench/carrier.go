package main

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
)

// carrierLinks is how many uplinks the carrier measurement pulls in turn:
// the endpoint table's size.
const carrierLinks = netlinkmptcp.MaxEndpoints

// flapSpacing keeps two cable pulls of one uplink further apart than half
// mptcpgd's flap window, so that no uplink reaches its flap threshold (3
// losses in 10 s) and every plug brings the endpoint straight back.
var flapSpacing = pm.DefaultFlapPolicy.Window/time.Duration(pm.DefaultFlapPolicy.Threshold-1) + 200*time.Millisecond

// mptcpdCarrierCycles is how often the bench checks that mptcpd leaves the
// endpoint of an uplink without carrier in place, waiting mptcpdCarrierWait
// each time.
const (
	mptcpdCarrierCycles = 5
	mptcpdCarrierWait   = time.Second
)

type carrierResult struct {
	gone, ruleGone, back, ruleBack sample
	// kept counts the cycles in which the endpoint was still there after
	// mptcpdCarrierWait (mptcpd does not follow carrier).
	kept, tried int
}

type carrierRun struct {
	c     *lab.Scope
	l     *uplinkLab
	p     *poller
	w     *watcher
	rules bool
	floor *floorWriter
	// spaced keeps a daemon's pulls of one uplink flapSpacing apart; the
	// floor has no flap hold-down and needs no pause.
	spaced   bool
	res      carrierResult
	lastPull map[int]time.Time
}

func (r *carrierRun) must(err error) {
	if err != nil {
		r.c.Fatal(err)
	}
}

// waitCarrier waits until the watcher reports link ifindex with (or
// without) carrier: the floor reacts to the same notification a daemon
// gets.
func (r *carrierRun) waitCarrier(ifindex int, up bool) {
	deadline := time.After(waitLimit)
	for {
		select {
		case c := <-r.w.links:
			if c.u.Link.Index == ifindex && c.u.Link.Carrier() == up {
				return
			}
		case <-deadline:
			r.c.Fatalf("no carrier=%t notification for ifindex %d after %v", up, ifindex, waitLimit)
		}
	}
}

// cycle pulls uplink i's cable (its peer end goes down), waits for the
// endpoint and rule to go (or, with keep, checks they stay), plugs it back
// and waits for them to return.
func (r *carrierRun) cycle(i int, keep bool) {
	u := r.l.links[i]
	if next := r.lastPull[i].Add(flapSpacing); r.spaced && time.Now().Before(next) {
		time.Sleep(time.Until(next))
	}
	a := u.addr.Addr()
	r.w.drain()
	drainLinks(r.w)
	t0 := time.Now()
	r.lastPull[i] = t0
	r.must(setLinkUp(r.l.peerRT, u.peerIndex, false))
	if r.floor != nil {
		r.waitCarrier(u.ifindex, false)
		r.must(r.floor.routing(false, []netip.Prefix{u.addr}))
		r.must(r.floor.endpoints(false, []netip.Prefix{u.addr}))
	}
	if keep {
		r.res.tried++
		_, _, err := r.p.until(mptcpdCarrierWait, "endpoint gone", lacksAddrs(a))
		if err != nil {
			r.res.kept++
		}
	} else {
		ep, _, err := r.p.until(waitLimit, fmt.Sprintf("endpoint of %s gone after its carrier", a), lacksAddrs(a))
		r.must(err)
		r.res.gone = append(r.res.gone, ep.Sub(t0))
		if r.rules {
			rt, err := r.w.waitRules([]netip.Addr{a}, true, waitLimit)
			r.must(err)
			r.res.ruleGone = append(r.res.ruleGone, rt.Sub(t0))
		}
	}
	time.Sleep(settle)
	drainLinks(r.w)
	t1 := time.Now()
	r.must(setLinkUp(r.l.peerRT, u.peerIndex, true))
	if r.floor != nil {
		r.waitCarrier(u.ifindex, true)
		r.must(r.floor.routing(true, []netip.Prefix{u.addr}))
		r.must(r.floor.endpoints(true, []netip.Prefix{u.addr}))
	}
	ep, _, err := r.p.until(waitLimit, fmt.Sprintf("endpoint of %s back with its carrier", a), hasAddrs(a))
	r.must(err)
	if !keep {
		r.res.back = append(r.res.back, ep.Sub(t1))
	}
	if r.rules {
		rt, err := r.w.waitRules([]netip.Addr{a}, false, waitLimit)
		r.must(err)
		r.res.ruleBack = append(r.res.ruleBack, rt.Sub(t1))
	}
	time.Sleep(settle)
}

func drainLinks(w *watcher) {
	for {
		select {
		case <-w.links:
		default:
			return
		}
	}
}

// carrierSection measures how fast an uplink's endpoint (and rule) is
// withdrawn when its carrier goes, and returns with it.
func carrierSection(s *lab.Scope, e *env) {
	l := newCarrierLab(s, carrierLinks)
	limits := readLimits(s, l.client)
	var addrs []netip.Addr
	var prefixes []netip.Prefix
	for _, u := range l.links {
		addrs = append(addrs, u.addr.Addr())
		prefixes = append(prefixes, u.addr)
	}
	results := map[string]*carrierResult{}
	subjects := []struct {
		name   string
		rules  bool
		keep   bool
		cycles int
		start  func(c *lab.Scope) *floorWriter
	}{
		{"mptcpgd", true, false, e.cycles, func(c *lab.Scope) *floorWriter { startMptcpgd(c, l.client, ""); return nil }},
		{"mptcpd", false, true, mptcpdCarrierCycles, func(c *lab.Scope) *floorWriter { startMptcpd(c, l.client, e.mptcpd); return nil }},
		{"floor", true, false, e.cycles, func(c *lab.Scope) *floorWriter {
			f := carrierFloor(c, l)
			if err := f.endpoints(true, prefixes); err != nil {
				c.Fatal(err)
			}
			if err := f.routing(true, prefixes); err != nil {
				c.Fatal(err)
			}
			return f
		}},
	}
	for _, subj := range subjects {
		s.Sub(subj.name, func(c *lab.Scope) {
			r := &carrierRun{c: c, l: l, p: &poller{c: mptcpClient(c, l.client)}, w: watch(c, l.client),
				rules: subj.rules, spaced: subj.name != "floor", lastPull: map[int]time.Time{}}
			r.floor = subj.start(c)
			if _, _, err := r.p.until(10*time.Second, "endpoints for every uplink", hasAddrs(addrs...)); err != nil {
				c.Fatal(err)
			}
			start := time.Now()
			for k := range subj.cycles {
				r.cycle(k%len(l.links), subj.keep)
			}
			results[subj.name] = &r.res
			c.Logf("%d cycles in %v", subj.cycles, time.Since(start).Round(time.Millisecond))
		})
		e.reset(s, l.client, limits, subj.name)
	}
	e.report.add(carrierTable(e, results))
}

// carrierFloor writes for the carrier lab's uplinks: each address's own
// device and gateway.
func carrierFloor(c *lab.Scope, l *uplinkLab) *floorWriter {
	f := newFloor(c, l)
	f.ifindex = func(p netip.Prefix) int { return l.linkOf(p).ifindex }
	f.gw = func(p netip.Prefix) netip.Addr { return l.linkOf(p).gw }
	return f
}

func carrierTable(e *env, res map[string]*carrierResult) *table {
	gd, d, f := res["mptcpgd"], res["mptcpd"], res["floor"]
	t := &table{
		title: "2a. Carrier loss: endpoints withdrawn",
		intro: fmt.Sprintf("A client with %d uplinks (eth1..eth%d, each with an address and a default route, as DHCP sets "+
			"them up) and an endpoint on each. The cable of one uplink after the other is pulled (its peer's end set down "+
			"with rtnetlink, so the client's end loses carrier), the bench waits for the endpoint (and mptcpgd's rule) "+
			"to go, then plugs it back and waits for them to return: %d cycles; with a daemon a given uplink is pulled at "+
			"most every %v, so that mptcpgd's flap hold-down (3 losses in 10 s) never starts. Times run from just before the bench's "+
			"request to set the peer's end down (or up).", carrierLinks, carrierLinks, e.cycles, flapSpacing.Round(100*time.Millisecond)),
		header: []string{"", "mptcpgd", "mptcpd", "floor"},
	}
	kept := fmt.Sprintf("never: still there after %v in %d of %d cycles", mptcpdCarrierWait, d.kept, d.tried)
	t.row("carrier lost → endpoint gone, p50", ms(gd.gone.pct(50)), kept, ms(f.gone.pct(50)))
	t.row("carrier lost → endpoint gone, p99", ms(gd.gone.pct(99)), kept, ms(f.gone.pct(99)))
	t.row("carrier lost → rule gone, p50", ms(gd.ruleGone.pct(50)), "–", ms(f.ruleGone.pct(50)))
	t.row("carrier lost → rule gone, p99", ms(gd.ruleGone.pct(99)), "–", ms(f.ruleGone.pct(99)))
	t.row("carrier back → endpoint back, p50", ms(gd.back.pct(50)), "(never left)", ms(f.back.pct(50)))
	t.row("carrier back → endpoint back, p99", ms(gd.back.pct(99)), "(never left)", ms(f.back.pct(99)))
	t.row("carrier back → rule back, p50", ms(gd.ruleBack.pct(50)), "–", ms(f.ruleBack.pct(50)))
	t.row("carrier back → rule back, p99", ms(gd.ruleBack.pct(99)), "–", ms(f.ruleBack.pct(99)))
	if gd.ruleGone.pct(99) > time.Millisecond || gd.back.pct(50) > 2*f.back.pct(50) {
		t.note("mptcpgd's rule went after %s at p99 (the target: a lost address's rule and routes within a millisecond) "+
			"and its endpoint came back after %s at p50, against the floor's %s: as in table 1, the endpoint write "+
			"follows the routing writes and a hand-off to mptcpgd's endpoint worker.",
			ms(gd.ruleGone.pct(99)), ms(gd.back.pct(50)), ms(f.back.pct(50)))
	}
	t.note("mptcpd 0.12 follows addresses only: an uplink without carrier keeps its endpoint, so the kernel keeps " +
		"trying new subflows over it (and the ratio column is left out). The floor is the bench itself waiting for the " +
		"carrier notification (rtnetlink, as a daemon gets it) and then deleting the rule, the two routes and the " +
		"endpoint (DEL_ADDR), one after the other, in mptcpgd's order; on carrier back it adds them again. Endpoints are seen by the same " +
		"GET_ADDR polling as in table 1, rules by rtnetlink notifications.")
	return t
}
