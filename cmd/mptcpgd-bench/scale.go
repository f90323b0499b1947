package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
)

// The scale lab: scaleLinks veth pairs, each client end with two IPv4 and
// two IPv6 addresses and a default route per family.
const (
	scaleLinks = 64
	// scaleStable is how long the endpoints and rules must stay as they
	// converged.
	scaleStable = 2 * time.Second
	scaleLimit  = 20 * time.Second
	// scaleSeed fixes the order in which the interfaces get their
	// addresses, so every run and every daemon sees the same one.
	scaleSeed = 7
)

// overCapMsg is mptcpgd's warning when candidates exceed the endpoints.
const overCapMsg = "more candidate addresses than the kernel's endpoint limit"

// candidate is one address of the scale lab.
type candidate struct {
	link    int // up<link>
	ifindex int
	prefix  netip.Prefix
	gw      netip.Addr
}

// scaleAddrs are the addresses of up<i>: 198.19.i.2 and .3/24 (gateway
// .1), 2001:db8:100:i::2 and ::3/64 (gateway ::1).
func scaleAddrs(i int) (v4, v6 []netip.Prefix, gw4, gw6 netip.Addr) {
	p4 := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i), 0}), 24)
	b := netip.MustParseAddr("2001:db8:100::").As16()
	b[7] = byte(i)
	p6 := netip.PrefixFrom(netip.AddrFrom16(b), 64)
	for _, last := range []byte{2, 3} {
		v4 = append(v4, netip.PrefixFrom(lab.HostIn(p4, last), 24))
		v6 = append(v6, netip.PrefixFrom(lab.HostIn(p6, last), 64))
	}
	return v4, v6, lab.HostIn(p4, 1), lab.HostIn(p6, 1)
}

type scaleResult struct {
	batch, converged time.Duration
	ok               bool
	stable           bool
	kernel           []netlinkmptcp.Endpoint
	rules            int
	matches          bool // the 8 endpoints are the ones pm.SortCandidates picks
	// cpu is the daemon's CPU time from the batch until it had been stable
	// for scaleStable.
	cpu time.Duration
	// overCap counts mptcpgd's "more candidate addresses" warnings, refused
	// its endpoint additions the kernel refused as over the limit.
	overCap, refused int
	// takenBack counts mptcpgd's endpoints and rules added and then removed
	// before it converged: churn the kernel paid for.
	epsTakenBack, rulesTakenBack int
	logSummary                   string
	names                        map[int]string
}

// scaleSection makes 64 interfaces with 4 addresses each appear at once
// and times each daemon's convergence to 8 endpoints (and, for mptcpgd,
// their 8 rules).
func scaleSection(s *lab.Scope, e *env) {
	res := map[string]*scaleResult{}
	for _, name := range []string{"mptcpgd", "mptcpd", "floor"} {
		s.Sub(name, func(c *lab.Scope) {
			res[name] = scaleRun(c, e, name)
		})
	}
	e.report.add(scaleTable(res))
}

func scaleRun(c *lab.Scope, e *env, name string) *scaleResult {
	client, peer := lab.New(c, "client"), lab.New(c, "peer")
	client.Sysctl("net.ipv6.conf.all.accept_dad", "0")
	client.Sysctl("net.ipv6.conf.default.accept_dad", "0")
	padIfindex(peer)
	var d daemon
	switch name {
	case "mptcpgd":
		d = startMptcpgd(c, client, "")
	case "mptcpd":
		d = startMptcpd(c, client, e.mptcpd)
	}
	dir := c.TempDir()
	// The pairs are made from the peer's side and its ends set up: the
	// client's ends appear, still down, in interface order.
	var pb strings.Builder
	for i := range scaleLinks {
		fmt.Fprintf(&pb, "link add pp%d type veth peer name up%d netns %s\nlink set pp%d up\n", i, i, client.Name, i)
	}
	runBatch(c, peer, filepath.Join(dir, "peer.batch"), pb.String())
	rt := routeConn(c, client)
	links, err := rt.Link.List()
	if err != nil {
		c.Fatal(err)
	}
	r := &scaleResult{names: map[int]string{}}
	index := map[string]int{}
	for _, l := range links {
		index[l.Attributes.Name] = int(l.Index)
		r.names[int(l.Index)] = l.Attributes.Name
	}
	var cands []candidate
	var cb strings.Builder
	for _, i := range rand.New(rand.NewPCG(scaleSeed, scaleSeed)).Perm(scaleLinks) {
		dev := fmt.Sprintf("up%d", i)
		v4, v6, gw4, gw6 := scaleAddrs(i)
		fmt.Fprintf(&cb, "link set %s up\n", dev)
		fmt.Fprintf(&cb, "addr add %s dev %s\nroute add default via %s dev %s metric %d\naddr add %s dev %s\n", v4[0], dev, gw4, dev, 1000+i, v4[1], dev)
		fmt.Fprintf(&cb, "addr add %s dev %s nodad\nroute add ::/0 via %s dev %s metric %d\naddr add %s dev %s nodad\n", v6[0], dev, gw6, dev, 1000+i, v6[1], dev)
		for _, p := range append(v4, v6...) {
			gw := gw4
			if p.Addr().Is6() {
				gw = gw6
			}
			cands = append(cands, candidate{link: i, ifindex: index[dev], prefix: p, gw: gw})
		}
	}
	// mptcpgd's choice (pm.SortCandidates): every interface's best address
	// before any interface's second, then lowest ifindex, IPv4 first.
	ranked := make([]pm.Endpoint, len(cands))
	byAddr := map[netip.Addr]candidate{}
	for i, c := range cands {
		ranked[i] = pm.Endpoint{Addr: c.prefix.Addr(), IfIndex: c.ifindex}
		byAddr[c.prefix.Addr()] = c
	}
	pm.SortCandidates(ranked)
	var want []candidate
	for _, e := range ranked[:netlinkmptcp.MaxEndpoints] {
		want = append(want, byAddr[e.Addr])
	}
	var wantAddrs []netip.Addr
	for _, w := range want {
		wantAddrs = append(wantAddrs, w.prefix.Addr())
	}
	batchFile := filepath.Join(dir, "client.batch")
	if err := os.WriteFile(batchFile, []byte(cb.String()), 0o644); err != nil {
		c.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the daemon has seen the 64 links come
	mp := mptcpClient(c, client)
	var p0 procSnapshot
	if d != nil {
		p0 = mustProc(c, d)
	}
	t0 := time.Now()
	runBatch(c, client, batchFile, "")
	r.batch = time.Since(t0)

	if name == "floor" {
		f := &floorWriter{mp: mp, rc: routingConn(c, client), ids: map[netip.Addr]uint8{},
			ifindex: func(p netip.Prefix) int { return candidateOf(want, p).ifindex },
			gw:      func(p netip.Prefix) netip.Addr { return candidateOf(want, p).gw }}
		var ps []netip.Prefix
		for _, w := range want {
			ps = append(ps, w.prefix)
		}
		if err := f.routing(true, ps); err != nil {
			c.Fatal(err)
		}
		if err := f.endpoints(true, ps); err != nil {
			c.Fatal(err)
		}
	}
	withRules := name != "mptcpd"
	done := func(eps []netlinkmptcp.Endpoint, rules []netip.Addr) bool {
		if name == "mptcpd" {
			return len(eps) == netlinkmptcp.MaxEndpoints
		}
		return sameAddrs(endpointAddrs(eps), wantAddrs) && sameAddrs(rules, wantAddrs)
	}
	var lastEps []netlinkmptcp.Endpoint
	var lastRules []netip.Addr
	for {
		eps, err := mp.Endpoints()
		if err != nil {
			c.Fatal(err)
		}
		var rules []netip.Addr
		if withRules {
			rules = ruleSources(c, rt)
		}
		now := time.Now()
		lastEps, lastRules = eps, rules
		if done(eps, rules) {
			r.converged, r.ok = now.Sub(t0), true
			break
		}
		if now.Sub(t0) > scaleLimit {
			break
		}
		runtime.Gosched()
	}
	r.stable = true
	for end := time.Now().Add(scaleStable); r.ok && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
		eps, err := mp.Endpoints()
		if err != nil {
			c.Fatal(err)
		}
		if !sameAddrs(endpointAddrs(eps), endpointAddrs(lastEps)) || (withRules && !sameAddrs(ruleSources(c, rt), lastRules)) {
			r.stable = false
		}
	}
	if d != nil {
		r.cpu = mustProc(c, d).cpu - p0.cpu
	}
	r.kernel, r.rules = lastEps, len(lastRules)
	r.matches = sameAddrs(endpointAddrs(lastEps), wantAddrs)
	if d != nil {
		d.Stop()
		r.logSummary = summarizeLog(d)
		r.overCap = strings.Count(d.Log(), overCapMsg)
		r.epsTakenBack, r.rulesTakenBack = takenBack(d.Log())
		for line := range strings.Lines(d.Log()) {
			if strings.Contains(line, "kernel write failed") && strings.Contains(line, "out of range") {
				r.refused++
			}
		}
	}
	return r
}

// takenBack counts, in mptcpgd's JSON log, the endpoints and the rules it
// removed after adding them in the same run (the lab starts empty, so every
// removal takes back one of its own additions).
func takenBack(log string) (eps, rules int) {
	added := map[string]bool{}
	for line := range strings.Lines(log) {
		var m struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch m.Msg {
		case "endpoint added", "rule added":
			added[m.Msg+m.Addr] = true
		case "endpoint removed":
			if added["endpoint added"+m.Addr] {
				eps++
			}
		case "rule removed":
			if added["rule added"+m.Addr] {
				rules++
			}
		}
	}
	return eps, rules
}

func candidateOf(cs []candidate, p netip.Prefix) candidate {
	for _, c := range cs {
		if c.prefix == p {
			return c
		}
	}
	return candidate{}
}

// runBatch runs `ip -n NS -batch FILE`, writing text to the file first
// unless it is empty.
func runBatch(c *lab.Scope, ns *lab.NS, file, text string) {
	if text != "" {
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			c.Fatal(err)
		}
	}
	ns.IP("-batch", file)
}

func endpointAddrs(eps []netlinkmptcp.Endpoint) []netip.Addr {
	out := make([]netip.Addr, 0, len(eps))
	for _, e := range eps {
		out = append(out, e.Addr)
	}
	return out
}

// ruleSources lists the sources of the rules carrying mptcpgd's protocol.
func ruleSources(c *lab.Scope, rt *rtnetlink.Conn) []netip.Addr {
	rules, err := rt.Rule.List()
	if err != nil {
		c.Fatal(err)
	}
	var out []netip.Addr
	for _, r := range rules {
		if r.Attributes == nil || r.Attributes.Protocol == nil || *r.Attributes.Protocol != ourProto || r.Attributes.Src == nil {
			continue
		}
		if a, ok := netip.AddrFromSlice(*r.Attributes.Src); ok {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func sameAddrs(a, b []netip.Addr) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, netip.Addr.Compare)
	slices.SortFunc(b, netip.Addr.Compare)
	return slices.Equal(a, b)
}

// summarizeLog counts a daemon's log lines by message, the most frequent
// first, with the error of the first warning or error of each kind.
func summarizeLog(d daemon) string {
	counts := map[string]int{}
	firstErr := map[string]string{}
	var order []string
	for line := range strings.Lines(d.Log()) {
		msg, errText := logMessage(strings.TrimSpace(line))
		if msg == "" {
			continue
		}
		if counts[msg] == 0 {
			order = append(order, msg)
			firstErr[msg] = errText
		}
		counts[msg]++
	}
	slices.SortStableFunc(order, func(a, b string) int { return counts[b] - counts[a] })
	var parts []string
	for _, m := range order {
		part := fmt.Sprintf("%d× `%s`", counts[m], strings.ReplaceAll(m, "|", "\\|"))
		if firstErr[m] != "" {
			part += fmt.Sprintf(" (first: %s)", strings.ReplaceAll(firstErr[m], "|", "\\|"))
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

// logMessage is the message of a log line, mptcpgd's JSON "level: msg"
// with the line's op and error fields, or mptcpd's plain line.
func logMessage(line string) (msg, errText string) {
	var m struct{ Level, Msg, Op, Error string }
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &m) != nil {
		return line, ""
	}
	switch {
	case m.Error != "" && m.Op != "":
		errText = m.Op + ": " + m.Error
	case m.Error != "":
		errText = m.Error
	}
	return m.Level + ": " + m.Msg, errText
}

func scaleTable(res map[string]*scaleResult) *table {
	g, d, f := res["mptcpgd"], res["mptcpd"], res["floor"]
	t := &table{
		title: "5. Scale: 64 interfaces with 4 addresses each at once",
		intro: fmt.Sprintf("%d veth pairs from a peer namespace; their client ends (up0..up%d) appear down, then one "+
			"`ip -batch` in the client sets them up and gives each two IPv4 and two IPv6 addresses and a default route per "+
			"family, interface after interface in a fixed shuffled order (as DHCP clients finishing in any order would). "+
			"%d candidate addresses for the kernel's 8 endpoints. Converged: 8 endpoints (mptcpgd and the floor: the 8 "+
			"mptcpgd chooses, every interface's best address before any second one, lowest ifindex first, IPv4 before IPv6, and their 8 rules), unchanged for %v after. Times "+
			"from the start of the batch; the floor writes the 8 chosen endpoints and their rules and routes after the "+
			"batch returned.", scaleLinks, scaleLinks-1, scaleLinks*4, scaleStable),
		header: []string{"", "mptcpgd", "mptcpd", "mptcpgd/mptcpd", "floor"},
	}
	conv := func(r *scaleResult) string {
		if !r.ok {
			return fmt.Sprintf("not within %v", scaleLimit)
		}
		return ms(r.converged)
	}
	t.row("batch (ip -batch) took", ms(g.batch), ms(d.batch), "", ms(f.batch))
	t.row("converged after", conv(g), conv(d), dratio(g.converged, d.converged), conv(f))
	t.row("stayed so", yesNo(g.stable), yesNo(d.stable), "", yesNo(f.stable))
	t.row("endpoints are mptcpgd's choice", yesNo(g.matches), yesNo(d.matches), "", yesNo(f.matches))
	t.row("rules", fmt.Sprint(g.rules), "–", "", fmt.Sprint(f.rules))
	t.row("daemon CPU time, batch to converged + "+scaleStable.String(), ms(g.cpu), ms(d.cpu), dratio(g.cpu, d.cpu), "")
	t.row("endpoints added, then taken back", fmt.Sprint(g.epsTakenBack), "–", "", "0")
	t.row("rules added, then taken back", fmt.Sprint(g.rulesTakenBack), "–", "", "0")
	if g.ok && f.ok {
		t.note("The cost issue's target, converged within twice the floor's time: %s against %s, %s.",
			ms(g.converged), ms(f.converged), verdict(g.converged <= 2*f.converged))
	}
	t.note("In the kernel afterwards: mptcpgd %s; mptcpd %s.", endpointsText(g), endpointsText(d))
	if !d.matches {
		t.note("mptcpd keeps the first 8 addresses it hears of and refuses the rest (the kernel answers ERANGE); which 8 " +
			"depends on the order the addresses came in, not on the interfaces.")
	}
	if g.converged > 2*d.converged {
		t.note("**mptcpgd loses here:** it converged after %s, mptcpd after %s. mptcpgd was on the CPU for %s from the "+
			"batch until %v after it had converged (%.0f%% of one CPU): it works through the batch's notifications on its "+
			"engine goroutine, deciding the whole state anew, and with 64 links and 256 addresses a decision is not cheap. "+
			"It also gives a slot to an address that came early and takes it back when a better one comes (the rows "+
			"of what was taken back), each take-back a DEL_ADDR with its grace period.",
			ms(g.converged), ms(d.converged), ms(g.cpu), scaleStable, 100*g.cpu.Seconds()/(g.converged+scaleStable).Seconds())
	}
	if g.refused > 0 {
		t.note("The kernel refused %d of mptcpgd's endpoint additions with ERANGE (table full) and mptcpgd retried them: "+
			"an addition had overtaken the removal that was to make room for it (its worker lets additions overtake "+
			"queued removals).", g.refused)
	}
	if g.overCap > 0 {
		t.note("mptcpgd logged its over-the-limit warning %d times (once per change of the left-out set); "+
			"each line lists every address left out.", g.overCap)
	}
	t.note("mptcpgd logged: %s.", orNothing(g.logSummary))
	t.note("mptcpd logged: %s.", orNothing(d.logSummary))
	return t
}

func orNothing(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// endpointsText lists endpoints by device, e.g. "up0: 198.19.0.2, ...".
func endpointsText(r *scaleResult) string {
	byDev := map[string][]string{}
	var devs []string
	for _, e := range r.kernel {
		dev := r.names[int(e.IfIndex)]
		if _, ok := byDev[dev]; !ok {
			devs = append(devs, dev)
		}
		byDev[dev] = append(byDev[dev], e.Addr.String())
	}
	var parts []string
	for _, dev := range devs {
		parts = append(parts, fmt.Sprintf("%s: %s", dev, strings.Join(byDev[dev], ", ")))
	}
	return strings.Join(parts, "; ")
}
