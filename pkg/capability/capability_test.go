package capability

import (
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

func TestNetAdmin(t *testing.T) {
	lab.Require(t) // root: CAP_NET_ADMIN, then another uid: none
	if ok, err := NetAdmin(); !ok || err != nil {
		t.Errorf("NetAdmin() as root = %v, %v; want true", ok, err)
	}
	var ok bool
	var err error
	lab.AsUser(t, 65534, func() { ok, err = NetAdmin() })
	if ok || err != nil {
		t.Errorf("NetAdmin() as uid 65534 = %v, %v; want false", ok, err)
	}
}
