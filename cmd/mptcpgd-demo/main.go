// Command mptcpgd-demo shows mptcpgd doing its job, in network namespaces
// it creates and deletes: a client with two 50 Mbit/s uplinks and a server,
// both running mptcpgd with the example configurations, one MPTCP transfer
// with live per-uplink throughput, a cable pulled and plugged back, and a
// few plain lines on what happened. Run it as root (`make demo`).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
	"github.com/mptcpgd/mptcpgd/internal/lab"
)

const (
	rateMbit = 50
	size     = 160 << 20 // about 14 s at 2 x 50 Mbit/s
	pullAt   = 5 * time.Second
	plugAt   = 10 * time.Second
	tick     = 500 * time.Millisecond
)

func main() {
	configs := flag.String("configs", "configs", "directory with client.toml and server.toml")
	flag.Parse()
	r := lab.NewRunner("demo", false)
	go r.HandleSignals()
	err := r.Run("demo", func(s *lab.Scope) { demo(s, *configs) })
	r.Teardown()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func demo(r *lab.Scope, configs string) {
	clientCfg, _ := filepath.Abs(filepath.Join(configs, "client.toml"))
	serverCfg, _ := filepath.Abs(filepath.Join(configs, "server.toml"))

	fmt.Printf("Building a lab in network namespaces: a client with two uplinks (eth1, eth2; %d Mbit/s each),\n", rateMbit)
	fmt.Println("a router that drops anything leaving by the wrong uplink (strict reverse-path filter), and a server.")
	top := lab.NewTopology(r, lab.TopologyOptions{Variant: lab.Static, RateMbit: rateMbit, Checksums: true})
	fmt.Println("eth1 has the client's default route; eth2 has only its address, as a second ISP configured by hand.")
	fmt.Println()

	daemonlab.Start(r, top.Server, daemonlab.Options{Config: serverCfg})
	client := daemonlab.Start(r, top.Client, daemonlab.Options{Config: clientCfg})
	fmt.Println("mptcpgd started on both, with configs/client.toml and configs/server.toml. On the client it set up:")
	rep := client.Show()
	for _, e := range rep.Status.Endpoints {
		fmt.Printf("  endpoint %-15s %-8s dev %s\n", e.Addr, e.Flags, e.IfName)
	}
	for _, rule := range rep.Status.Rules {
		fmt.Printf("  rule     from %s lookup %d\n", rule.Src.Addr(), rule.Table)
	}
	for _, route := range rep.Status.Routes {
		if route.IsDefault() && len(route.NextHops) > 0 {
			fmt.Printf("  route    default via %s in table %d\n", route.NextHops[0].Gateway, route.Table)
		}
	}
	fmt.Println()

	st := lab.StartTransfer(r, top, top.ServerAddr(lab.V4), size)
	fmt.Printf("One MPTCP connection from %s to the server, sending %d MiB:\n\n", top.Uplinks[0].Addr4, size>>20)
	fmt.Printf("  %6s  %-28s %-28s %s\n", "time", "eth1 (Mbit/s)", "eth2 (Mbit/s)", "total")

	var pulled, plugged, backAt time.Time
	prev := sampleUplinks(top)
	for i := 1; ; i++ {
		select {
		case <-st.Received():
		case <-time.After(time.Until(st.Start.Add(time.Duration(i) * tick))):
		}
		now := sampleUplinks(top)
		elapsed := time.Since(st.Start)
		e1 := mbit(now.tx[0]-prev.tx[0], now.at.Sub(prev.at))
		e2 := mbit(now.tx[1]-prev.tx[1], now.at.Sub(prev.at))
		fmt.Printf("  %5.1fs  %s %s %5.1f\n", elapsed.Seconds(), bar(e1), bar(e2), e1+e2)
		if !plugged.IsZero() && backAt.IsZero() && e2 > 1 {
			backAt = now.at
		}
		prev = now
		if pulled.IsZero() && elapsed >= pullAt {
			top.CablePull(1)
			pulled = time.Now()
			fmt.Printf("  -----  cable pulled from eth2 (at the router)\n")
		}
		if plugged.IsZero() && elapsed >= plugAt {
			top.CablePlug(1)
			plugged = time.Now()
			fmt.Printf("  -----  cable plugged back into eth2\n")
		}
		if finished(st) {
			break
		}
	}
	res := st.Wait(r)
	if res.WriteErr != nil {
		r.Fatalf("sending: %v", res.WriteErr)
	}
	fmt.Println()
	fmt.Println("What happened")
	total := res.Sent[0] + res.Sent[1]
	fmt.Printf("  - One MPTCP connection used both uplinks: eth1 carried %.0f%%, eth2 %.0f%% of the bytes, %.1f Mbit/s on\n",
		pct(res.Sent[0], total), pct(res.Sent[1], total), res.Goodput)
	fmt.Printf("    average over 2 x %d Mbit/s (with eth2 unplugged for %v of it).\n", rateMbit, plugged.Sub(pulled).Round(time.Second))
	rule, okRule := reactionTime(client, "carrier lost", "rule removed")
	ep, okEp := reactionTime(client, "carrier lost", "endpoint removed")
	if okRule && okEp {
		fmt.Printf("  - Cable pulled from eth2: mptcpgd removed its rule %v and its endpoint %v after the carrier went\n",
			rule.Round(10*time.Microsecond), ep.Round(100*time.Microsecond))
		fmt.Printf("    (removing an endpoint waits for the kernel's RCU grace period). The transfer carried on over eth1;\n")
	} else {
		fmt.Printf("  - Cable pulled from eth2: mptcpgd withdrew its endpoint and rule. The transfer carried on over eth1;\n")
	}
	fmt.Printf("    the receiver's longest wait for data was %v (the kernel's retransmission timeout).\n", res.Stall.Round(time.Millisecond))
	if !backAt.IsZero() {
		fmt.Printf("  - Cable back: mptcpgd re-added eth2's endpoint, the same connection joined over it again, and eth2\n")
		fmt.Printf("    carried traffic again within %v (the sampling interval).\n", (backAt.Sub(plugged) + tick - 1).Truncate(tick))
	} else {
		fmt.Printf("  - Cable back: eth2 carried no traffic again before the transfer ended.\n")
	}
	switch {
	case res.Report.Failed():
		fmt.Printf("  - The stream arrived damaged: %v\n", res.Report)
		r.Fatal("stream integrity")
	case res.Report.Class == lab.StreamKernelMisdelivery:
		fmt.Printf("  - Every byte arrived, but a short run was misdelivered by the kernel's known defect (see docs/architecture.md): %v\n", res.Report)
	default:
		fmt.Printf("  - Every byte arrived, in order (%d MiB verified at the receiver).\n", size>>20)
	}
	fmt.Println()
	fmt.Println("Tearing the lab down.")
}

type sample struct {
	at time.Time
	tx []uint64
}

// sampleUplinks reads what each client uplink has sent so far.
func sampleUplinks(top *lab.Topology) sample {
	s := sample{at: time.Now()}
	for _, u := range top.Uplinks {
		_, tx, _ := top.Client.LinkStats(u.Dev)
		s.tx = append(s.tx, tx)
	}
	return s
}

func finished(st *lab.Transfer) bool {
	select {
	case <-st.Received():
		return true
	default:
		return false
	}
}

// reactionTime is the time between the first log line with message from
// and the next one with message to.
func reactionTime(d *daemonlab.Daemon, from, to string) (time.Duration, bool) {
	var start time.Time
	for _, l := range d.Logs() {
		ts, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(l["time"]))
		switch l["msg"] {
		case from:
			if start.IsZero() {
				start = ts
			}
		case to:
			if !start.IsZero() {
				return ts.Sub(start), true
			}
		}
	}
	return 0, false
}

func mbit(bytes uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) * 8 / d.Seconds() / 1e6
}

// bar draws a rate as nload would, scaled to the uplink's rate.
func bar(mbps float64) string {
	const width = 20
	n := int(mbps / rateMbit * width)
	n = max(0, min(width, n))
	return fmt.Sprintf("%s%s %5.1f  ", strings.Repeat("#", n), strings.Repeat(".", width-n), mbps)
}

func pct(part, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return 100 * float64(part) / float64(total)
}
