package pm

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/netstate"
)

// NetworkManager sets a device's address before its D-Bus view says it
// manages MPTCP there: a new address waits for a look at NetworkManager
// that began after it appeared.
func TestDecideNewAddressWaitsForNetworkManager(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	net := newNet().link(2, "eth1", up).addr(2, "192.0.2.2/24", 0).defaultRoute(2, "192.0.2.1", 16).s
	key := netstate.AddrKey{IfIndex: 2, Addr: netip.MustParseAddr("192.0.2.2")}
	for _, tt := range []struct {
		name     string
		seen     map[netstate.AddrKey]time.Time
		asOf     time.Time
		want     string
		waiting  bool
		wakeUpAt time.Time
	}{
		{"NetworkManager does not run: at once", map[netstate.AddrKey]time.Time{key: now}, time.Time{}, "managed", false, now.Add(3 * time.Second)},
		{"present at start: at once", nil, now, "managed", false, time.Time{}},
		{"appeared before the last look began: at once", map[netstate.AddrKey]time.Time{key: now.Add(-time.Second)}, now.Add(-500 * time.Millisecond), "managed", false, now.Add(2 * time.Second)},
		{"appeared after the last look began: waits", map[netstate.AddrKey]time.Time{key: now.Add(-time.Second)}, now.Add(-2 * time.Second),
			"waiting for NetworkManager to say whether it manages eth1", true, now.Add(time.Second)},
		{"appeared as the look began: waits", map[netstate.AddrKey]time.Time{key: now}, now,
			"waiting for NetworkManager", true, now.Add(NetworkManagerWait)},
		{"no look came within the wait: at once", map[netstate.AddrKey]time.Time{key: now.Add(-NetworkManagerWait)}, now.Add(-time.Hour), "managed", false, now.Add(time.Second)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Config: parseConfig(t, ""), Net: net, Now: now, FirstSeen: tt.seen, GatewayWait: 3 * time.Second, LeftAsOf: tt.asOf}
			d := Decide(in)
			if got := reasons(d)["192.0.2.2"]; !strings.Contains(got, tt.want) {
				t.Errorf("192.0.2.2: %q, want %q", got, tt.want)
			}
			if d.WaitingForNetworkManager != tt.waiting {
				t.Errorf("WaitingForNetworkManager = %v, want %v", d.WaitingForNetworkManager, tt.waiting)
			}
			if got := WaitingUntil(in); !got.Equal(tt.wakeUpAt) {
				t.Errorf("WaitingUntil = %v, want %v", got, tt.wakeUpAt)
			}
		})
	}
}

// The engine holds a new address while NetworkManager runs, asks for a look
// at it, and acts on what the look says: the endpoint when NetworkManager
// leaves the device alone, nothing (not even a moment) when it manages it.
func TestEngineAsksNetworkManagerBeforeANewAddress(t *testing.T) {
	for _, nmManages := range []bool{false, true} {
		k := newFakeKernel(clientNet())
		asks := make(chan struct{}, 16)
		h := startEngine(t, parseConfig(t, ""), k, &memStore{}, func(o *Options) {
			o.LeftAsOf = o.Clock.Now()
			o.AskNetworkManager = func() { asks <- struct{}{} }
		})
		h.clock.Advance(time.Millisecond)
		l := netstate.Link{Index: 4, Name: "eth3", Flags: up}
		a := netstate.Addr{IfIndex: 4, Addr: netip.MustParseAddr("198.18.0.2"), Prefix: netip.MustParsePrefix("198.18.0.2/24")}
		r := netstate.Route{Table: 254, Protocol: 16, Type: netstate.RouteTypeUnicast, Dst: netip.MustParsePrefix("0.0.0.0/0"), Priority: 300,
			NextHops: []netstate.NextHop{{Gateway: netip.MustParseAddr("198.18.0.1"), IfIndex: 4}}}
		h.w.send(k.change(netstate.Update{Kind: netstate.LinkUpdate, Link: l}), k.change(netstate.Update{Kind: netstate.RouteUpdate, Route: r}),
			k.change(netstate.Update{Kind: netstate.AddrUpdate, Addr: a}))
		h.waitStatus("the new address waiting for NetworkManager", func(st Status) bool {
			return slices.ContainsFunc(st.Addresses, func(as AddressStatus) bool {
				return as.Addr.Addr == a.Addr && strings.Contains(as.Reason, "waiting for NetworkManager to say whether it manages eth3")
			})
		})
		select {
		case <-asks:
		default:
			t.Fatal("the engine held the address without asking for a look at NetworkManager")
		}
		if _, _, log := k.snapshot(); slices.ContainsFunc(log, func(s string) bool { return strings.Contains(s, "198.18.0.2") }) {
			t.Fatalf("wrote for the address before NetworkManager was asked: %v", log)
		}

		left := map[string]string{}
		if nmManages {
			left["eth3"] = "left to NetworkManager: profile 'wired3' takes NetworkManager's default mptcp-flags enabled,subflow (activating)"
		}
		// A look that began after the address appeared.
		h.clock.Advance(time.Millisecond)
		if err := h.e.LeaveTo(context.Background(), left, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if !nmManages {
			h.waitFor("the endpoint once NetworkManager said it leaves eth3 alone", hasAddrs("192.0.2.2", "198.51.100.2", "198.18.0.2"))
			continue
		}
		h.waitStatus("eth3 left to NetworkManager", func(st Status) bool {
			return slices.ContainsFunc(st.Addresses, func(as AddressStatus) bool {
				return as.Addr.Addr == a.Addr && strings.HasPrefix(as.Reason, "left to NetworkManager")
			})
		})
		h.clock.Advance(time.Minute)
		h.settle()
		if _, _, log := k.snapshot(); slices.ContainsFunc(log, func(s string) bool { return strings.Contains(s, "198.18.0.2") }) {
			t.Errorf("wrote for an address of a device NetworkManager manages MPTCP on: %v", log)
		}
	}
}
