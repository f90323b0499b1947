package config

import (
	"strings"
	"testing"
)

// parseErrorCase is a document Parse must refuse, and the message it must
// give.
type parseErrorCase struct {
	name string
	doc  string
	want string
}

// checkParseErrors parses each case's document and compares the error.
func checkParseErrors(t *testing.T, tests []parseErrorCase) {
	t.Helper()
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

// TestParseErrorsOfStructure: syntax, unknown keys, types, and the metrics
// table's paths.
func TestParseErrorsOfStructure(t *testing.T) {
	checkParseErrors(t, []parseErrorCase{
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
	})
}
