package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// cmpConfig compares Configs: addresses by value, nil and empty lists alike.
var cmpConfig = []cmp.Option{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
	cmpopts.EquateEmpty(),
	// Where each key stood is no part of what it says.
	cmpopts.IgnoreUnexported(Config{}),
}

func flagsPtr(f netlinkmptcp.Flags) *netlinkmptcp.Flags { return &f }

// withDefaults returns the defaults, as parsed from test.toml, changed by
// edit.
func withDefaults(edit func(*Config)) *Config {
	c := Default()
	c.Source = "test.toml"
	if edit != nil {
		edit(c)
	}
	return c
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want *Config
	}{
		{
			name: "empty document: defaults",
			doc:  "",
			want: withDefaults(nil),
		},
		{
			name: "comments and empty tables: defaults",
			doc:  "# nothing here\n[daemon]\n[log]\n[limits]\n[endpoints]\n[routing]\n",
			want: withDefaults(nil),
		},
		{
			name: "daemon",
			doc:  "[daemon]\nresync_interval = \"5m30s\"\ncleanup_on_exit = true\n",
			want: withDefaults(func(c *Config) {
				c.Daemon = Daemon{ResyncInterval: 5*time.Minute + 30*time.Second, CleanupOnExit: true}
			}),
		},
		{
			name: "resync disabled",
			doc:  "[daemon]\nresync_interval = \"0s\"\n",
			want: withDefaults(func(c *Config) { c.Daemon.ResyncInterval = 0 }),
		},
		{
			name: "log",
			doc:  "[log]\nlevel = \"debug\"\nformat = \"json\"\n",
			want: withDefaults(func(c *Config) { c.Log = Log{Level: LevelDebug, Format: FormatJSON} }),
		},
		{
			name: "subflows auto",
			doc:  "[limits]\nsubflows = \"auto\"\nadd_addr_accepted = 8\n",
			want: withDefaults(func(c *Config) { c.Limits = Limits{SubflowsAuto: true, AddAddrAccepted: 8} }),
		},
		{
			name: "limits at their bounds",
			doc:  "[limits]\nsubflows = 0\nadd_addr_accepted = 0\n",
			want: withDefaults(func(c *Config) { c.Limits = Limits{} }),
		},
		{
			name: "limits as dotted keys",
			doc:  "limits.subflows = 8\nlimits.add_addr_accepted = 2\n",
			want: withDefaults(func(c *Config) { c.Limits = Limits{Subflows: 8, AddAddrAccepted: 2} }),
		},
		{
			name: "limits as an inline table",
			doc:  "limits = { subflows = 1, add_addr_accepted = 3 }\n",
			want: withDefaults(func(c *Config) { c.Limits = Limits{Subflows: 1, AddAddrAccepted: 3} }),
		},
		{
			name: "endpoints",
			doc: `[endpoints]
flags = ["signal", "backup"]
families = ["ipv6"]
include = ["eth*", "wl?0", "enp[0-9]s*"]
exclude = []
skip_link_local = false
skip_ula = true
skip_temporary = false
require_default_route = true
`,
			want: withDefaults(func(c *Config) {
				c.Endpoints = Endpoints{
					Flags:               netlinkmptcp.FlagSignal | netlinkmptcp.FlagBackup,
					IPv6:                true,
					Include:             []string{"eth*", "wl?0", "enp[0-9]s*"},
					Exclude:             []string{},
					SkipULA:             true,
					RequireDefaultRoute: true,
				}
			}),
		},
		{
			name: "subflow fullmesh laminar, ipv4 only",
			doc:  "[endpoints]\nflags = [\"subflow\", \"fullmesh\", \"laminar\"]\nfamilies = [\"ipv4\", \"ipv4\"]\n",
			want: withDefaults(func(c *Config) {
				c.Endpoints.Flags = netlinkmptcp.FlagSubflow | netlinkmptcp.FlagFullmesh | netlinkmptcp.FlagLaminar
				c.Endpoints.IPv6 = false
			}),
		},
		{
			name: "no flags",
			doc:  "[endpoints]\nflags = []\n",
			want: withDefaults(func(c *Config) { c.Endpoints.Flags = 0 }),
		},
		{
			name: "interfaces",
			doc: `[endpoints]
flags = ["signal"]

[[interface]]
match = "eth1"
flags = ["subflow", "backup"]
gateway4 = "192.0.2.1"
gateway6 = "fe80::1"
priority = -5

[[interface]]
match = "wwan*"
port = 8080
priority = 10

[[interface]]
match = "docker0"
manage = false
`,
			want: withDefaults(func(c *Config) {
				c.Endpoints.Flags = netlinkmptcp.FlagSignal
				c.Interfaces = []Interface{
					{
						Match:    "eth1",
						Flags:    flagsPtr(netlinkmptcp.FlagSubflow | netlinkmptcp.FlagBackup),
						Gateway4: netip.MustParseAddr("192.0.2.1"),
						Gateway6: netip.MustParseAddr("fe80::1"),
						Priority: -5,
						Manage:   true,
					},
					{Match: "wwan*", Port: 8080, Priority: 10, Manage: true},
					{Match: "docker0", Manage: false},
				}
			}),
		},
		{
			name: "interfaces as an inline array",
			doc:  "interface = [{ match = \"eth0\" }, { match = \"eth1\", flags = [\"subflow\", \"signal\"], port = 443 }]\n",
			want: withDefaults(func(c *Config) {
				c.Interfaces = []Interface{
					{Match: "eth0", Manage: true},
					{Match: "eth1", Flags: flagsPtr(netlinkmptcp.FlagSubflow | netlinkmptcp.FlagSignal), Port: 443, Manage: true},
				}
			}),
		},
		{
			name: "routing at its lower bounds",
			doc:  "[routing]\nenabled = false\ntable_base = 256\nrule_priority = 1\nprotocol = 5\n",
			want: withDefaults(func(c *Config) {
				c.Routing = Routing{TableBase: 256, RulePriority: 1, Protocol: 5}
			}),
		},
		{
			name: "routing at its upper bounds",
			doc:  "[routing]\ntable_base = 2147483648\nrule_priority = 32765\nprotocol = 255\n",
			want: withDefaults(func(c *Config) {
				c.Routing = Routing{Enabled: true, TableBase: 1 << 31, RulePriority: 32765, Protocol: 255}
			}),
		},
		{
			name: "resync at its minimum",
			doc:  "[daemon]\nresync_interval = \"1s\"\n",
			want: withDefaults(func(c *Config) { c.Daemon.ResyncInterval = time.Second }),
		},
		{
			name: "UTF-8 byte order mark",
			doc:  "\xef\xbb\xbf[limits]\nsubflows = 2\n",
			want: withDefaults(func(c *Config) { c.Limits.Subflows = 2 }),
		},
		{
			name: "integers in TOML's other notations",
			doc:  "[routing]\ntable_base = 0x1_000\nrule_priority = +1_000\nprotocol = 0o301\n",
			want: withDefaults(func(c *Config) {
				c.Routing.TableBase, c.Routing.RulePriority, c.Routing.Protocol = 4096, 1000, 193
			}),
		},
		{
			name: "a table after [[interface]] entries",
			doc:  "[[interface]]\nmatch = \"eth0\"\n[limits]\nsubflows = 1\n",
			want: withDefaults(func(c *Config) {
				c.Limits.Subflows = 1
				c.Interfaces = []Interface{{Match: "eth0", Manage: true}}
			}),
		},
		{
			name: "CRLF line endings",
			doc:  "[limits]\r\nsubflows = 2\r\n",
			want: withDefaults(func(c *Config) { c.Limits.Subflows = 2 }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("test.toml", []byte(tt.doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpConfig...); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		// Metrics.
		{
			name: "relative textfile",
			doc:  "[metrics]\ntextfile = \"mptcpgd.prom\"\n",
			want: `test.toml:2: metrics.textfile: "mptcpgd.prom" is not a clean absolute path`,
		},
		{
			name: "textfile not .prom",
			doc:  "[metrics]\ntextfile = \"/var/lib/x/mptcpgd.txt\"\n",
			want: `test.toml:2: metrics.textfile: "/var/lib/x/mptcpgd.txt" does not end in .prom, which node_exporter's textfile collector reads`,
		},
		{
			name: "textfile interval too short",
			doc:  "[metrics]\ntextfile_interval = \"100ms\"\n",
			want: `test.toml:2: metrics.textfile_interval: "100ms" is out of range (1s..1h0m0s)`,
		},
		{
			name: "listen without port",
			doc:  "[metrics]\nlisten = \"127.0.0.1\"\n",
			want: `test.toml:2: metrics.listen: "127.0.0.1" is not an address and port (want e.g. "127.0.0.1:9477" or "[2001:db8::1]:9477")`,
		},
		{
			name: "listen on a host name",
			doc:  "[metrics]\nlisten = \"localhost:9477\"\n",
			want: `test.toml:2: metrics.listen: "localhost:9477" is not an address and port (want e.g. "127.0.0.1:9477" or "[2001:db8::1]:9477")`,
		},
		{
			name: "listen on port 0",
			doc:  "[metrics]\nlisten = \"127.0.0.1:0\"\n",
			want: `test.toml:2: metrics.listen: "127.0.0.1:0" has port 0: give the port Prometheus scrapes`,
		},
		// Syntax.
		{
			name: "unclosed table header",
			doc:  "[daemon]\n[limits\n",
			want: `test.toml:2: syntax error: expected ']' to close table name`,
		},
		{
			name: "unquoted string",
			doc:  "[limits]\n\nsubflows = auto\n",
			want: `test.toml:3: limits.subflows: syntax error: unexpected character U+0061 'a' at start of value`,
		},
		{
			name: "unfinished array",
			doc:  "[endpoints]\ninclude = [\n  \"eth0\",\n",
			want: `test.toml:3: syntax error: array is incomplete`,
		},
		{
			name: "key defined twice",
			doc:  "[daemon]\ncleanup_on_exit = true\ncleanup_on_exit = false\n",
			want: `test.toml:3: daemon.cleanup_on_exit: already given on line 2`,
		},
		{
			name: "integer too large",
			doc:  "[routing]\ntable_base = 99999999999999999999\n",
			want: `test.toml:2: routing.table_base: 99999999999999999999 does not fit in a 64-bit integer`,
		},
		{
			name: "table defined twice",
			doc:  "[daemon]\ncleanup_on_exit = true\n[limits]\n[daemon]\n",
			want: `test.toml:4: daemon: table already defined on line 1`,
		},
		{
			name: "header after an inline table",
			doc:  "daemon = { cleanup_on_exit = true }\n[daemon]\n",
			want: `test.toml:2: daemon: table already defined on line 1`,
		},
		{
			name: "header after dotted keys",
			doc:  "daemon.cleanup_on_exit = true\n[daemon]\n",
			want: `test.toml:2: daemon: table already defined on line 1`,
		},
		{
			name: "value given by a dotted key, then directly",
			doc:  "[log]\nlevel.x = 1\nlevel = \"debug\"\n",
			want: `test.toml:3: log.level: already given on line 2`,
		},
		{
			name: "[[interface]] after an inline array",
			doc:  "interface = [{ match = \"eth0\" }]\n[[interface]]\nmatch = \"eth1\"\n",
			want: `test.toml:2: interface: already given as an array on line 1`,
		},

		// Unknown keys.
		{
			name: "unknown key in a table",
			doc:  "[daemon]\nresync = \"10s\"\n",
			want: `test.toml:2: daemon.resync: unknown key`,
		},
		{
			name: "unknown table",
			doc:  "[deamon]\ncleanup_on_exit = true\n",
			want: `test.toml:1: deamon: unknown table`,
		},
		{
			name: "unknown top-level key",
			doc:  "verbose = true\n",
			want: `test.toml:1: verbose: unknown key`,
		},
		{
			name: "unknown key in an inline table",
			doc:  "limits = { subflows = 2, subflow = 2 }\n",
			want: `test.toml:1: limits.subflow: unknown key`,
		},
		{
			name: "unknown key in the second interface",
			doc:  "[[interface]]\nmatch = \"eth0\"\n\n[[interface]]\nmatch = \"eth1\"\ngatway4 = \"192.0.2.1\"\n",
			want: `test.toml:6: interface[2].gatway4: unknown key`,
		},
		{
			name: "unknown key in an inline interface",
			doc:  "interface = [{ match = \"eth0\" }, { match = \"eth1\", gw = \"192.0.2.1\" }]\n",
			want: `test.toml:1: interface[2].gw: unknown key`,
		},
		{
			name: "unknown key in a dotted key",
			doc:  "[daemon]\nresync.interval = \"1s\"\n",
			want: `test.toml:2: daemon.resync: unknown key`,
		},
		{
			name: "unknown table in a dotted header",
			doc:  "[a.b.c]\nx = 1\n",
			want: `test.toml:1: a: unknown table`,
		},
		{
			name: "unknown sub-table",
			doc:  "[daemon.x.y]\nz = 1\n",
			want: `test.toml:1: daemon.x: unknown table`,
		},
		{
			name: "unknown sub-table of an interface",
			doc:  "[[interface]]\nmatch = \"eth0\"\n[interface.gw]\nv4 = \"192.0.2.1\"\n",
			want: `test.toml:3: interface[1].gw: unknown table`,
		},
		{
			name: "long unknown key shortened",
			doc:  "[daemon]\n" + strings.Repeat("k", 70) + " = 1\n",
			want: `test.toml:2: daemon.` + strings.Repeat("k", 64) + `… (70 bytes): unknown key`,
		},
		{
			name: "every unknown key is reported",
			doc:  "[daemon]\nresync = \"1s\"\n[log]\nlevels = \"debug\"\n",
			want: "test.toml:2: daemon.resync: unknown key\ntest.toml:4: log.levels: unknown key",
		},

		// Types.
		{
			name: "string for a boolean",
			doc:  "[daemon]\ncleanup_on_exit = \"yes\"\n",
			want: `test.toml:2: daemon.cleanup_on_exit: want true or false, got "yes"`,
		},
		{
			name: "integer for a duration",
			doc:  "[daemon]\nresync_interval = 30\n",
			want: `test.toml:2: daemon.resync_interval: want a duration such as "30s", got 30`,
		},
		{
			name: "string for an integer",
			doc:  "[limits]\nadd_addr_accepted = \"4\"\n",
			want: `test.toml:2: limits.add_addr_accepted: want an integer, got "4"`,
		},
		{
			name: "float for subflows",
			doc:  "[limits]\nsubflows = 4.5\n",
			want: `test.toml:2: limits.subflows: want 0..8 or "auto", got 4.5`,
		},
		{
			name: "string for flags",
			doc:  "[endpoints]\nflags = \"subflow\"\n",
			want: `test.toml:2: endpoints.flags: want an array of strings, got "subflow"`,
		},
		{
			name: "integer in include",
			doc:  "[endpoints]\ninclude = [\n  \"eth0\",\n  1,\n]\n",
			want: `test.toml:4: endpoints.include: want an array of strings, got 1 in it`,
		},
		{
			name: "table for a value",
			doc:  "[log.level]\nname = \"debug\"\n",
			want: `test.toml:1: log.level: want a level, got a table`,
		},
		{
			name: "value for a table",
			doc:  "daemon = 3\n",
			want: `test.toml:1: daemon: want a [daemon] table, got an integer`,
		},
		{
			name: "array of tables for a table",
			doc:  "[[routing]]\nenabled = true\n",
			want: `test.toml:1: routing: want a [routing] table, got an array of tables`,
		},
		{
			name: "deep table for a value",
			doc:  "[log.level.a.b.c]\nname = \"debug\"\n",
			want: `test.toml:1: log.level: want a level, got a table`,
		},
		{
			name: "dotted key for a value",
			doc:  "log.level.a.b = 1\n",
			want: `test.toml:1: log.level: want a level, got a table`,
		},
		{
			name: "inline table for a value",
			doc:  "[daemon]\nresync_interval = { a = 1, a = 2 }\n",
			want: `test.toml:2: daemon.resync_interval: want a duration such as "30s", got a table`,
		},
		{
			name: "date for a duration",
			doc:  "[daemon]\nresync_interval = 1979-05-27\n",
			want: `test.toml:2: daemon.resync_interval: want a duration such as "30s", got 1979-05-27`,
		},
		{
			name: "array of tables for an array",
			doc:  "[[endpoints.flags]]\nname = \"subflow\"\n",
			want: `test.toml:1: endpoints.flags: want an array of strings, got a table in it`,
		},
		{
			name: "nested array for an array",
			doc:  "[endpoints]\nflags = [[\"subflow\"]]\n",
			want: `test.toml:2: endpoints.flags: want an array of strings, got an array in it`,
		},
		{
			name: "table for an interface key",
			doc:  "[[interface]]\nmatch = \"eth0\"\n[interface.flags]\nx = 1\n",
			want: `test.toml:3: interface[1].flags: want an array of strings, got a table`,
		},
		{
			name: "table after [[interface]]",
			doc:  "[[interface]]\nmatch = \"eth0\"\n[interface]\nmatch = \"eth1\"\n",
			want: `test.toml:3: interface: want [[interface]] tables, got a table`,
		},
		{
			name: "table for [[interface]]",
			doc:  "[interface]\nmatch = \"eth0\"\n",
			want: `test.toml:1: interface: want [[interface]] tables, got a table`,
		},
		{
			name: "integers for [[interface]]",
			doc:  "interface = [1]\n",
			want: `test.toml:1: interface: want [[interface]] tables, got an integer`,
		},
		{
			name: "integer for match",
			doc:  "[[interface]]\nmatch = 1\n",
			want: `test.toml:2: interface[1].match: want an interface name or glob, got 1`,
		},
		{
			name: "string for port",
			doc:  "[[interface]]\nmatch = \"eth0\"\nport = \"443\"\n",
			want: `test.toml:3: interface[1].port: want an integer, got "443"`,
		},

		{
			name: "same match twice",
			doc:  "[[interface]]\nmatch = \"eth1\"\n\n[[interface]]\nmatch = \"eth2\"\n\n[[interface]]\nmatch = \"eth1\"\nflags = [\"backup\"]\n",
			want: `test.toml:8: interface[3].match: "eth1" is also the match of interface[1] on line 2; the first entry that matches decides, so this one would never apply: merge the two`,
		},

		// Limits.
		{
			name: "subflows above 8",
			doc:  "[limits]\nsubflows = 9\n",
			want: `test.toml:2: limits.subflows: 9 is out of range (0..8 or "auto")`,
		},
		{
			name: "negative subflows",
			doc:  "[limits]\nsubflows = -1\n",
			want: `test.toml:2: limits.subflows: -1 is out of range (0..8 or "auto")`,
		},
		{
			name: "subflows neither a number nor auto",
			doc:  "[limits]\nsubflows = \"max\"\n",
			want: `test.toml:2: limits.subflows: want 0..8 or "auto", got "max"`,
		},
		{
			name: "add_addr_accepted above 8",
			doc:  "[limits]\nadd_addr_accepted = 9\n",
			want: `test.toml:2: limits.add_addr_accepted: 9 is out of range (0..8)`,
		},

		// Flags.
		{
			name: "unknown flag",
			doc:  "[endpoints]\nflags = [\n  \"subflow\",\n  \"sublfow\",\n]\n",
			want: `test.toml:4: endpoints.flags: unknown flag "sublfow" (want signal, subflow, backup, fullmesh or laminar)`,
		},
		{
			name: "implicit flag",
			doc:  "[endpoints]\nflags = [\"subflow\", \"implicit\"]\n",
			want: `test.toml:2: endpoints.flags: "implicit" marks endpoints the kernel makes itself; it cannot be configured`,
		},
		{
			name: "signal with fullmesh",
			doc:  "[endpoints]\nflags = [\"signal\", \"fullmesh\"]\n",
			want: `test.toml:2: endpoints.flags: signal and fullmesh cannot be combined (the kernel refuses it)`,
		},
		{
			name: "signal with fullmesh on an interface",
			doc:  "[[interface]]\nmatch = \"eth0\"\nflags = [\"fullmesh\", \"signal\"]\n",
			want: `test.toml:3: interface[1].flags: signal and fullmesh cannot be combined (the kernel refuses it)`,
		},

		// Ports.
		{
			name: "port with inherited flags lacking signal",
			doc:  "[[interface]]\nmatch = \"eth0\"\nport = 8080\n",
			want: `test.toml:3: interface[1].port: 8080 needs the signal flag, but flags are subflow (from endpoints.flags)`,
		},
		{
			name: "port with the entry's flags lacking signal",
			doc:  "[endpoints]\nflags = [\"signal\"]\n[[interface]]\nmatch = \"eth0\"\nflags = [\"subflow\", \"backup\"]\nport = 8080\n",
			want: `test.toml:6: interface[1].port: 8080 needs the signal flag, but flags are subflow,backup`,
		},
		{
			name: "port out of range",
			doc:  "[endpoints]\nflags = [\"signal\"]\n[[interface]]\nmatch = \"eth0\"\nport = 65536\n",
			want: `test.toml:5: interface[1].port: 65536 is out of range (0..65535)`,
		},
		{
			name: "negative port",
			doc:  "[[interface]]\nmatch = \"eth0\"\nport = -1\n",
			want: `test.toml:3: interface[1].port: -1 is out of range (0..65535)`,
		},

		// Globs.
		{
			name: "bad glob in include",
			doc:  "[endpoints]\ninclude = [\"eth[0-\"]\n",
			want: `test.toml:2: endpoints.include: bad pattern "eth[0-": syntax error in pattern`,
		},
		{
			name: "bad glob in exclude",
			doc:  "[endpoints]\nexclude = [\n  \"lo\",\n  \"veth\\\\\",\n]\n",
			want: `test.toml:4: endpoints.exclude: bad pattern "veth\\": syntax error in pattern`,
		},
		{
			name: "empty glob in exclude",
			doc:  "[endpoints]\nexclude = [\"lo\", \"\"]\n",
			want: `test.toml:2: endpoints.exclude: empty pattern (want an interface name or glob)`,
		},
		{
			name: "bad glob in match",
			doc:  "[[interface]]\nmatch = \"wl[an\"\n",
			want: `test.toml:2: interface[1].match: bad pattern "wl[an": syntax error in pattern`,
		},
		{
			name: "empty match",
			doc:  "[[interface]]\nmatch = \"\"\n",
			want: `test.toml:2: interface[1].match: empty pattern (want an interface name or glob)`,
		},
		{
			name: "missing match",
			doc:  "[[interface]]\nmatch = \"eth0\"\n\n[[interface]]\nmanage = false\n",
			want: `test.toml:4: interface[2].match: missing (want an interface name or glob)`,
		},

		// Gateways.
		{
			name: "gateway4 is IPv6",
			doc:  "[[interface]]\nmatch = \"eth0\"\ngateway4 = \"2001:db8::1\"\n",
			want: `test.toml:3: interface[1].gateway4: "2001:db8::1" is not an IPv4 address`,
		},
		{
			name: "gateway6 is IPv4",
			doc:  "[[interface]]\nmatch = \"eth0\"\ngateway6 = \"192.0.2.1\"\n",
			want: `test.toml:3: interface[1].gateway6: "192.0.2.1" is not an IPv6 address`,
		},
		{
			name: "gateway6 is IPv4-mapped",
			doc:  "[[interface]]\nmatch = \"eth0\"\ngateway6 = \"::ffff:192.0.2.1\"\n",
			want: `test.toml:3: interface[1].gateway6: "::ffff:192.0.2.1" is not an IPv6 address`,
		},
		{
			name: "gateway4 unparsable",
			doc:  "[[interface]]\nmatch = \"eth0\"\ngateway4 = \"192.0.2\"\n",
			want: `test.toml:3: interface[1].gateway4: "192.0.2" is not an IP address`,
		},
		{
			name: "gateway6 with a zone",
			doc:  "[[interface]]\nmatch = \"eth0\"\ngateway6 = \"fe80::1%eth0\"\n",
			want: `test.toml:3: interface[1].gateway6: "fe80::1%eth0" has a zone: leave it out, the interface is implied`,
		},
		{
			name: "gateway4 unspecified",
			doc:  "[[interface]]\nmatch = \"eth0\"\ngateway4 = \"0.0.0.0\"\n",
			want: `test.toml:3: interface[1].gateway4: "0.0.0.0" is not a unicast address`,
		},

		// Durations.
		{
			name: "bad duration",
			doc:  "[daemon]\nresync_interval = \"30\"\n",
			want: `test.toml:2: daemon.resync_interval: "30" is not a duration (want e.g. "30s" or "5m", or "0s" to disable)`,
		},
		{
			name: "duration below the minimum",
			doc:  "[daemon]\nresync_interval = \"1ns\"\n",
			want: `test.toml:2: daemon.resync_interval: "1ns" is below the minimum of 1s (or "0s" to disable)`,
		},
		{
			name: "long value shortened",
			doc:  "[log]\nlevel = \"" + strings.Repeat("v", 100) + "\"\n",
			want: `test.toml:2: log.level: unknown level "` + strings.Repeat("v", 64) + `"… (100 bytes) (want debug, info, warn or error)`,
		},
		{
			name: "negative duration",
			doc:  "[daemon]\nresync_interval = \"-5s\"\n",
			want: `test.toml:2: daemon.resync_interval: "-5s" is negative (want e.g. "30s" or "5m", or "0s" to disable)`,
		},

		// Log.
		{
			name: "unknown log level",
			doc:  "[log]\nlevel = \"verbose\"\n",
			want: `test.toml:2: log.level: unknown level "verbose" (want debug, info, warn or error)`,
		},
		{
			name: "unknown log format",
			doc:  "[log]\nformat = \"syslog\"\n",
			want: `test.toml:2: log.format: unknown format "syslog" (want auto, journal, json or console)`,
		},

		// Families.
		{
			name: "unknown family",
			doc:  "[endpoints]\nfamilies = [\"ipv4\", \"inet6\"]\n",
			want: `test.toml:2: endpoints.families: unknown family "inet6" (want "ipv4", "ipv6" or both)`,
		},
		{
			name: "no family",
			doc:  "[endpoints]\nfamilies = []\n",
			want: `test.toml:2: endpoints.families: empty (want "ipv4", "ipv6" or both)`,
		},

		// Routing.
		{
			name: "table_base among the kernel's tables",
			doc:  "[routing]\ntable_base = 255\n",
			want: `test.toml:2: routing.table_base: 255 is out of range (256..2147483648, so that table_base + ifindex misses the kernel's tables 0-255 and fits in 32 bits)`,
		},
		{
			name: "table_base too large for every ifindex",
			doc:  "[routing]\ntable_base = 2147483649\n",
			want: `test.toml:2: routing.table_base: 2147483649 is out of range (256..2147483648, so that table_base + ifindex misses the kernel's tables 0-255 and fits in 32 bits)`,
		},
		{
			name: "rule_priority zero",
			doc:  "[routing]\nrule_priority = 0\n",
			want: `test.toml:2: routing.rule_priority: 0 is out of range (1..32765, so that our rules come before the main table's at 32766)`,
		},
		{
			name: "rule_priority after the main table",
			doc:  "[routing]\nrule_priority = 32766\n",
			want: `test.toml:2: routing.rule_priority: 32766 is out of range (1..32765, so that our rules come before the main table's at 32766)`,
		},
		{
			name: "protocol of the kernel",
			doc:  "[routing]\nprotocol = 4\n",
			want: `test.toml:2: routing.protocol: 4 is out of range (5..255; 0-4 are the kernel's own)`,
		},
		{
			name: "protocol above a byte",
			doc:  "[routing]\nprotocol = 256\n",
			want: `test.toml:2: routing.protocol: 256 is out of range (5..255; 0-4 are the kernel's own)`,
		},

		// Priority.
		{
			name: "priority beyond 32 bits",
			doc:  "[[interface]]\nmatch = \"eth0\"\npriority = 2147483648\n",
			want: `test.toml:3: interface[1].priority: 2147483648 is out of range (-2147483648..2147483647)`,
		},

		// Several problems: all of them, in file order.
		{
			name: "every problem in file order",
			doc: `[routing]
protocol = 1

[limits]
subflows = 9

[[interface]]
match = "eth0"
gateway4 = "fe80::1"

[daemon]
resync_interval = "soon"
`,
			want: `test.toml:2: routing.protocol: 1 is out of range (5..255; 0-4 are the kernel's own)
test.toml:5: limits.subflows: 9 is out of range (0..8 or "auto")
test.toml:9: interface[1].gateway4: "fe80::1" is not an IPv4 address
test.toml:12: daemon.resync_interval: "soon" is not a duration (want e.g. "30s" or "5m", or "0s" to disable)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("test.toml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q; got\n%s", tt.want, cfg.TOML())
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse error:\ngot  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseErrorIsLocated(t *testing.T) {
	_, err := Parse("/etc/mptcpgd.toml", []byte("[limits]\n\nsubflows = 9\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse error %v is not an *Error", err)
	}
	want := Error{File: "/etc/mptcpgd.toml", Line: 3, Key: "limits.subflows", Message: `9 is out of range (0..8 or "auto")`}
	if *e != want {
		t.Errorf("Parse error = %+v, want %+v", *e, want)
	}
	if got, want := err.Error(), `/etc/mptcpgd.toml:3: limits.subflows: 9 is out of range (0..8 or "auto")`; got != want {
		t.Errorf("Parse error = %q, want %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")
	valid := filepath.Join(dir, "valid.toml")
	if err := os.WriteFile(valid, []byte("[limits]\nsubflows = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	invalid := filepath.Join(dir, "invalid.toml")
	if err := os.WriteFile(invalid, []byte("[limits]\nsubflows = 2\nsubflows = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("missing default file gives the defaults", func(t *testing.T) {
		got, err := Load(missing, false)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if diff := cmp.Diff(Default(), got, cmpConfig...); diff != "" {
			t.Errorf("Load (-want +got):\n%s", diff)
		}
		if got.Source != "built-in defaults" {
			t.Errorf("Source = %q, want %q", got.Source, "built-in defaults")
		}
	})
	t.Run("missing explicit file is an error", func(t *testing.T) {
		_, err := Load(missing, true)
		want := "read configuration: open " + missing + ": no such file or directory"
		if err == nil || err.Error() != want {
			t.Errorf("Load error = %v, want %q", err, want)
		}
	})
	t.Run("unreadable default file is an error", func(t *testing.T) {
		_, err := Load(dir, false)
		want := "read configuration: read " + dir + ": is a directory"
		if err == nil || err.Error() != want {
			t.Errorf("Load error = %v, want %q", err, want)
		}
	})
	for _, explicit := range []bool{false, true} {
		got, err := Load(valid, explicit)
		if err != nil {
			t.Fatalf("Load(explicit=%v): %v", explicit, err)
		}
		want := Default()
		want.Source = valid
		want.Limits.Subflows = 2
		if diff := cmp.Diff(want, got, cmpConfig...); diff != "" {
			t.Errorf("Load(explicit=%v) (-want +got):\n%s", explicit, diff)
		}
	}
	_, err := Load(invalid, false)
	if want := invalid + ":3: limits.subflows: already given on line 2"; err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %q", err, want)
	}
}

func TestSubflowsFor(t *testing.T) {
	auto := Limits{SubflowsAuto: true}
	tests := []struct {
		limits  Limits
		managed int
		want    uint32
	}{
		{Limits{Subflows: 4}, 0, 4},
		{Limits{Subflows: 4}, 7, 4},
		{Limits{Subflows: 0}, 3, 0},
		{auto, 0, 2},
		{auto, 1, 2},
		{auto, 2, 4},
		{auto, 3, 6},
		{auto, 4, 8},
		{auto, 8, 8},
		{auto, -1, 2},
	}
	for _, tt := range tests {
		if got := tt.limits.SubflowsFor(tt.managed); got != tt.want {
			t.Errorf("%+v.SubflowsFor(%d) = %d, want %d", tt.limits, tt.managed, got, tt.want)
		}
	}
}

func TestServiceCanRead(t *testing.T) {
	dir := t.TempDir()
	private := filepath.Join(dir, "private.toml")
	public := filepath.Join(dir, "public.toml")
	if err := os.WriteFile(private, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(public, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ServiceCanRead(private); err == nil || !strings.Contains(err.Error(), "mode 0600") || !strings.Contains(err.Error(), "chmod 0644 "+private) {
		t.Errorf("ServiceCanRead(mode 0600) = %v, want the mode and chmod 0644 named", err)
	}
	for _, p := range []string{public, filepath.Join(dir, "missing.toml")} {
		if err := ServiceCanRead(p); err != nil {
			t.Errorf("ServiceCanRead(%s) = %v, want nil", p, err)
		}
	}
}
