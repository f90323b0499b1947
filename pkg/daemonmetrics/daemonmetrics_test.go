package daemonmetrics

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgd/mptcpgd/pkg/metrics"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
	"github.com/mptcpgd/mptcpgd/pkg/rejoin"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
)

var (
	addr1 = netip.MustParseAddr("192.0.2.2")
	addr2 = netip.MustParseAddr("198.51.100.2")
	gw1   = netip.MustParseAddr("192.0.2.1")
	gw2   = netip.MustParseAddr("198.51.100.1")
	peer  = netip.MustParseAddrPort("203.0.113.1:443")
)

func status() pm.Status {
	link := func(i int, n string) netstate.Link { return netstate.Link{Index: i, Name: n} }
	return pm.Status{
		Interfaces: []pm.InterfaceStatus{
			{Link: link(1, "lo")},
			{Link: link(2, "eth1"), Managed: true, Carrier: true, Gateways: []srcroute.Gateway{{IfIndex: 2, Addr: gw1}}},
			{Link: link(3, "eth2"), Managed: true, Gateways: []srcroute.Gateway{{IfIndex: 3, Addr: gw2}}},
		},
		Addresses: []pm.AddressStatus{
			{Addr: netstate.Addr{IfIndex: 2, Addr: addr1}, IfName: "eth1", Managed: true},
			{Addr: netstate.Addr{IfIndex: 3, Addr: addr2}, IfName: "eth2", Managed: true},
		},
		Endpoints: []pm.EndpointStatus{
			{Endpoint: netlinkmptcp.Endpoint{ID: 1, Addr: addr1}, IfName: "eth1", Owner: pm.OwnerOurs},
			{Endpoint: netlinkmptcp.Endpoint{ID: 2, Addr: addr2}, IfName: "eth2", Owner: pm.OwnerForeign},
		},
		Missing: []rejoin.Missing{{Token: 7, Addr: addr2}, {Token: 7, Addr: addr1}},
	}
}

func subflow(local netip.Addr, ifindex int, sent, received uint64) sockdiag.Subflow {
	return sockdiag.Subflow{Local: netip.AddrPortFrom(local, 40000), Remote: peer, State: sockdiag.StateEstablished,
		IfIndex: ifindex, BytesSent: sent, BytesReceived: received}
}

// values parses m's exposition into "name{labels}" -> value.
func values(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	fams, err := metrics.Parse(m.Text())
	if err != nil {
		t.Fatalf("%v\n%s", err, m.Text())
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, s := range f.Samples {
			var kv []string
			for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
				kv = append(kv, k+"="+s.Labels[k])
			}
			out[s.Name+"{"+strings.Join(kv, ",")+"}"] = s.Value
		}
	}
	return out
}

func TestTake(t *testing.T) {
	m := New(func(ifindex int) string {
		if ifindex == 9 {
			return "wwan0"
		}
		return ""
	})
	down := func(_ int, a netip.Addr) bool { return a == gw2 }
	// The initial subflow is unbound: its address tells the interface.
	conn := sockdiag.Connection{Token: 7, Subflows: []sockdiag.Subflow{subflow(addr1, 0, 1000, 50), subflow(addr2, 3, 10, 5)}}
	server := sockdiag.Connection{Token: 8, ServerSide: true, Subflows: []sockdiag.Subflow{subflow(netip.MustParseAddr("2001:db8::9"), 0, 1, 1)}}
	fallback := sockdiag.Connection{Token: 9, Fallback: true, Subflows: []sockdiag.Subflow{subflow(addr1, 0, 1e6, 1e6)}}
	m.Take(Sample{Status: status(), Conns: []sockdiag.Connection{conn, server, fallback}, GatewayDown: down, EventLosses: 2})

	// The joined subflow closes after carrying more; a new one opens over
	// an interface only the lookup knows.
	conn.Subflows = []sockdiag.Subflow{subflow(addr1, 0, 3000, 70), subflow(netip.MustParseAddr("198.18.0.2"), 9, 4, 0)}
	m.Take(Sample{Status: status(), Conns: []sockdiag.Connection{conn}, GatewayDown: down, EventLosses: 3})
	m.JoinFailed(addr2, 3, syscall.EHOSTUNREACH)
	m.JoinEstablished(addr2, 0)
	m.JoinRetry("eth2")
	m.Resync("safety-net timer")
	m.Resync("rtnetlink overflow")
	m.Repair()
	m.Write(WriteEndpointDelete, 15*time.Millisecond)

	want := map[string]float64{
		NameEndpoints + "{interface=eth1}":                                              1,
		NameEndpoints + "{interface=eth2}":                                              0,
		NameCarrier + "{interface=eth1}":                                                1,
		NameCarrier + "{interface=eth2}":                                                0,
		NameGateway + "{family=ipv4,interface=eth1}":                                    1,
		NameGateway + "{family=ipv4,interface=eth2}":                                    0,
		NameSubflows + "{interface=eth1}":                                               1,
		NameSubflows + "{interface=eth2}":                                               0,
		NameSubflows + "{interface=wwan0}":                                              1,
		NameSentBytes + "{interface=eth1}":                                              3000,
		NameReceivedBytes + "{interface=eth1}":                                          70,
		NameSentBytes + "{interface=eth2}":                                              10,
		NameReceivedBytes + "{interface=eth2}":                                          5,
		NameSentBytes + "{interface=wwan0}":                                             4,
		NameSentBytes + "{interface=unknown}":                                           1,
		NameReceivedBytes + "{interface=unknown}":                                       1,
		NameJoins + "{interface=eth2}":                                                  2,
		NameJoinFailures + "{errno=EHOSTUNREACH,interface=eth2}":                        1,
		NameJoinRetries + "{interface=eth2}":                                            1,
		NameConnections + "{side=client}":                                               1,
		NameConnections + "{side=server}":                                               0,
		NameMissing + "{}":                                                              1,
		"mptcpgd_repairs_total{}":                                                       1,
		"mptcpgd_resyncs_total{reason=safety_net_timer}":                                1,
		"mptcpgd_resyncs_total{reason=rtnetlink_overflow}":                              1,
		"mptcpgd_event_losses_total{source=mptcp}":                                      3,
		"mptcpgd_event_losses_total{source=rtnetlink}":                                  1,
		"mptcpgd_netlink_write_duration_seconds_count{kind=endpoint_delete}":            1,
		"mptcpgd_netlink_write_duration_seconds_bucket{kind=endpoint_delete,le=0.0128}": 0,
		"mptcpgd_netlink_write_duration_seconds_bucket{kind=endpoint_delete,le=0.0256}": 1,
	}
	got := values(t, m)
	for k := range got {
		if _, ok := want[k]; !ok && !strings.Contains(k, "_bucket") && !strings.Contains(k, "_sum") {
			t.Errorf("unexpected series %s = %v", k, got[k])
		}
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

func TestReasonLabel(t *testing.T) {
	got := []string{reasonLabel("safety-net timer"), reasonLabel("MPTCP events lost"), reasonLabel("reload")}
	if diff := cmp.Diff([]string{"safety_net_timer", "mptcp_events_lost", "reload"}, got); diff != "" {
		t.Error(diff)
	}
	if ErrnoLabel(syscall.Errno(4000)) != "errno_4000" || ErrnoLabel(syscall.ECONNRESET) != "ECONNRESET" {
		t.Error("errno labels")
	}
}
