package guest

import (
	"net/netip"
	"testing"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// Endpoints are the kernel's MPTCP endpoints in the guest, by address.
func Endpoints(t testing.TB) map[netip.Addr]netlinkmptcp.Endpoint {
	t.Helper()
	c, err := netlinkmptcp.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eps, err := c.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	out := map[netip.Addr]netlinkmptcp.Endpoint{}
	for _, e := range eps {
		out[e.Addr] = e
	}
	return out
}

// Limits are the kernel's MPTCP limits in the guest.
func Limits(t testing.TB) netlinkmptcp.Limits {
	t.Helper()
	c, err := netlinkmptcp.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l, err := c.Limits()
	if err != nil {
		t.Fatal(err)
	}
	return l
}
