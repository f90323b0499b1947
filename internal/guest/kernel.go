package guest

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"

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

// SubflowFrom says whether the transfer's connection has an established
// subflow from a.
func SubflowFrom(tr *lab.Transfer, a netip.Addr) error {
	conns, err := sockdiag.ListMPTCP(nil)
	if err != nil {
		return err
	}
	local := tr.Conn.LocalAddr().String()
	var seen []string
	for _, c := range conns {
		if c.Local.String() != local {
			continue
		}
		for _, sf := range c.Subflows {
			if sf.State == sockdiag.StateEstablished && sf.Local.Addr() == a {
				return nil
			}
			seen = append(seen, fmt.Sprintf("%s->%s %s", sf.Local, sf.Remote, sf.State))
		}
	}
	return fmt.Errorf("subflows %v", seen)
}
