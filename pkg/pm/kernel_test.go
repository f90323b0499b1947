package pm_test

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"

	"go.uber.org/zap/zaptest"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
	"github.com/mptcpgd/mptcpgd/pkg/rtnl"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

// engineInNS runs the path manager in-process with every socket opened in
// ns, as the daemon does in its own namespace.
type engineInNS struct {
	t      testing.TB
	ns     *lab.NS
	e      *pm.Engine
	cancel context.CancelFunc
	done   chan error
}

func startEngineIn(t testing.TB, ns *lab.NS, cfg *config.Config, statePath string) *engineInNS {
	t.Helper()
	fd := ns.FD()
	k, err := netlinkmptcp.Dial(&netlinkmptcp.Config{NetNS: fd})
	if err != nil {
		t.Fatal(err)
	}
	rcfg := rtnl.Config{NetNS: fd, Filter: rtnl.Filter{Protocols: []uint8{cfg.Routing.Protocol}}}
	rt, err := rtnl.Dial(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := rtnl.Watch(rcfg, rt.PID())
	if err != nil {
		t.Fatal(err)
	}
	log := logging.NewLogger(zaptest.NewLogger(t).Core())
	if _, bench := t.(*testing.B); bench {
		log = logging.Nop()
	}
	e, err := pm.New(pm.Options{Config: cfg, Log: log, MPTCP: k, Routing: rt, Network: rt, Watcher: w,
		Store: statefile.File{Path: statePath}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &engineInNS{t: t, ns: ns, e: e, cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- e.Run(ctx)
		k.Close()
		rt.Close()
		w.Close()
	}()
	t.Cleanup(r.stop)
	select {
	case <-e.Ready():
	case err := <-r.done:
		t.Fatalf("engine stopped before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("engine not ready after 20s")
	}
	return r
}

func (r *engineInNS) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	if err := <-r.done; err != nil {
		r.t.Errorf("engine: %v", err)
	}
}

func parse(t testing.TB, text string) *config.Config {
	t.Helper()
	c, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var endpointLine = regexp.MustCompile(`^(\S+) (?:port \d+ )?id (\d+) (.*?)(?: dev (\S+))?\s*$`)

// endpoints reads `ip mptcp endpoint show` in ns as "ADDR FLAGS dev DEV"
// strings, sorted, and the ids by address.
func endpoints(t *testing.T, ns *lab.NS) ([]string, map[string]string) {
	t.Helper()
	var out []string
	ids := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(ns.IP("mptcp", "endpoint", "show")), "\n") {
		if line == "" {
			continue
		}
		m := endpointLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("cannot parse endpoint line %q", line)
		}
		s := m[1] + " " + strings.TrimSpace(m[3])
		if m[4] != "" {
			s += " dev " + m[4]
		}
		out = append(out, s)
		ids[m[1]] = m[2]
	}
	slices.Sort(out)
	return out, ids
}

// ourRules lists `ip rule` lines carrying our protocol, normalised to
// "from ADDR lookup TABLE".
func ourRules(ns *lab.NS) []string {
	var out []string
	for _, fam := range []string{"-4", "-6"} {
		for _, line := range strings.Split(ns.IP(fam, "rule", "show"), "\n") {
			if strings.Contains(line, "proto 177") {
				f := strings.Fields(line)
				out = append(out, strings.Join(f[1:5], " "))
			}
		}
	}
	slices.Sort(out)
	return out
}

// eventually polls cond (which returns what it saw) until it is true; the
// bound only catches a hang, nothing is measured.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	eventuallyOr(t, what, cond, nil)
}

// eventuallyOr is eventually, and a timeout also shows diagnose's account
// of what the kernel holds (taken once, when the wait has failed).
func eventuallyOr(t *testing.T, what string, cond func() (bool, string), diagnose func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if diagnose != nil {
				saw += "\n" + diagnose()
			}
			t.Fatalf("timed out waiting for %s; saw:\n%s", what, saw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantEndpoints(t *testing.T, ns *lab.NS, what string, want ...string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	eventually(t, what, func() (bool, string) {
		got, _ := endpoints(t, ns)
		return slices.Equal(got, want), strings.Join(got, "\n")
	})
}

func wantRules(t *testing.T, ns *lab.NS, what string, want ...string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	eventually(t, what, func() (bool, string) {
		got := ourRules(ns)
		return slices.Equal(got, want), strings.Join(got, "\n")
	})
}

func ifindex(t testing.TB, ns *lab.NS, dev string) int {
	t.Helper()
	var idx int
	out := ns.IP("-o", "link", "show", "dev", dev)
	if _, err := fmt.Sscanf(out, "%d:", &idx); err != nil {
		t.Fatalf("ifindex of %s from %q: %v", dev, out, err)
	}
	return idx
}

func TestKernelAddressesCarrierAndRestart(t *testing.T) {
	top := lab.NewTopology(t, lab.TopologyOptions{Variant: lab.DHCP, IPv6: true})
	c := top.Client
	state := filepath.Join(t.TempDir(), "state.json")
	eng := startEngineIn(t, c, parse(t, ""), state)
	t1, t2 := 10000+ifindex(t, c, "eth1"), 10000+ifindex(t, c, "eth2")

	all := []string{
		"192.0.2.2 subflow dev eth1", "2001:db8:1::2 subflow dev eth1",
		"198.51.100.2 subflow dev eth2", "2001:db8:2::2 subflow dev eth2",
	}
	wantEndpoints(t, c, "an endpoint per uplink address, bound to its device", all...)
	wantRules(t, c, "a source rule per endpoint",
		fmt.Sprintf("from 192.0.2.2 lookup %d", t1), fmt.Sprintf("from 2001:db8:1::2 lookup %d", t1),
		fmt.Sprintf("from 198.51.100.2 lookup %d", t2), fmt.Sprintf("from 2001:db8:2::2 lookup %d", t2))
	if lim := c.IP("mptcp", "limits", "show"); !strings.Contains(lim, "add_addr_accepted 4") || !strings.Contains(lim, "subflows 4") {
		t.Errorf("limits = %q, want the configured 4 and 4", lim)
	}

	c.IP("addr", "add", "192.0.2.9/24", "dev", "eth1")
	wantEndpoints(t, c, "a new address gets an endpoint", append(slices.Clone(all), "192.0.2.9 subflow dev eth1")...)
	c.IP("addr", "del", "192.0.2.9/24", "dev", "eth1")
	wantEndpoints(t, c, "a removed address loses its endpoint", all...)

	top.CablePull(1)
	wantEndpoints(t, c, "carrier loss on eth2 withdraws its endpoints", "192.0.2.2 subflow dev eth1", "2001:db8:1::2 subflow dev eth1")
	wantRules(t, c, "carrier loss on eth2 withdraws its rules",
		fmt.Sprintf("from 192.0.2.2 lookup %d", t1), fmt.Sprintf("from 2001:db8:1::2 lookup %d", t1))
	top.CablePlug(1)
	wantEndpoints(t, c, "carrier back restores eth2's endpoints", all...)

	_, before := endpoints(t, c)
	eng.stop()
	startEngineIn(t, c, parse(t, ""), state)
	wantEndpoints(t, c, "the same endpoints after a restart", all...)
	if _, after := endpoints(t, c); !maps.Equal(before, after) {
		t.Errorf("endpoint ids changed across a restart: %v -> %v", before, after)
	}
}

func TestKernelHotplugRenameAndRepair(t *testing.T) {
	top := lab.NewTopology(t, lab.TopologyOptions{Variant: lab.DHCP})
	c := top.Client
	startEngineIn(t, c, parse(t, "[daemon]\nresync_interval = \"1s\"\n"), filepath.Join(t.TempDir(), "state.json"))
	base := []string{"192.0.2.2 subflow dev eth1", "198.51.100.2 subflow dev eth2"}
	wantEndpoints(t, c, "start", base...)

	top.AddUplink(t)
	wantEndpoints(t, c, "a hot-plugged uplink gets its endpoint", append(slices.Clone(base), "198.18.0.2 subflow dev eth3")...)

	c.IP("link", "set", "eth3", "down")
	c.IP("link", "set", "eth3", "name", "veth3")
	c.IP("link", "set", "veth3", "up")
	wantEndpoints(t, c, "renamed to an excluded name, it is left alone", base...)
	c.IP("link", "set", "veth3", "down")
	c.IP("link", "set", "veth3", "name", "eth3")
	c.IP("link", "set", "eth3", "up")
	c.IP("addr", "replace", "198.18.0.2/24", "dev", "eth3")
	wantEndpoints(t, c, "renamed back, it is managed again", append(slices.Clone(base), "198.18.0.2 subflow dev eth3")...)
	c.IP("link", "del", "eth3")
	wantEndpoints(t, c, "a deleted link loses its endpoint", base...)

	c.IP("mptcp", "endpoint", "flush")
	wantEndpoints(t, c, "endpoints flushed behind our back come back at the safety-net resync", base...)

	t1 := 10000 + ifindex(t, c, "eth1")
	c.IP("rule", "del", "from", "192.0.2.2", "lookup", fmt.Sprint(t1))
	wantRules(t, c, "a rule deleted behind our back is restored",
		fmt.Sprintf("from 192.0.2.2 lookup %d", t1), fmt.Sprintf("from 198.51.100.2 lookup %d", 10000+ifindex(t, c, "eth2")))

	c.IP("route", "del", "default", "table", fmt.Sprint(t1))
	eventually(t, "a route deleted behind our back is restored", func() (bool, string) {
		out := c.IP("route", "show", "table", fmt.Sprint(t1))
		return strings.Contains(out, "default via 192.0.2.1 dev eth1 proto 177"), out
	})
}

func TestKernelTransferSurvivesCarrierLoss(t *testing.T) {
	top := lab.NewTopology(t, lab.TopologyOptions{Variant: lab.Static, RateMbit: 50, Checksums: true})
	c, s := top.Client, top.Server
	s.IP("mptcp", "limits", "set", "subflow", "4", "add_addr_accepted", "4")
	startEngineIn(t, c, parse(t, "[[interface]]\nmatch = \"eth2\"\ngateway4 = \"198.51.100.1\"\n"), filepath.Join(t.TempDir(), "state.json"))
	eth2 := top.Uplinks[1].Addr4

	const size = 48 << 20 // ~4 s over two 50 Mbit/s uplinks
	tr := lab.StartTransfer(t, top, top.ServerAddr(lab.V4), size)
	conn := tr.Conn
	hasSubflowFrom := func(a netip.Addr) func() (bool, string) {
		return func() (bool, string) {
			sfs, err := lab.MPTCPSubflows(conn)
			if err != nil {
				return false, err.Error()
			}
			var seen []string
			for _, sf := range sfs {
				seen = append(seen, sf.String())
				if sf.Local.Addr().Unmap() == a {
					return true, ""
				}
			}
			return false, strings.Join(seen, "\n")
		}
	}
	eventuallyOr(t, "a subflow joined over eth2", hasSubflowFrom(eth2), tr.Diagnose)
	top.CablePull(1)
	wantEndpoints(t, c, "eth2 withdrawn on carrier loss", "192.0.2.2 subflow dev eth1")
	time.Sleep(300 * time.Millisecond)
	top.CablePlug(1)
	eventuallyOr(t, "the same connection regains a subflow over eth2", hasSubflowFrom(eth2), tr.Diagnose)

	res := tr.Wait(t)
	if res.WriteErr != nil {
		t.Fatalf("writing the stream: %v", res.WriteErr)
	}
	lab.CheckStream(t, res.Report, c, s)
}
