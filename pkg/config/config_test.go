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
