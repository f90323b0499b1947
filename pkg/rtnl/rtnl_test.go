package rtnl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/nlerr"
)

const testProto = 177

func dialIn(t *testing.T, ns *lab.NS) (*Conn, Config) {
	t.Helper()
	cfg := Config{NetNS: ns.FD(), Filter: Filter{Protocols: []uint8{testProto}}}
	c, err := Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, cfg
}

// twoHosts gives host "h" an uplink eth1 to "peer", with IPv4 and IPv6
// addresses and default routes in the main table.
func twoHosts(t *testing.T) (h, peer *lab.NS) {
	h, peer = lab.New(t, "h"), lab.New(t, "peer")
	lab.Veth(h, "eth1", peer, "p1")
	h.IP("addr", "add", "192.0.2.2/24", "dev", "eth1")
	h.IP("-6", "addr", "add", "2001:db8:1::2/64", "dev", "eth1", "nodad")
	peer.IP("addr", "add", "192.0.2.1/24", "dev", "p1")
	peer.IP("-6", "addr", "add", "2001:db8:1::1/64", "dev", "p1", "nodad")
	h.IP("route", "add", "default", "via", "192.0.2.1", "dev", "eth1", "metric", "100")
	h.IP("-6", "route", "add", "default", "via", "2001:db8:1::1", "dev", "eth1", "metric", "100")
	return h, peer
}

func TestDumpSeesLinksAddressesDefaultRoutes(t *testing.T) {
	h, _ := twoHosts(t)
	c, _ := dialIn(t, h)
	s, skipped, err := c.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 0 {
		t.Errorf("Dump skipped %d messages it could not decode", skipped)
	}
	eth1, ok := s.LinkByName("eth1")
	if !ok || !eth1.Carrier() {
		t.Fatalf("eth1 = %+v, %v; want a link with carrier", eth1, ok)
	}
	want4 := netip.MustParseAddr("192.0.2.2")
	a, ok := s.Addrs[netstate.AddrKey{IfIndex: eth1.Index, Addr: want4}]
	if !ok || a.Prefix != netip.MustParsePrefix("192.0.2.0/24") || a.Scope != netstate.ScopeUniverse {
		t.Errorf("address 192.0.2.2 on eth1 = %+v, %v", a, ok)
	}
	var defaults []string
	for _, r := range s.Routes {
		if r.IsDefault() && r.Table == 254 {
			defaults = append(defaults, r.String())
		}
		if !r.IsDefault() && r.Protocol != testProto {
			t.Errorf("route %s kept although it is neither default nor ours", r)
		}
	}
	if len(defaults) != 2 {
		t.Errorf("main-table default routes = %q, want the IPv4 and IPv6 ones", defaults)
	}
}

func TestRuleAndRouteWrites(t *testing.T) {
	h, _ := twoHosts(t)
	c, _ := dialIn(t, h)
	s, _, err := c.Dump()
	if err != nil {
		t.Fatal(err)
	}
	eth1, _ := s.LinkByName("eth1")
	for _, fam := range []struct {
		src, gw, net, def string
		ipflag            string
	}{
		{"192.0.2.2/32", "192.0.2.1", "192.0.2.0/24", "0.0.0.0/0", "-4"},
		{"2001:db8:1::2/128", "2001:db8:1::1", "2001:db8:1::/64", "::/0", "-6"},
	} {
		rule := netstate.Rule{Priority: 10000, Src: netip.MustParsePrefix(fam.src), Table: 10000 + uint32(eth1.Index), Protocol: testProto}
		connected := netstate.Route{Table: rule.Table, Protocol: testProto, Type: netstate.RouteTypeUnicast, Scope: netstate.ScopeLink, Priority: 1024,
			Dst: netip.MustParsePrefix(fam.net), NextHops: []netstate.NextHop{{IfIndex: eth1.Index}}}
		def := netstate.Route{Table: rule.Table, Protocol: testProto, Type: netstate.RouteTypeUnicast, Priority: 1024,
			Dst: netip.MustParsePrefix(fam.def), NextHops: []netstate.NextHop{{Gateway: netip.MustParseAddr(fam.gw), IfIndex: eth1.Index}}}
		if err := c.AddRule(rule); err != nil {
			t.Fatal(err)
		}
		if err := c.AddRule(rule); !errors.Is(err, nlerr.ErrExists) {
			t.Errorf("second AddRule(%s) = %v, want EEXIST", rule, err)
		}
		for _, r := range []netstate.Route{connected, def} {
			if err := c.AddRoute(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.AddRoute(def); !errors.Is(err, nlerr.ErrExists) {
			t.Errorf("second AddRoute(%s) = %v, want EEXIST", def, err)
		}
		if err := c.ReplaceRoute(def); err != nil {
			t.Errorf("ReplaceRoute(%s) = %v", def, err)
		}
		rules := h.IP(fam.ipflag, "rule", "show")
		wantRule := "from " + strings.TrimSuffix(strings.TrimSuffix(fam.src, "/32"), "/128") + " lookup " + itoa(rule.Table) + " proto 177"
		if !strings.Contains(rules, wantRule) {
			t.Errorf("ip rule show lacks %q:\n%s", wantRule, rules)
		}
		routes := h.IP(fam.ipflag, "route", "show", "table", itoa(rule.Table))
		if !strings.Contains(routes, "default via "+fam.gw+" dev eth1 proto 177") || !strings.Contains(routes, fam.net+" dev eth1 proto 177") {
			t.Errorf("table %d lacks our routes:\n%s", rule.Table, routes)
		}
		got, _, err := c.Dump()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := got.Rules[rule]; !ok {
			t.Errorf("Dump lacks rule %s; has %v", rule, got.Rules)
		}
		if r, ok := got.Routes[def.Key()]; !ok || !r.Equal(def) {
			t.Errorf("Dump has %s, want %s", r, def)
		}
		if err := c.DeleteRule(rule); err != nil {
			t.Error(err)
		}
		if err := c.DeleteRule(rule); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("second DeleteRule = %v, want not found", err)
		}
		for _, r := range []netstate.Route{connected, def} {
			if err := c.DeleteRoute(r); err != nil {
				t.Error(err)
			}
			if err := c.DeleteRoute(r); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("second DeleteRoute(%s) = %v, want not found", r, err)
			}
		}
	}
}

func TestDeleteLeavesForeignRuleAndRoute(t *testing.T) {
	h, _ := twoHosts(t)
	c, _ := dialIn(t, h)
	h.IP("rule", "add", "from", "192.0.2.2", "lookup", "10005", "priority", "10000")
	h.IP("route", "add", "default", "via", "192.0.2.1", "dev", "eth1", "table", "10005")
	rule := netstate.Rule{Priority: 10000, Src: netip.MustParsePrefix("192.0.2.2/32"), Table: 10005, Protocol: testProto}
	if err := c.DeleteRule(rule); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DeleteRule of a foreign rule = %v, want not found", err)
	}
	def := netstate.Route{Table: 10005, Protocol: testProto, Type: netstate.RouteTypeUnicast, Dst: netip.MustParsePrefix("0.0.0.0/0")}
	if err := c.DeleteRoute(def); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DeleteRoute of a foreign route = %v, want not found", err)
	}
	if !strings.Contains(h.IP("rule", "show"), "lookup 10005") || !strings.Contains(h.IP("route", "show", "table", "10005"), "default via 192.0.2.1") {
		t.Errorf("foreign rule or route was deleted")
	}
}

func TestWatchSeesChangesAndIgnoresOwnWrites(t *testing.T) {
	h, peer := twoHosts(t)
	c, cfg := dialIn(t, h)
	w, err := Watch(cfg, c.PID())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s, _, err := c.Dump()
	if err != nil {
		t.Fatal(err)
	}
	eth1, _ := s.LinkByName("eth1")

	own := netstate.Rule{Priority: 10000, Src: netip.MustParsePrefix("192.0.2.2/32"), Table: 10001, Protocol: testProto}
	if err := c.AddRule(own); err != nil {
		t.Fatal(err)
	}
	h.IP("addr", "add", "192.0.2.9/24", "dev", "eth1")
	peer.IP("link", "set", "p1", "down")
	h.IP("rule", "del", "from", "192.0.2.2", "lookup", "10001", "priority", "10000")

	var sawAddr, sawCarrierLoss, sawForeignRuleDelete bool
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for !(sawAddr && sawCarrierLoss && sawForeignRuleDelete) {
		updates, _, err := w.Receive(ctx)
		if err != nil {
			t.Fatalf("Receive: %v (addr %v, carrier loss %v, rule delete %v)", err, sawAddr, sawCarrierLoss, sawForeignRuleDelete)
		}
		for _, u := range updates {
			switch {
			case u.Kind == netstate.AddrUpdate && !u.Deleted && u.Addr.Addr == netip.MustParseAddr("192.0.2.9"):
				sawAddr = true
			case u.Kind == netstate.LinkUpdate && u.Link.Index == eth1.Index && !u.Link.Carrier():
				sawCarrierLoss = true
			case u.Kind == netstate.RuleUpdate && !u.Deleted:
				t.Errorf("got the echo of our own rule add: %+v", u)
			case u.Kind == netstate.RuleUpdate && u.Deleted && u.Rule == own:
				sawForeignRuleDelete = true
			}
		}
	}
}

// Notifications queued before a Receive come back from it together: a
// burst is decided on at once.
func TestWatchReceiveTakesEverythingQueued(t *testing.T) {
	h, _ := twoHosts(t)
	_, cfg := dialIn(t, h)
	w, err := Watch(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var batch strings.Builder
	for i := range 16 {
		fmt.Fprintf(&batch, "address add 198.18.0.%d/32 dev eth1\n", i+10)
	}
	file := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(file, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	h.IP("-batch", file)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	updates, _, err := w.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	added := 0
	for _, u := range updates {
		if u.Kind == netstate.AddrUpdate && !u.Deleted && netip.MustParsePrefix("198.18.0.0/24").Contains(u.Addr.Addr) {
			added++
		}
	}
	if added != 16 {
		t.Errorf("one Receive after 16 addresses were added brought %d of them (%d updates)", added, len(updates))
	}
}

func TestWatchReceiveStopsOnCancel(t *testing.T) {
	h, _ := twoHosts(t)
	_, cfg := dialIn(t, h)
	w, err := Watch(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := w.Receive(ctx)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("Receive after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive did not return after its context was cancelled")
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// A FAILED gateway entry, as an outage leaves it, is resolved again by
// Resolve, and a watcher that listens to neighbours sees it answer.
func TestNeighbourStateAndResolve(t *testing.T) {
	for _, tt := range []struct{ fam, gw string }{{"-4", "192.0.2.1"}, {"-6", "2001:db8:1::1"}} {
		t.Run(tt.gw, func(t *testing.T) {
			h, _ := twoHosts(t)
			c, cfg := dialIn(t, h)
			idx := linkIndex(t, c, "eth1")
			gw := netip.MustParseAddr(tt.gw)
			if _, ok, err := c.Neighbour(idx, gw); err != nil || ok {
				t.Fatalf("Neighbour before any traffic = ok %v, %v; want none", ok, err)
			}
			h.IP(tt.fam, "neigh", "replace", tt.gw, "dev", "eth1", "nud", "failed")
			if st, ok, err := c.Neighbour(idx, gw); err != nil || !ok || st != netstate.NeighFailed || st.Usable() {
				t.Fatalf("Neighbour = %v, %v, %v; want FAILED", st, ok, err)
			}
			w, err := Watch(cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := w.WatchNeighbours(true); err != nil {
				t.Fatal(err)
			}
			if err := c.Resolve(idx, gw); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				ups, _, err := w.Receive(ctx)
				if err != nil {
					t.Fatalf("no usable neighbour seen: %v", err)
				}
				if i := slices.IndexFunc(ups, func(u netstate.Update) bool {
					return u.Kind == netstate.NeighUpdate && u.Neigh.Addr == gw && u.Neigh.State.Usable()
				}); i >= 0 {
					break
				}
			}
			if st, _, _ := c.Neighbour(idx, gw); !st.Usable() {
				t.Errorf("after Resolve the gateway is %v", st)
			}
		})
	}
}

// TestReprobeRestartsAnUnresolvedEntry: an entry left INCOMPLETE by
// probes that went unanswered (here the peer drops them; the kernel's next
// probe is a minute away) is probed again at once by Reprobe, and a
// connection waiting on the entry is not failed by it but completes.
func TestReprobeRestartsAnUnresolvedEntry(t *testing.T) {
	for _, gw := range []string{"192.0.2.1", "2001:db8:1::1"} {
		t.Run(gw, func(t *testing.T) {
			h, peer := twoHosts(t)
			c, _ := dialIn(t, h)
			idx := linkIndex(t, c, "eth1")
			addr := netip.MustParseAddr(gw)
			h.Sysctl("net.ipv4.neigh.eth1.retrans_time_ms", "60000")
			h.Sysctl("net.ipv6.neigh.eth1.retrans_time_ms", "60000")
			ln, err := peer.ListenTCP("tcp", "[::]:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					conn.Close()
				}
			}()
			deaf := "table netdev mgdtest {\n chain in {\n  type filter hook ingress device p1 priority 0;\n" +
				"  ether type arp drop\n  icmpv6 type nd-neighbor-solicit drop\n }\n}\n"
			peer.MustExec("sh", "-c", "printf '"+deaf+"' | nft -f -")

			dialed := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				port := ln.Addr().(*net.TCPAddr).Port
				conn, err := h.DialTCP(ctx, "tcp", net.JoinHostPort(gw, strconv.Itoa(port)), netip.Addr{})
				if err == nil {
					conn.Close()
				}
				dialed <- err
			}()
			waitNeighbour(t, c, idx, addr, "INCOMPLETE", func(st netstate.NeighState) bool { return st == netstate.NeighIncomplete })
			// Restarted while the peer still drops the probes: the connection
			// keeps waiting.
			if err := c.Reprobe(idx, addr); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-dialed:
				t.Fatalf("the connection ended while its gateway was unresolved: %v", err)
			case <-time.After(200 * time.Millisecond):
			}
			peer.MustExec("nft", "delete", "table", "netdev", "mgdtest")
			if err := c.Reprobe(idx, addr); err != nil {
				t.Fatal(err)
			}
			waitNeighbour(t, c, idx, addr, "usable", netstate.NeighState.Usable)
			if err := <-dialed; err != nil {
				t.Errorf("the connection that waited on the entry: %v", err)
			}
		})
	}
}

// waitNeighbour waits up to 10 s (the kernel's own next probe is a minute
// away) for addr's entry to satisfy ok.
func waitNeighbour(t *testing.T, c *Conn, idx int, addr netip.Addr, what string, ok func(netstate.NeighState) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, found, err := c.Neighbour(idx, addr)
		if err != nil {
			t.Fatal(err)
		}
		if found && ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's entry is %v (found %v), want %s", addr, st, found, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func linkIndex(t *testing.T, c *Conn, name string) int {
	t.Helper()
	s, _, err := c.Dump()
	if err != nil {
		t.Fatal(err)
	}
	l, ok := s.LinkByName(name)
	if !ok {
		t.Fatalf("no link %s", name)
	}
	return l.Index
}
