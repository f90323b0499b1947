package pm_test

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/rtnl"
)

// BenchmarkKernelAddressReaction measures the engine's fast path in a
// namespace: an address added to an interface that has its gateway, until
// its source rule is in the kernel and until its endpoint is; then the
// address removed, until the rule is gone. It reports percentiles in
// microseconds (make bench compares the whole daemon with mptcpd).
func BenchmarkKernelAddressReaction(b *testing.B) {
	ns := lab.New(b, "client")
	peer := lab.New(b, "peer")
	lab.Veth(ns, "eth1", peer, "p1")
	ns.IP("addr", "add", "192.0.2.2/24", "dev", "eth1")
	ns.IP("route", "add", "default", "via", "192.0.2.1", "dev", "eth1")
	startEngineIn(b, ns, parse(b, "[log]\nlevel = \"error\"\n"), filepath.Join(b.TempDir(), "state.json"))

	addrConn, err := rtnetlink.Dial(&netlink.Config{NetNS: ns.FD()})
	if err != nil {
		b.Fatal(err)
	}
	defer addrConn.Close()
	w, err := rtnl.Watch(rtnl.Config{NetNS: ns.FD(), Filter: rtnl.Filter{Protocols: []uint8{177}}}, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	k, err := netlinkmptcp.Dial(&netlinkmptcp.Config{NetNS: ns.FD()})
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	idx := ifindex(b, ns, "eth1")
	addr := netip.MustParseAddr("198.18.200.2")
	msg := &rtnetlink.AddressMessage{Family: unix.AF_INET, PrefixLength: 24, Index: uint32(idx),
		Attributes: &rtnetlink.AddressAttributes{Address: net.IP(addr.AsSlice()), Local: net.IP(addr.AsSlice())}}

	waitRule := func(deleted bool) time.Time {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			ups, _, err := w.Receive(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for _, u := range ups {
				if u.Kind == netstate.RuleUpdate && u.Deleted == deleted && u.Rule.Src.Addr() == addr {
					return time.Now()
				}
			}
		}
	}
	var toRule, toEndpoint, toRuleGone []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := addrConn.Address.New(msg); err != nil {
			b.Fatal(err)
		}
		ruleAt := waitRule(false)
		for {
			eps, err := k.Endpoints()
			if err != nil {
				b.Fatal(err)
			}
			if slices.ContainsFunc(eps, func(e netlinkmptcp.Endpoint) bool { return e.Addr == addr }) {
				break
			}
		}
		endpointAt := time.Now()
		toRule = append(toRule, ruleAt.Sub(start))
		toEndpoint = append(toEndpoint, endpointAt.Sub(start))
		start = time.Now()
		if err := addrConn.Address.Delete(msg); err != nil {
			b.Fatal(err)
		}
		toRuleGone = append(toRuleGone, waitRule(true).Sub(start))
		// Let the removal's grace period pass so the next addition does
		// not wait behind it.
		for {
			eps, err := k.Endpoints()
			if err != nil {
				b.Fatal(err)
			}
			if !slices.ContainsFunc(eps, func(e netlinkmptcp.Endpoint) bool { return e.Addr == addr }) {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	report := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)*50/100].Microseconds()), name+"-p50-µs")
		b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds()), name+"-p99-µs")
	}
	report("rule", toRule)
	report("endpoint", toEndpoint)
	report("rule-gone", toRuleGone)
}
