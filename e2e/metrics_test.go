package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/daemonmetrics"
	"github.com/mptcpgd/mptcpgd/pkg/metrics"
)

// metricsPort is the client daemon's HTTP listener, inside its namespace.
const metricsPort = 9477

// TestMetrics runs the seed's client with both metrics outputs on, under
// the unit's UMask=0077, and an MPTCP transfer over both uplinks: every
// output shows bytes over both interfaces, the textfile is readable by
// others, and all three outputs carry the same families. `mptcpgd top`
// prints plain lines about both uplinks when its output is not a terminal.
func TestMetrics(t *testing.T) {
	top := lab.NewTopology(t, lab.TopologyOptions{RateMbit: rate, Checksums: true})
	server := daemonlab.Start(t, top.Server, daemonlab.Options{Config: configPath(t, "server.toml")})
	clientConf, err := os.ReadFile(configPath(t, "client.toml"))
	if err != nil {
		t.Fatal(err)
	}
	textfile := filepath.Join(t.TempDir(), "mptcpgd.prom")
	conf := daemonlab.WriteConfig(t, string(clientConf)+fmt.Sprintf(
		"\n[metrics]\ntextfile = %q\ntextfile_interval = \"1s\"\nlisten = \"127.0.0.1:%d\"\n", textfile, metricsPort))
	old := syscall.Umask(0o077)
	client := daemonlab.Start(t, top.Client, daemonlab.Options{Config: conf})
	syscall.Umask(old)
	s := &seed{top: top, client: client, server: server}

	eth1, eth2 := top.Uplinks[0].Dev, top.Uplinks[1].Dev
	st := s.startStream(t, top.ServerAddr(lab.V4), 64<<20)
	st.waitSubflow("the join over "+eth2, top.Uplinks[1].Addr(lab.V4), top.ServerAddr(lab.V4))
	// Both uplinks carry bytes in the client's metrics while the transfer
	// runs (samples of live subflows).
	lab.WaitFor(t, 30*time.Second, "bytes over both uplinks in `mptcpgd metrics`", func() error {
		v := metricValues(t, runMetrics(t, client))
		for _, dev := range []string{eth1, eth2} {
			if v[sentKey(dev)] == 0 {
				return fmt.Errorf("no bytes sent over %s yet", dev)
			}
		}
		// The server's daemon sees what arrives over its uplink. Only
		// while the connection lives: its last bytes are lost when it
		// closes before the next sample, the documented bound.
		dev := top.ServerLinks[0].Dev
		if metricValues(t, runMetrics(t, server))[fmt.Sprintf("%s{interface=%s}", daemonmetrics.NameReceivedBytes, dev)] == 0 {
			return fmt.Errorf("no bytes received over the server's %s yet", dev)
		}
		return nil
	})
	st.wait()

	fromSocket := runMetrics(t, client)
	v := metricValues(t, fromSocket)
	for _, dev := range []string{eth1, eth2} {
		if v[sentKey(dev)] == 0 || v[fmt.Sprintf("%s{interface=%s}", daemonmetrics.NameCarrier, dev)] != 1 ||
			v[fmt.Sprintf("%s{interface=%s}", daemonmetrics.NameEndpoints, dev)] != 1 {
			t.Errorf("%s: sent %v bytes, carrier %v, endpoints %v; want bytes, carrier 1 and one endpoint\n%s", dev, v[sentKey(dev)],
				v[fmt.Sprintf("%s{interface=%s}", daemonmetrics.NameCarrier, dev)], v[fmt.Sprintf("%s{interface=%s}", daemonmetrics.NameEndpoints, dev)], fromSocket)
		}
	}
	if v[fmt.Sprintf("%s{interface=%s}", daemonmetrics.NameJoins, eth2)] < 1 {
		// The first line says where joins were counted and whether events
		// were lost: a summary of the run shows only that line.
		t.Errorf("no join counted over %s (%s):\n%s", eth2, valuesOf(v, daemonmetrics.NameJoins, daemonmetrics.Prefix+"event_losses_total"), fromSocket)
	}
	var fromFile []byte
	lab.WaitFor(t, 10*time.Second, "the textfile with the transfer's bytes", func() error {
		fi, err := os.Stat(textfile)
		if err != nil {
			return err
		}
		if fi.Mode().Perm() != 0o644 {
			return fmt.Errorf("mode %v, want 0644 (node_exporter reads it as another user)", fi.Mode())
		}
		if fromFile, err = os.ReadFile(textfile); err != nil {
			return err
		}
		if metricValues(t, fromFile)[sentKey(eth2)] == 0 {
			return fmt.Errorf("no bytes over %s in the textfile yet", eth2)
		}
		return nil
	})
	fromHTTP := scrape(t, top.Client)
	want := familyNames(t, fromSocket)
	for name, got := range map[string][]string{"textfile": familyNames(t, fromFile), "HTTP": familyNames(t, fromHTTP)} {
		if !slices.Equal(got, want) {
			t.Errorf("%s families %v, want those of mptcpgd metrics %v", name, got, want)
		}
	}
	if metricValues(t, fromHTTP)[sentKey(eth1)] == 0 {
		t.Errorf("the HTTP scrape counts no bytes over %s:\n%s", eth1, fromHTTP)
	}

	out, errOut, err := client.Run("top", "--count", "2")
	if err != nil {
		t.Fatalf("mptcpgd top: %v %s", err, errOut)
	}
	if strings.Contains(out, "\x1b") || strings.Count(out, "INTERFACE") != 2 {
		t.Errorf("top's output is not two plain frames:\n%s", out)
	}
	for _, dev := range []string{eth1, eth2} {
		if !slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool { return strings.HasPrefix(l, dev+" ") && strings.Contains(l, "active") }) {
			t.Errorf("top shows no active line for %s:\n%s", dev, out)
		}
	}
}

// valuesOf lists the samples of the families named, "name{labels}=value",
// in order.
func valuesOf(v map[string]float64, names ...string) string {
	var out []string
	for k, x := range v {
		for _, n := range names {
			if strings.HasPrefix(k, n+"{") {
				out = append(out, fmt.Sprintf("%s=%v", strings.TrimPrefix(k, daemonmetrics.Prefix), x))
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func sentKey(dev string) string {
	return fmt.Sprintf("%s{interface=%s}", daemonmetrics.NameSentBytes, dev)
}

func runMetrics(t *testing.T, d *daemonlab.Daemon) []byte {
	t.Helper()
	out, errOut, err := d.Run("metrics")
	if err != nil {
		t.Fatalf("mptcpgd metrics: %v %s", err, errOut)
	}
	return []byte(out)
}

// metricValues parses an exposition strictly into "name{k=v,...}" (labels
// in order) -> value.
func metricValues(t *testing.T, text []byte) map[string]float64 {
	t.Helper()
	fams, err := metrics.Parse(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, s := range f.Samples {
			var kv []string
			for k, v := range s.Labels {
				kv = append(kv, k+"="+v)
			}
			slices.Sort(kv)
			out[s.Name+"{"+strings.Join(kv, ",")+"}"] = s.Value
		}
	}
	return out
}

func familyNames(t *testing.T, text []byte) []string {
	t.Helper()
	fams, err := metrics.Parse(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	var out []string
	for _, f := range fams {
		out = append(out, f.Name)
	}
	return out
}

// scrape GETs /metrics from the daemon's listener inside ns.
func scrape(t *testing.T, ns *lab.NS) []byte {
	t.Helper()
	body, err := ns.ScrapeMetrics(metricsPort)
	if err != nil {
		t.Fatal(err)
	}
	return body
}
