package show

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
)

func report() Report {
	eth1 := netstate.Link{Index: 2, Name: "eth1", Flags: netstate.LinkUp | netstate.LinkRunning | netstate.LinkLowerUp}
	eth2 := netstate.Link{Index: 3, Name: "eth2", Flags: netstate.LinkUp | netstate.LinkRunning | netstate.LinkLowerUp}
	a1 := netstate.Addr{IfIndex: 2, Addr: netip.MustParseAddr("192.0.2.2"), Prefix: netip.MustParsePrefix("192.0.2.2/24"), Flags: netstate.AddrPermanent}
	a2 := netstate.Addr{IfIndex: 3, Addr: netip.MustParseAddr("198.51.100.2"), Prefix: netip.MustParsePrefix("198.51.100.2/24")}
	return Report{Version: "test", Status: pm.Status{
		Source: "/etc/mptcpgd.toml",
		Interfaces: []pm.InterfaceStatus{
			{Link: eth1, Managed: true, Policy: "included", Carrier: true},
			{Link: eth2, Managed: true, Policy: "included", Carrier: true,
				Gateways: []srcroute.Gateway{{IfIndex: 3, IfName: "eth2", Origin: srcroute.GatewayNone,
					Detail: "no default route found for eth2: set gateway4 in an [[interface]] entry matching it"}}},
		},
		Addresses: []pm.AddressStatus{{Addr: a1, IfName: "eth1", Managed: true}, {Addr: a2, IfName: "eth2", Managed: true}},
		Endpoints: []pm.EndpointStatus{{Endpoint: netlinkmptcp.Endpoint{ID: 1, Addr: a1.Addr,
			Flags: netlinkmptcp.FlagSubflow | netlinkmptcp.FlagBackup, IfIndex: 2}, IfName: "eth1", Owner: pm.OwnerOurs}},
	}}
}

func TestJSONUsesWordsAndRoundTrips(t *testing.T) {
	r := report()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"flags":"subflow,backup"`, `"ifname":"eth1"`, `"owner":"ours"`, `"origin":"none"`,
		`"flags":"up,running,lower_up"`, `"managed":true`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Errorf("round trip changed the report:\n%+v\n%+v", back, r)
	}
}

func TestRenderSaysWhatTheKernelHolds(t *testing.T) {
	var out strings.Builder
	if err := Render(&out, report()); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"192.0.2.2/24     eth1  endpoint id 1",
		"198.51.100.2/24  eth2  to be an endpoint (not in the kernel: no daemon runs)",
		"IPv4: no default route found for eth2",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("show does not say %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "no default route: no default route") {
		t.Errorf("show repeats itself:\n%s", text)
	}
}
