package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
)

// TestEndpointsBackAfterMPTCPReenabled (issue 11): MPTCP switched off in
// the namespace while the daemon runs, the endpoint table flushed and an
// address added meanwhile: once net.mptcp.enabled is 1 again, the kernel
// holds our endpoints, the new address's included, and show says MPTCP is
// on.
func TestEndpointsBackAfterMPTCPReenabled(t *testing.T) {
	c := client(t)
	d := daemonlab.Start(t, c, daemonlab.Options{Config: daemonlab.WriteConfig(t, "[daemon]\nresync_interval = \"1s\"\n")})
	addrs := func() []string {
		var out []string
		for _, l := range strings.Split(endpointShow(c), "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				out = append(out, f[0])
			}
		}
		slices.Sort(out)
		return out
	}
	if got := addrs(); !slices.Equal(got, []string{"192.0.2.2", "198.51.100.2"}) {
		t.Fatalf("endpoints at start: %v", got)
	}

	c.Sysctl("net.mptcp.enabled", "0")
	eventually(t, "show saying MPTCP is off", func() bool { return d.Show().Status.Disabled != "" })
	c.IP("mptcp", "endpoint", "flush")
	c.IP("addr", "add", "192.0.2.9/24", "dev", "eth1")

	c.Sysctl("net.mptcp.enabled", "1")
	eventually(t, "show saying MPTCP is on again", func() bool { return d.Show().Status.Disabled == "" })
	want := []string{"192.0.2.2", "192.0.2.9", "198.51.100.2"}
	eventually(t, "our endpoints in the kernel again", func() bool { return slices.Equal(addrs(), want) })
	for _, ep := range d.Show().Status.Endpoints {
		if ep.Owner != pm.OwnerOurs {
			t.Errorf("endpoint %s is %v after MPTCP came back, want ours", ep.Addr, ep.Owner)
		}
	}
}
