package config

import (
	"strings"
	"testing"
)

// TestParseErrorsOfValues: values out of range or of the wrong kind, and
// several problems reported together in file order.
func TestParseErrorsOfValues(t *testing.T) {
	checkParseErrors(t, []parseErrorCase{
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
	})
}
