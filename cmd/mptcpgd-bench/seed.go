package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// goodputSize is the size of an uninterrupted seed transfer (about 3 s at
// the two uplinks' 100 Mbit/s).
const (
	goodputSize  = 32 << 20
	goodputReps  = 2
	mptcpdSample = 16 << 20
	// seedFailovers is how many failover transfers each setup gets.
	seedFailovers = 3
)

// seedSection measures issue 6's figures on the seed lab (variant static:
// eth1 has the default route, eth2 only its address; its gateway comes from
// configs/client.toml): goodput of one connection over both uplinks,
// failover and re-plug with mptcpgd against static endpoints, and what
// mptcpd makes of the same lab.
func seedSection(s *lab.Scope, e *env) {
	top := lab.NewTopology(s, lab.TopologyOptions{Variant: lab.Static, RateMbit: rateMbit, Checksums: true})
	setLimits(s, top.Server, serverLimits)
	initial := readLimits(s, top.Client)
	clientCfg, err := os.ReadFile(filepath.Join(e.configs, "client.toml"))
	if err != nil {
		s.Fatal(err)
	}
	t := &table{
		title: "6. The seed scenario (issue 6): goodput, failover, re-plug",
		intro: fmt.Sprintf("The seed lab as the end-to-end tests build it: a client with two uplinks shaped to %d Mbit/s "+
			"each, eth1 with the default route, eth2 with only its address (its gateway comes from configs/client.toml, "+
			"which mptcpgd runs with), a router with strict reverse-path filtering, a server (limits set by hand, no "+
			"daemon). One MPTCP connection per transfer, from eth1's address.", rateMbit),
		header: []string{"", "mptcpgd", "static endpoints + hand-made source routing, no daemon", "mptcpd"},
	}
	var good []lab.TransferResult
	var gdFail, stFail []failoverResult
	var dShare float64
	var dJoined bool
	s.Sub("mptcpd", func(c *lab.Scope) {
		startMptcpd(c, top.Client, e.mptcpd)
		tr := startTransfer(c, top, mptcpdSample)
		_, dJoined = tr.waitSubflow(top.Uplinks[1].Addr4, 3*time.Second)
		res := tr.wait(c)
		dShare = res.Share(1)
	})
	e.reset(s, top.Client, initial, "mptcpd")
	s.Sub("mptcpgd", func(c *lab.Scope) {
		startMptcpgd(c, top.Client, "\n"+string(clientCfg))
		for range goodputReps {
			tr := startTransfer(c, top, goodputSize)
			if _, ok := tr.waitSubflow(top.Uplinks[1].Addr4, 5*time.Second); !ok {
				c.Fatal("no subflow over eth2 within 5 s")
			}
			good = append(good, tr.wait(c))
		}
		pulls := map[int]time.Time{}
		for range seedFailovers {
			gdFail = append(gdFail, failover(c, top, 1, pulls))
		}
	})
	e.reset(s, top.Client, initial, "mptcpgd")
	s.Sub("static", func(c *lab.Scope) {
		setLimits(c, top.Client, clientLimits)
		staticEndpoints(c, top)
		top.ClientSourceRouting(1)
		pulls := map[int]time.Time{}
		for range seedFailovers {
			stFail = append(stFail, failover(c, top, 1, pulls))
		}
	})
	var best float64
	for _, g := range good {
		best = max(best, g.Goodput)
	}
	sum := float64(2 * rateMbit)
	t.row("goodput of one connection (best of 2)", fmt.Sprintf("%.1f Mbit/s = %.0f%% of %.0f", best, 100*best/sum, sum), "", "")
	t.row("share of the bytes over eth2", fmt.Sprintf("%.0f%%", 100*good[0].Share(1)), "", fmt.Sprintf("%.0f%% (a subflow over eth2: %s)", 100*dShare, yesNo(dJoined)))
	stall := func(rs []failoverResult, p float64) time.Duration {
		var st sample
		for _, r := range rs {
			st = append(st, r.stall)
		}
		return st.pct(p)
	}
	back := func(rs []failoverResult) string {
		var st sample
		for _, r := range rs {
			if r.carrying {
				st = append(st, r.carryingBack)
			}
		}
		if len(st) == 0 {
			return "not before the transfer ended"
		}
		text := ms(st.pct(50))
		if len(st) < len(rs) {
			text += fmt.Sprintf(" (%d of %d)", len(st), len(rs))
		}
		return text
	}
	t.row(fmt.Sprintf("eth2 pulled: receiver stall, median of %d", seedFailovers), ms(stall(gdFail, 50)), ms(stall(stFail, 50)), "")
	t.row("eth2 pulled: receiver stall, worst", ms(stall(gdFail, 100)), ms(stall(stFail, 100)), "")
	t.row("eth2 plugged back → eth2 carries data again, median", back(gdFail), back(stFail), "")
	if stall(gdFail, 50) > stall(stFail, 50) {
		t.note("**mptcpgd's median stall was longer than the static setup's in this run** (%s against %s); see table "+
			"2b on how these stalls come in steps of the retransmission timeout.", ms(stall(gdFail, 50)), ms(stall(stFail, 50)))
	}
	t.note("mptcpd adds the endpoints but no source routing: in this lab a subflow from eth2's address has no route out " +
		"of eth2 (the only default route is eth1's), so the connection never gets its second path. The static column is the " +
		"page of manual steps mptcpgd replaces: endpoints, limits, and a rule and table for eth2, typed once.")
	for _, r := range append(gdFail, stFail...) {
		if r.misdelivered {
			e.observe("a seed failover transfer hit the kernel's known misdelivery (docs/architecture.md); every byte arrived")
		}
	}
	e.report.add(t)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
