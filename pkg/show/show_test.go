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
	"github.com/mptcpgd/mptcpgd/pkg/nmpolicy"
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

func TestRenderListsWrappedUnits(t *testing.T) {
	var b strings.Builder
	err := Render(&b, Report{Units: []WrappedUnit{
		{Unit: "iperf3.service"},
		{Unit: "sync.service", User: true, Warning: "ExecStart changed since `mptcpgd enable`"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Units under mptcpgd run", "  iperf3.service\n", "  sync.service (user)\n    warning: ExecStart changed"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("show lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := Render(&b, Report{}); err != nil || strings.Contains(b.String(), "mptcpgd run") {
		t.Errorf("show without wrapped units mentions them: %v\n%s", err, b.String())
	}
}

func TestRenderNetworkManager(t *testing.T) {
	r := report()
	r.Status.Interfaces[1].Managed = false
	r.Status.Interfaces[1].Policy = "left to NetworkManager: profile 'uplink2' has mptcp-flags enabled,subflow"
	r.NetworkManager = &nmpolicy.Report{Running: true, Version: "1.42.4", Devices: []nmpolicy.DeviceVerdict{
		{Interface: "eth0", Profile: "lan", Flags: "disabled", Reason: "profile 'lan' has mptcp-flags disabled"},
		{Interface: "eth1", Profile: "wired1", On: true, Flags: "enabled,subflow", Reason: "profile 'wired1' takes NetworkManager's default mptcp-flags enabled,subflow"},
		{Interface: "eth2", Profile: "uplink2", On: true, Flags: "enabled,subflow", Reason: "profile 'uplink2' has mptcp-flags enabled,subflow"},
	}}
	var b strings.Builder
	if err := Render(&b, r); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"eth2  carrier  not managed: left to NetworkManager: profile 'uplink2' has mptcp-flags enabled,subflow",
		"NetworkManager manages MPTCP here too (profile 'wired1' takes NetworkManager's default mptcp-flags enabled,subflow) and removes our endpoints when it reapplies; turn it off: nmcli connection modify 'wired1' connection.mptcp-flags disabled",
		"NetworkManager 1.42.4 runs",
		"eth0  off: profile 'lan' has mptcp-flags disabled",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("show does not say %q:\n%s", want, text)
		}
	}
	if strings.Count(text, "nmcli") != 1 {
		t.Errorf("show prints the nmcli command for other than the managed interface eth1:\n%s", text)
	}
}
