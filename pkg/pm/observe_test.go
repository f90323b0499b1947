package pm

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
)

// changeText names a change in test expectations.
func changeText(c Change) string {
	switch c.Kind {
	case AddrNew, AddrGone:
		return fmt.Sprintf("%s %s on %s", c.Kind, c.Addr.Addr, c.Link.Name)
	case LinkRenamed:
		return fmt.Sprintf("%s %s to %s", c.Kind, c.OldName, c.Link.Name)
	case GatewayChanged:
		return fmt.Sprintf("%s %s ipv6=%v %v to %v", c.Kind, c.Link.Name, c.IPv6, c.OldGateways, c.Gateways)
	case RuleRemoved:
		return fmt.Sprintf("%s from %s", c.Kind, c.Rule.Src)
	case RouteRemoved:
		return fmt.Sprintf("%s %s table %d", c.Kind, c.Route.Dst, c.Route.Table)
	}
	return fmt.Sprintf("%s %s", c.Kind, c.Link.Name)
}

func changeTexts(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, changeText(c))
	}
	return out
}

// ours177 is the default routing settings: protocol 177, tables above
// 10000, rules at 10000.
var ours177 = srcroute.Settings{TableBase: 10000, RulePriority: 10000, Protocol: 177}

func TestDiff(t *testing.T) {
	base := func() *netBuilder { return clientNetBuilder() }
	noCarrier := netstate.LinkUp
	tests := []struct {
		name       string
		prev, next netstate.State
		want       []string
	}{
		{"nothing", base().s, base().s, nil},
		{"link added with its address", base().s, base().link(4, "eth3", up).addr(4, "198.18.0.2/24", 0).s,
			[]string{"link added eth3", "address new 198.18.0.2 on eth3"}},
		{"link removed takes its address", base().s, withoutLink(base().s, 3),
			[]string{"link removed eth2", "address gone 198.51.100.2 on eth2"}},
		{"renamed", base().s, base().link(3, "wwan0", up).s, []string{"link renamed eth2 to wwan0"}},
		{"carrier lost", base().s, base().link(2, "eth1", noCarrier).s, []string{"carrier down eth1"}},
		{"carrier back", base().link(2, "eth1", noCarrier).s, base().s, []string{"carrier up eth1"}},
		{"address gone and new", base().s, base().addr(2, "192.0.2.3/24", 0).s, []string{"address new 192.0.2.3 on eth1"}},
		{"learned gateway changed", base().s, base().defaultRoute(2, "192.0.2.254", 16).s,
			[]string{"gateway changed eth1 ipv6=false [192.0.2.1] to [192.0.2.254]"}},
		{"our own default route is no gateway", base().s, withRoute(base().s, netstate.Route{Table: 10002, Protocol: 177, Type: netstate.RouteTypeUnicast,
			Dst: netip.MustParsePrefix("0.0.0.0/0"), Priority: 1024, NextHops: []netstate.NextHop{{Gateway: netip.MustParseAddr("192.0.2.254"), IfIndex: 2}}}), nil},
	}
	ourRule := netstate.Rule{Priority: 10000, Src: netip.MustParsePrefix("192.0.2.2/32"), Table: 10002, Protocol: 177}
	ourDefault := netstate.Route{Table: 10002, Protocol: 177, Type: netstate.RouteTypeUnicast, Dst: netip.MustParsePrefix("0.0.0.0/0"),
		Priority: 1024, NextHops: []netstate.NextHop{{Gateway: netip.MustParseAddr("192.0.2.1"), IfIndex: 2}}}
	withOurs := func() netstate.State {
		s := withRoute(base().s, ourDefault)
		s.Rules[ourRule] = struct{}{}
		return s
	}
	tests = append(tests, []struct {
		name       string
		prev, next netstate.State
		want       []string
	}{
		{"someone removed our rule and route", withOurs(), base().s, []string{"rule removed from 192.0.2.2/32", "route removed 0.0.0.0/0 table 10002"}},
		{"the kernel removed our route with the link's carrier", withOurs(), base().link(2, "eth1", noCarrier).s,
			[]string{"carrier down eth1", "rule removed from 192.0.2.2/32"}},
		{"the kernel removed our route with the gateway's prefix", withOurs(), withoutAddr(base().s, 2, "192.0.2.2"),
			[]string{"address gone 192.0.2.2 on eth1", "rule removed from 192.0.2.2/32"}},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := changeTexts(Diff(tt.prev, tt.next, ours177))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Diff = %q, want %q", got, tt.want)
			}
		})
	}
}

// clientNetBuilder is clientNet as a builder.
func clientNetBuilder() *netBuilder {
	return newNet().
		link(1, "lo", netstate.LinkUp|netstate.LinkRunning|netstate.LinkLoopback).addr(1, "127.0.0.1/8", 0).
		link(2, "eth1", up).addr(2, "192.0.2.2/24", 0).
		link(3, "eth2", up).addr(3, "198.51.100.2/24", 0).
		defaultRoute(2, "192.0.2.1", 16).defaultRoute(3, "198.51.100.1", 16)
}

func withRoute(s netstate.State, r netstate.Route) netstate.State {
	s.Apply(netstate.Update{Kind: netstate.RouteUpdate, Route: r})
	return s
}

func withoutAddr(s netstate.State, idx int, addr string) netstate.State {
	delete(s.Addrs, netstate.AddrKey{IfIndex: idx, Addr: netip.MustParseAddr(addr)})
	return s
}

func withoutLink(s netstate.State, idx int) netstate.State {
	s.Apply(netstate.Update{Kind: netstate.LinkUpdate, Deleted: true, Link: s.Links[idx]})
	return s
}

func TestApplyUpdatesSeesEachTransition(t *testing.T) {
	s := clientNetBuilder().s
	eth1 := s.Links[2]
	down := eth1
	down.Flags = netstate.LinkUp
	a := netstate.Addr{IfIndex: 2, Addr: netip.MustParseAddr("192.0.2.3"), Prefix: netip.MustParsePrefix("192.0.2.3/24")}
	gw := netstate.Route{Table: 254, Protocol: 16, Type: netstate.RouteTypeUnicast, Dst: netip.MustParsePrefix("0.0.0.0/0"), Priority: 200,
		NextHops: []netstate.NextHop{{Gateway: netip.MustParseAddr("198.51.100.254"), IfIndex: 3}}}
	got := changeTexts(ApplyUpdates(s, []netstate.Update{
		{Kind: netstate.LinkUpdate, Link: down},
		{Kind: netstate.LinkUpdate, Link: eth1},
		{Kind: netstate.AddrUpdate, Addr: a},
		{Kind: netstate.AddrUpdate, Addr: a}, // a repeat changes nothing
		{Kind: netstate.RouteUpdate, Route: gw},
		{Kind: netstate.LinkUpdate, Deleted: true, Link: eth1},
	}, ours177))
	want := []string{
		"carrier down eth1", "carrier up eth1",
		"address new 192.0.2.3 on eth1",
		"link removed eth1", "address gone 192.0.2.2 on eth1", "address gone 192.0.2.3 on eth1",
		"gateway changed eth2 ipv6=false [198.51.100.1] to [198.51.100.1 198.51.100.254]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("changes = %q\nwant %q", got, want)
	}
	if _, ok := s.Links[2]; ok {
		t.Error("the batch was not applied to the state")
	}
}

func TestObservationsRememberAndLog(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	o := newObservations(logging.NewLogger(core), FlapPolicy{Threshold: 2, Window: time.Minute, Initial: time.Second, Max: time.Minute, Quiet: time.Hour}, nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	net := clientNetBuilder().s

	o.observe(Diff(netstate.New(), net, ours177), t0, true)
	if len(o.firstSeen) != 0 || logs.Len() != 0 {
		t.Errorf("the start marked %v as new and logged %d lines; want neither", o.firstSeen, logs.Len())
	}

	a := netstate.Addr{IfIndex: 3, Addr: netip.MustParseAddr("198.51.100.3"), Prefix: netip.MustParsePrefix("198.51.100.3/24")}
	o.observe(ApplyUpdates(net, []netstate.Update{{Kind: netstate.AddrUpdate, Addr: a}}, ours177), t0, false)
	if got := o.firstSeen[a.Key()]; !got.Equal(t0) {
		t.Errorf("first seen = %v, want %v", got, t0)
	}

	eth1 := net.Links[2]
	down := eth1
	down.Flags = netstate.LinkUp
	for i := range 2 {
		at := t0.Add(time.Duration(i) * time.Second)
		o.observe(ApplyUpdates(net, []netstate.Update{{Kind: netstate.LinkUpdate, Link: down}, {Kind: netstate.LinkUpdate, Link: eth1}}, ours177), at, false)
	}
	if held := o.heldUntil(net, t0.Add(time.Second)); !held[2].After(t0.Add(time.Second)) {
		t.Errorf("held = %v: two flaps within one batch each must count", held)
	}
	if n := logs.FilterMessage("carrier lost").Len(); n != 2 {
		t.Errorf("carrier lost logged %d times, want once per loss", n)
	}
	if n := logs.FilterMessageSnippet("interface is flapping").Len(); n != 1 {
		t.Errorf("flapping warned %d times, want once when the hold-down starts", n)
	}

	o.expireFirstSeen(t0.Add(time.Minute), time.Second)
	if len(o.firstSeen) != 0 {
		t.Errorf("first seen %v kept after the wait", o.firstSeen)
	}
	var lines []string
	for _, e := range logs.All() {
		lines = append(lines, e.Message)
	}
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "carrier back") }) {
		t.Errorf("no carrier back logged: %q", lines)
	}
}
