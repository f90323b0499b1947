package netstate

import (
	"net/netip"
	"testing"
)

func TestApplyLinkDeletionTakesAddressesAndRoutes(t *testing.T) {
	s := New()
	eth1 := Link{Index: 2, Name: "eth1", Flags: LinkUp | LinkRunning}
	eth2 := Link{Index: 3, Name: "eth2", Flags: LinkUp | LinkRunning}
	a1 := Addr{IfIndex: 2, Addr: netip.MustParseAddr("192.0.2.2"), Prefix: netip.MustParsePrefix("192.0.2.2/24")}
	a2 := Addr{IfIndex: 3, Addr: netip.MustParseAddr("198.51.100.2"), Prefix: netip.MustParsePrefix("198.51.100.2/24")}
	onlyEth1 := Route{Table: 254, Dst: netip.MustParsePrefix("0.0.0.0/0"), NextHops: []NextHop{{IfIndex: 2}}}
	multipath := Route{Table: 100, Dst: netip.MustParsePrefix("0.0.0.0/0"), NextHops: []NextHop{{IfIndex: 2}, {IfIndex: 3}}}
	for _, u := range []Update{
		{Kind: LinkUpdate, Link: eth1}, {Kind: LinkUpdate, Link: eth2},
		{Kind: AddrUpdate, Addr: a1}, {Kind: AddrUpdate, Addr: a2},
		{Kind: RouteUpdate, Route: onlyEth1}, {Kind: RouteUpdate, Route: multipath},
	} {
		s.Apply(u)
	}
	c := s.Clone()
	s.Apply(Update{Kind: LinkUpdate, Deleted: true, Link: eth1})
	if _, ok := s.Links[2]; ok {
		t.Error("deleted link still there")
	}
	if _, ok := s.Addrs[a1.Key()]; ok {
		t.Error("the deleted link's address is still there")
	}
	if _, ok := s.Addrs[a2.Key()]; !ok {
		t.Error("another link's address went with it")
	}
	if _, ok := s.Routes[onlyEth1.Key()]; ok {
		t.Error("a route only through the deleted link is still there")
	}
	if _, ok := s.Routes[multipath.Key()]; !ok {
		t.Error("a multipath route that also uses another link went")
	}
	if len(c.Links) != 2 || len(c.Addrs) != 2 || len(c.Routes) != 2 {
		t.Error("Clone shares state with the original")
	}
}

func TestApplyLinkDownFlushesItsRoutes(t *testing.T) {
	s := New()
	eth1 := Link{Index: 2, Name: "eth1", Flags: LinkUp | LinkRunning}
	eth2 := Link{Index: 3, Name: "eth2", Flags: LinkUp | LinkRunning}
	onlyEth1 := Route{Table: 254, Dst: netip.MustParsePrefix("0.0.0.0/0"), NextHops: []NextHop{{IfIndex: 2}}}
	viaEth2 := Route{Table: 100, Dst: netip.MustParsePrefix("0.0.0.0/0"), NextHops: []NextHop{{IfIndex: 3}}}
	for _, u := range []Update{
		{Kind: LinkUpdate, Link: eth1}, {Kind: LinkUpdate, Link: eth2},
		{Kind: RouteUpdate, Route: onlyEth1}, {Kind: RouteUpdate, Route: viaEth2},
	} {
		s.Apply(u)
	}
	noCarrier := eth1
	noCarrier.Flags = LinkUp
	s.Apply(Update{Kind: LinkUpdate, Link: noCarrier})
	if _, ok := s.Routes[onlyEth1.Key()]; !ok {
		t.Error("a carrier loss dropped the link's routes; only taking it down does")
	}
	down := eth1
	down.Flags = 0
	s.Apply(Update{Kind: LinkUpdate, Link: down})
	if _, ok := s.Routes[onlyEth1.Key()]; ok {
		t.Error("a route through a link taken down is still there")
	}
	if _, ok := s.Routes[viaEth2.Key()]; !ok {
		t.Error("another link's route went with it")
	}
}

func TestCarrierAndTemporary(t *testing.T) {
	for _, tt := range []struct {
		flags LinkFlags
		want  bool
	}{
		{LinkUp | LinkRunning, true},
		{LinkUp, false},
		{LinkRunning, false},
	} {
		if got := (Link{Flags: tt.flags}).Carrier(); got != tt.want {
			t.Errorf("Carrier(%#x) = %v, want %v", tt.flags, got, tt.want)
		}
	}
	v4 := Addr{Addr: netip.MustParseAddr("192.0.2.2"), Flags: AddrTemporary}
	v6 := Addr{Addr: netip.MustParseAddr("2001:db8::2"), Flags: AddrTemporary}
	if v4.Temporary() || !v6.Temporary() {
		t.Errorf("Temporary: IPv4 (secondary bit) %v, IPv6 %v; want false, true", v4.Temporary(), v6.Temporary())
	}
}
