package config

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

func TestInterfacePolicy(t *testing.T) {
	const policyDoc = `
[endpoints]
flags = ["subflow"]
include = ["eth*", "wl*", "wwan0", "veth-uplink"]
exclude = ["eth9", "wlx*"]

[[interface]]
match = "eth2"
manage = false

[[interface]]
match = "veth-uplink"
flags = ["subflow", "backup"]
gateway4 = "192.0.2.1"
gateway6 = "2001:db8::1"
priority = 7

[[interface]]
match = "eth[0-3]"
flags = ["signal"]
port = 8080

[[interface]]
match = "docker*"

[[interface]]
match = "eth1"
priority = 99
`
	cfg, err := Parse("policy.toml", []byte(policyDoc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		iface string
		want  InterfacePolicy
	}{
		{
			name:  "included by glob",
			iface: "wlan0",
			want:  InterfacePolicy{Managed: true, Reason: `included by "wl*"`, Flags: netlinkmptcp.FlagSubflow},
		},
		{
			name:  "included by name",
			iface: "wwan0",
			want:  InterfacePolicy{Managed: true, Reason: `included by "wwan0"`, Flags: netlinkmptcp.FlagSubflow},
		},
		{
			name:  "excluded by name",
			iface: "eth9",
			want:  InterfacePolicy{Reason: `excluded by "eth9"`, Flags: netlinkmptcp.FlagSubflow},
		},
		{
			name:  "excluded by glob",
			iface: "wlx0011223344",
			want:  InterfacePolicy{Reason: `excluded by "wlx*"`, Flags: netlinkmptcp.FlagSubflow},
		},
		{
			name:  "not included",
			iface: "enp3s0",
			want: InterfacePolicy{Reason: `not included by include = ["eth*", "wl*", "wwan0", "veth-uplink"]`,
				Flags: netlinkmptcp.FlagSubflow},
		},
		{
			name:  "glob is not a prefix match",
			iface: "wwan01",
			want: InterfacePolicy{Reason: `not included by include = ["eth*", "wl*", "wwan0", "veth-uplink"]`,
				Flags: netlinkmptcp.FlagSubflow},
		},
		{
			name:  "manage = false beats include",
			iface: "eth2",
			want:  InterfacePolicy{Reason: "manage = false in interface[1]", Entry: 1, Flags: netlinkmptcp.FlagSubflow},
		},
		{
			name:  "entry by name with every setting",
			iface: "veth-uplink",
			want: InterfacePolicy{
				Managed:  true,
				Reason:   `matched by interface[2] (match = "veth-uplink")`,
				Entry:    2,
				Flags:    netlinkmptcp.FlagSubflow | netlinkmptcp.FlagBackup,
				Gateway4: netip.MustParseAddr("192.0.2.1"),
				Gateway6: netip.MustParseAddr("2001:db8::1"),
				Priority: 7,
			},
		},
		{
			name:  "entry by glob",
			iface: "eth0",
			want: InterfacePolicy{Managed: true, Reason: `matched by interface[3] (match = "eth[0-3]")`, Entry: 3,
				Flags: netlinkmptcp.FlagSignal, Port: 8080},
		},
		{
			name:  "first matching entry wins over a later exact name",
			iface: "eth1",
			want: InterfacePolicy{Managed: true, Reason: `matched by interface[3] (match = "eth[0-3]")`, Entry: 3,
				Flags: netlinkmptcp.FlagSignal, Port: 8080},
		},
		{
			name:  "entry beats exclude, and takes the default flags",
			iface: "docker0",
			want: InterfacePolicy{Managed: true, Reason: `matched by interface[4] (match = "docker*")`, Entry: 4,
				Flags: netlinkmptcp.FlagSubflow},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cfg.Interface(tt.iface)
			if diff := cmp.Diff(tt.want, got, cmpConfig...); diff != "" {
				t.Errorf("Interface(%q) (-want +got):\n%s", tt.iface, diff)
			}
		})
	}
}

func TestInterfacePolicyDefaults(t *testing.T) {
	cfg := Default()
	tests := []struct {
		iface   string
		managed bool
		reason  string
	}{
		{"eth0", true, `included by "*"`},
		{"wlp2s0", true, `included by "*"`},
		{"lo", false, `excluded by "lo"`},
		{"docker0", false, `excluded by "docker*"`},
		{"br-5f3a", false, `excluded by "br-*"`},
		{"virbr0", false, `excluded by "virbr*"`},
		{"veth1234", false, `excluded by "veth*"`},
		{"tun0", false, `excluded by "tun*"`},
		{"tap0", false, `excluded by "tap*"`},
		{"wg0", false, `excluded by "wg*"`},
		{"bridge0", true, `included by "*"`},
	}
	for _, tt := range tests {
		got := cfg.Interface(tt.iface)
		if got.Managed != tt.managed || got.Reason != tt.reason || got.Entry != 0 || got.Flags != netlinkmptcp.FlagSubflow {
			t.Errorf("Interface(%q) = %+v, want managed %v, reason %q, subflow flags, no entry", tt.iface, got, tt.managed, tt.reason)
		}
	}
}

func TestInterfacePolicyEmptyInclude(t *testing.T) {
	cfg, err := Parse("test.toml", []byte("[endpoints]\ninclude = []\n[[interface]]\nmatch = \"eth0\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Interface("eth1"); got.Managed || got.Reason != "not included by include = []" {
		t.Errorf("Interface(eth1) = %+v, want unmanaged, not included by include = []", got)
	}
	if got := cfg.Interface("eth0"); !got.Managed || got.Entry != 1 {
		t.Errorf("Interface(eth0) = %+v, want managed by interface[1]", got)
	}
}
