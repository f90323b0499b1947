package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// parseConfigFile parses a file of the repository's configs directory.
func parseConfigFile(t *testing.T, name string) (*Config, []byte) {
	t.Helper()
	path := filepath.Join("..", "..", "configs", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(path, data)
	if err != nil {
		t.Fatalf("Parse %s: %v", path, err)
	}
	return cfg, data
}

func TestReferenceConfigIsTheDefaults(t *testing.T) {
	got, _ := parseConfigFile(t, "mptcpgd.toml")
	want := Default()
	want.Source = got.Source
	if diff := cmp.Diff(want, got, cmpConfig...); diff != "" {
		t.Errorf("configs/mptcpgd.toml differs from the defaults (-want +got):\n%s", diff)
	}
}

// TestReferenceConfigNamesEveryKey checks that the reference configuration
// mentions every key the parser knows, so that a new key cannot go
// undocumented.
func TestReferenceConfigNamesEveryKey(t *testing.T) {
	_, data := parseConfigFile(t, "mptcpgd.toml")
	text := string(data)
	all := Default()
	all.Interfaces = []Interface{{Match: "eth1", Flags: flagsPtr(netlinkmptcp.FlagSubflow),
		Gateway4: netip.MustParseAddr("192.0.2.1"), Gateway6: netip.MustParseAddr("fe80::1"), Manage: true}}
	for _, line := range strings.Split(all.TOML(), "\n") {
		if strings.HasPrefix(line, "[") {
			if !strings.Contains(text, "\n"+line+"\n") && !strings.Contains(text, "\n# "+line+"\n") {
				t.Errorf("configs/mptcpgd.toml lacks table %s", line)
			}
			continue
		}
		key, _, ok := strings.Cut(line, " = ")
		if !ok {
			continue
		}
		if !strings.Contains(text, "\n"+key+" = ") && !strings.Contains(text, "\n# "+key+" = ") {
			t.Errorf("configs/mptcpgd.toml lacks key %s", key)
		}
	}
}

// TestReferenceConfigInterfaceExample parses the commented-out [[interface]]
// example of the reference configuration, uncommented.
func TestReferenceConfigInterfaceExample(t *testing.T) {
	_, data := parseConfigFile(t, "mptcpgd.toml")
	_, example, ok := strings.Cut(string(data), "\n# [[interface]]\n")
	if !ok {
		t.Fatal("configs/mptcpgd.toml has no commented-out [[interface]] example")
	}
	var doc strings.Builder
	doc.WriteString("[endpoints]\nflags = [\"signal\"]\n[[interface]]\n")
	for _, line := range strings.Split(example, "\n") {
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			doc.WriteString(rest + "\n")
		}
	}
	got, err := Parse("example", []byte(doc.String()))
	if err != nil {
		t.Fatalf("Parse of the [[interface]] example: %v\n%s", err, doc.String())
	}
	want := []Interface{{
		Match:    "eth1",
		Flags:    flagsPtr(netlinkmptcp.FlagSubflow | netlinkmptcp.FlagBackup),
		Gateway4: netip.MustParseAddr("192.0.2.1"),
		Gateway6: netip.MustParseAddr("fe80::1"),
		Manage:   true,
	}}
	if diff := cmp.Diff(want, got.Interfaces, cmpConfig...); diff != "" {
		t.Errorf("[[interface]] example (-want +got):\n%s", diff)
	}
}

func TestExampleConfigs(t *testing.T) {
	tests := []struct {
		file string
		want func(*Config)
	}{
		{
			file: "client.toml",
			want: func(c *Config) {
				c.Limits = Limits{Subflows: 4, AddAddrAccepted: 4}
				c.Endpoints.Flags = netlinkmptcp.FlagSubflow
				c.Interfaces = []Interface{
					{Match: "wwan*", Flags: flagsPtr(netlinkmptcp.FlagSubflow | netlinkmptcp.FlagBackup), Priority: -10, Manage: true},
					{Match: "eth2", Gateway4: netip.MustParseAddr("198.51.100.1"), Gateway6: netip.MustParseAddr("2001:db8:2::1"), Manage: true},
				}
			},
		},
		{
			file: "server.toml",
			want: func(c *Config) {
				c.Limits = Limits{Subflows: 4, AddAddrAccepted: 0}
				c.Endpoints.Flags = netlinkmptcp.FlagSignal
				c.Endpoints.Include = []string{"eth1", "eth2"}
				c.Interfaces = []Interface{
					{Match: "eth2", Gateway4: netip.MustParseAddr("198.18.1.1"), Gateway6: netip.MustParseAddr("2001:db8:4::1"), Manage: true},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, _ := parseConfigFile(t, tt.file)
			want := Default()
			want.Source = got.Source
			tt.want(want)
			if diff := cmp.Diff(want, got, cmpConfig...); diff != "" {
				t.Errorf("configs/%s (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}
