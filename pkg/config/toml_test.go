package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

func TestTOMLRoundTrip(t *testing.T) {
	client, _ := parseConfigFile(t, "client.toml")
	server, _ := parseConfigFile(t, "server.toml")
	tests := []struct {
		name string
		cfg  *Config
	}{
		{"defaults", Default()},
		{"client", client},
		{"server", server},
		{"everything changed", &Config{
			Source: "/tmp/a config.toml",
			Daemon: Daemon{ResyncInterval: 90 * time.Minute, CleanupOnExit: true},
			Log:    Log{Level: LevelWarn, Format: FormatJournal},
			Limits: Limits{SubflowsAuto: true, AddAddrAccepted: 0},
			Endpoints: Endpoints{
				Flags:   netlinkmptcp.FlagSubflow | netlinkmptcp.FlagFullmesh | netlinkmptcp.FlagLaminar | netlinkmptcp.FlagBackup,
				IPv6:    true,
				Include: []string{`eth\*`, `we'ird"name`, "wl?[0-9]"},
				Exclude: []string{},
				SkipULA: true,
			},
			Interfaces: []Interface{
				{Match: "eth1", Flags: flagsPtr(netlinkmptcp.FlagSignal), Gateway4: netip.MustParseAddr("203.0.113.1"),
					Gateway6: netip.MustParseAddr("2001:db8::1"), Port: 65535, Priority: -2147483648, Manage: true},
				{Match: "wwan*", Flags: flagsPtr(0), Priority: 2147483647},
				{Match: "eth2", Manage: true, Gateway6: netip.MustParseAddr("2001:db8::9"), OnLink: true},
			},
			Routing:        Routing{TableBase: 1 << 31, RulePriority: 32765, Protocol: 255},
			Rejoin:         Rejoin{GatewayTimeout: 0, JoinTimeout: 2 * time.Minute, RetryMax: time.Hour},
			NetworkManager: NetworkManager{MPTCPDevices: NMManage},
			Metrics: Metrics{Textfile: "/var/lib/prometheus/node-exporter/mptcpgd.prom", TextfileInterval: time.Hour,
				Listen: netip.MustParseAddrPort("[2001:db8::1]:9477")},
		}},
		{"nil lists", &Config{
			Log:            Log{Level: LevelError, Format: FormatConsole},
			Endpoints:      Endpoints{IPv4: true},
			Routing:        Routing{TableBase: 256, RulePriority: 1, Protocol: 5},
			Rejoin:         Rejoin{GatewayTimeout: time.Second, JoinTimeout: time.Second, RetryMax: time.Second},
			NetworkManager: NetworkManager{MPTCPDevices: NMLeave},
			Metrics:        Metrics{TextfileInterval: time.Second},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.cfg.TOML()
			if want := "# mptcpgd configuration in effect, from " + tt.cfg.Source + "\n"; !strings.HasPrefix(text, want) {
				t.Errorf("TOML does not start with %q:\n%s", want, text)
			}
			got, err := Parse("printed", []byte(text))
			if err != nil {
				t.Fatalf("Parse of TOML: %v\n%s", err, text)
			}
			want := *tt.cfg
			want.Source = "printed"
			if diff := cmp.Diff(&want, got, cmpConfig...); diff != "" {
				t.Errorf("Parse(TOML) (-want +got):\n%s\n%s", diff, text)
			}
		})
	}
}

func TestTOMLNamesEveryKey(t *testing.T) {
	want := `[daemon]
resync_interval = '30s'
cleanup_on_exit = false

[log]
level = 'info'
format = 'auto'

[limits]
subflows = 4
add_addr_accepted = 4

[endpoints]
flags = ['subflow']
families = ['ipv4', 'ipv6']
include = ['*']
exclude = ['lo', 'docker*', 'br-*', 'virbr*', 'veth*', 'tun*', 'tap*', 'wg*']
skip_link_local = true
skip_ula = false
skip_temporary = true
require_default_route = false

[routing]
enabled = true
table_base = 10000
rule_priority = 10000
protocol = 177

[rejoin]
gateway_timeout = '30s'
join_timeout = '5s'
retry_max = '1m0s'

[networkmanager]
mptcp_devices = 'leave'

[metrics]
textfile = ''
textfile_interval = '15s'
listen = ''
`
	_, got, _ := strings.Cut(Default().TOML(), "\n\n")
	if got != want {
		t.Errorf("Default().TOML() body:\n%s\nwant:\n%s", got, want)
	}
}

// FuzzParse checks that Parse never panics, and that whatever it accepts
// prints as TOML it parses back to the same Config.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"mptcpgd.toml", "client.toml", "server.toml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "configs", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("interface = [{ match = \"eth0\", port = 1 }]\n[endpoints]\nflags = [\"signal\"]\n"))
	f.Add([]byte("[limits]\nsubflows = \"auto\"\n[[interface]]\nmatch = \"e*\"\nmanage = false\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		text := cfg.TOML()
		again, err := Parse("fuzz", []byte(text))
		if err != nil {
			t.Fatalf("Parse(TOML()): %v\n%s", err, text)
		}
		if diff := cmp.Diff(cfg, again, cmpConfig...); diff != "" {
			t.Fatalf("Parse(TOML()) (-first +again):\n%s", diff)
		}
	})
}
