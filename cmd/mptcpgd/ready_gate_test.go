package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
)

// READY=1 does not wait for an endpoint the gateway gate holds: eth2's
// gateway is FAILED and does not answer ARP, the gate would hold its
// endpoint for ten minutes, and the daemon still reports ready with eth1's
// endpoint in the kernel and eth2's waiting, as show says.
func TestReadyDoesNotWaitForAGatedEndpoint(t *testing.T) {
	c, peer := clientAndPeer(t)
	peer.IP("link", "set", "p2", "arp", "off")
	eventually(t, "eth2's gateway FAILED in the neighbour table", func() bool {
		_, _ = c.Exec("ping", "-4", "-c", "1", "-W", "1", "-I", "eth2", "198.51.100.1")
		return strings.Contains(c.IP("neigh", "show", "198.51.100.1", "dev", "eth2"), "FAILED")
	})
	d := daemonlab.Start(t, c, daemonlab.Options{Config: daemonlab.WriteConfig(t, "[rejoin]\ngateway_timeout = \"10m\"\n"), NoWait: true})
	d.WaitNotify("READY=1", 30*time.Second)
	eps := endpointShow(c)
	if !strings.Contains(eps, "192.0.2.2 id") || strings.Contains(eps, "198.51.100.2") {
		t.Errorf("endpoints at READY=1:\n%s\nwant eth1's only: eth2's waits for its gateway", eps)
	}
	why := "not listed"
	for _, a := range d.Show().Status.Addresses {
		if a.Addr.Addr.String() == "198.51.100.2" {
			why = a.Reason
		}
	}
	if !strings.Contains(why, "waiting for gateway 198.51.100.1 to answer ARP") {
		t.Errorf("show says of 198.51.100.2: %s; want it waiting for its gateway", why)
	}
}
