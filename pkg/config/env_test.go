package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// A protocol number is ours only if no program owns it: the routing
// programs' numbers are refused by Parse, and the names iproute2 gives on
// this host by Validate, with the file, line and key.
func TestProtocolOwnedByAnotherProgram(t *testing.T) {
	if _, err := Parse("test.toml", []byte("[routing]\nprotocol = 16\n")); err == nil || !strings.Contains(err.Error(), "test.toml:2: routing.protocol: 16 is dhcp's") {
		t.Errorf("protocol 16: %v, want it refused as dhcp's", err)
	}
	dir := t.TempDir()
	protos := filepath.Join(dir, "rt_protos")
	if err := os.MkdirAll(protos+".d", 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(protos, []byte("# comment\n0\tunspec\n16\tdhcp\n"), 0o644)
	os.WriteFile(filepath.Join(protos+".d", "local.conf"), []byte("200 frr-static # ours? no\n177 mptcpgd\n"), 0o644)
	names, err := RouteProtocols([]string{protos, filepath.Join(dir, "missing")})
	if err != nil || names[200] != "frr-static" || names[177] != "mptcpgd" || names[16] != "dhcp" {
		t.Fatalf("RouteProtocols = %v, %v", names, err)
	}
	cfg, err := Parse("test.toml", []byte("\n[routing]\nprotocol = 200\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(Env{Protocols: names}); err == nil || !strings.Contains(err.Error(), `test.toml:3: routing.protocol: 200 is "frr-static"`) {
		t.Errorf("Validate of a named protocol: %v", err)
	}
	if err := Default().Validate(Env{Protocols: names}); err != nil {
		t.Errorf("our own name refused: %v", err)
	}
}

func TestValidateChecksFlagsAgainstTheKernel(t *testing.T) {
	cfg, err := Parse("test.toml", []byte("[[interface]]\nmatch = \"eth1\"\nflags = [\"subflow\", \"laminar\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	old := func(f netlinkmptcp.Flags) error {
		if f&netlinkmptcp.FlagLaminar != 0 {
			return errors.New("endpoint flag laminar needs Linux 6.18 or later; this kernel is 6.1")
		}
		return nil
	}
	if err := cfg.Validate(Env{CheckFlags: old}); err == nil || !strings.Contains(err.Error(), "test.toml:3: interface[1].flags: endpoint flag laminar needs Linux 6.18") {
		t.Errorf("Validate on an older kernel: %v", err)
	}
}

func TestRejoinAndOnLinkKeys(t *testing.T) {
	for doc, want := range map[string]string{
		"[rejoin]\njoin_timeout = \"0s\"\n":                `test.toml:2: rejoin.join_timeout: "0s" is out of range (1s..2m0s)`,
		"[rejoin]\ngateway_timeout = \"soon\"\n":           `test.toml:2: rejoin.gateway_timeout: "soon" is not a duration`,
		"[[interface]]\nmatch = \"eth1\"\nonlink = true\n": "test.toml:3: interface[1].onlink: applies to configured gateways",
	} {
		if _, err := Parse("test.toml", []byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", doc, err, want)
		}
	}
	cfg, err := Parse("test.toml", []byte("[rejoin]\ngateway_timeout = \"0s\"\nretry_max = \"10s\"\n[[interface]]\nmatch = \"eth1\"\ngateway4 = \"203.0.113.1\"\nonlink = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rejoin.GatewayTimeout != 0 || cfg.Rejoin.RetryMax.Seconds() != 10 || !cfg.Interface("eth1").OnLink {
		t.Errorf("parsed %+v, policy %+v", cfg.Rejoin, cfg.Interface("eth1"))
	}
}

func TestNetworkManagerKey(t *testing.T) {
	if _, err := Parse("test.toml", []byte("[networkmanager]\nmptcp_devices = \"fight\"\n")); err == nil ||
		err.Error() != `test.toml:2: networkmanager.mptcp_devices: unknown value "fight" (want "leave" or "manage")` {
		t.Errorf("bad value: got %v", err)
	}
	if !Default().LeaveToNetworkManager() {
		t.Error("the default does not leave NetworkManager's devices to it")
	}
	cfg, err := Parse("test.toml", []byte("[networkmanager]\nmptcp_devices = \"manage\"\n"))
	if err != nil || cfg.LeaveToNetworkManager() {
		t.Errorf("mptcp_devices = \"manage\": %v, leave %v", err, err == nil && cfg.LeaveToNetworkManager())
	}
}
