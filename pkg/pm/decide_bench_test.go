package pm

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkDecide64x4 is make bench's scale case: 64 interfaces with 4
// addresses each and a default route each, decided once.
func BenchmarkDecide64x4(b *testing.B) {
	cfg := parseConfig(b, "")
	n := newNet()
	for i := 2; i < 66; i++ {
		n.link(i, fmt.Sprintf("eth%d", i), up)
		for j := range 2 {
			n.addr(i, fmt.Sprintf("198.18.%d.%d/24", i, j+2), 0)
			n.addr(i, fmt.Sprintf("2001:db8:%x::%d/64", i, j+2), 0)
		}
		n.defaultRoute(i, fmt.Sprintf("198.18.%d.1", i), 16)
	}
	in := Input{Config: cfg, Net: n.s, Now: time.Now(), GatewayWait: 3 * time.Second}
	b.ReportAllocs()
	for b.Loop() {
		Decide(in)
	}
}

// BenchmarkDecideTwoUplinks is the common client: two uplinks, an IPv4 and
// an IPv6 address each, with default routes.
func BenchmarkDecideTwoUplinks(b *testing.B) {
	cfg := parseConfig(b, "")
	n := twoUplinks().addr(2, "2001:db8:1::2/64", 0).addr(3, "2001:db8:2::2/64", 0).
		defaultRoute(2, "192.0.2.1", 16).defaultRoute(3, "198.51.100.1", 16)
	in := Input{Config: cfg, Net: n.s, Now: time.Now(), GatewayWait: 3 * time.Second}
	b.ReportAllocs()
	for b.Loop() {
		Decide(in)
	}
}
