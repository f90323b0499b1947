package pm

import (
	"testing"
	"time"
)

// An interface NetworkManager manages MPTCP on is left to it, unless the
// configuration says to manage it anyway; one the configuration does not
// manage stays unmanaged for its own reason.
func TestDecideLeavesToNetworkManager(t *testing.T) {
	left := map[string]string{
		"eth1":    "left to NetworkManager: profile 'wired1' has mptcp-flags enabled,subflow",
		"docker0": "left to NetworkManager: profile 'br' has mptcp-flags enabled,subflow",
	}
	tests := []struct {
		name       string
		config     string
		left       map[string]string
		eth1Policy string
		eth1       bool
	}{
		{"nothing left", "", nil, `included by "*"`, true},
		{"left by default", "", left, left["eth1"], false},
		{"manage anyway", "[networkmanager]\nmptcp_devices = \"manage\"\n", left, `included by "*"`, true},
		{"manage = false beats it", "[[interface]]\nmatch = \"eth1\"\nmanage = false\n", left, "manage = false in interface[1]", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(Input{Config: parseConfig(t, tt.config), Net: twoUplinks().s, Now: time.Now(), Left: tt.left})
			for _, st := range d.Interfaces {
				switch st.Link.Name {
				case "eth1":
					if st.Managed != tt.eth1 || st.Policy != tt.eth1Policy {
						t.Errorf("eth1: managed %v (%s), want %v (%s)", st.Managed, st.Policy, tt.eth1, tt.eth1Policy)
					}
				case "docker0":
					if st.Managed || st.Policy != `excluded by "docker*"` {
						t.Errorf("docker0: managed %v (%s), want the configuration's exclusion", st.Managed, st.Policy)
					}
				}
			}
			var onEth1 bool
			for _, e := range d.Endpoints {
				onEth1 = onEth1 || e.IfName == "eth1"
			}
			if onEth1 != tt.eth1 {
				t.Errorf("endpoint on eth1: %v, want %v (endpoints %v)", onEth1, tt.eth1, d.Endpoints)
			}
		})
	}
}
