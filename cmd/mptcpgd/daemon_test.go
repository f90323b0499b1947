package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// client is a namespace with two uplinks (eth1, eth2) to a peer, each with
// an address and a default route, and a veth that the defaults exclude.
func client(t *testing.T) *lab.NS {
	t.Helper()
	c, _ := clientAndPeer(t)
	return c
}

// clientAndPeer is client, with the peer namespace at the other end of its
// uplinks (p1, p2, p3).
func clientAndPeer(t *testing.T) (*lab.NS, *lab.NS) {
	t.Helper()
	c, peer := lab.New(t, "client"), lab.New(t, "peer")
	lab.Veth(c, "eth1", peer, "p1")
	lab.Veth(c, "eth2", peer, "p2")
	lab.Veth(c, "veth0", peer, "p3")
	c.IP("addr", "add", "192.0.2.2/24", "dev", "eth1")
	c.IP("addr", "add", "198.51.100.2/24", "dev", "eth2")
	c.IP("addr", "add", "203.0.113.2/24", "dev", "veth0")
	peer.IP("addr", "add", "192.0.2.1/24", "dev", "p1")
	peer.IP("addr", "add", "198.51.100.1/24", "dev", "p2")
	c.IP("route", "add", "default", "via", "192.0.2.1", "dev", "eth1", "metric", "100")
	c.IP("route", "add", "default", "via", "198.51.100.1", "dev", "eth2", "metric", "200")
	return c, peer
}

func endpointShow(ns *lab.NS) string { return strings.TrimSpace(ns.IP("mptcp", "endpoint", "show")) }

func TestBadConfigRefusedBeforeTouchingTheKernel(t *testing.T) {
	c := client(t)
	cfg := daemonlab.WriteConfig(t, "[endpoints]\nflags = [\"subflow\"]\n\n[limits]\nadd_addr_accepted = 12\n")
	limitsBefore := c.IP("mptcp", "limits", "show")
	d := daemonlab.Start(t, c, daemonlab.Options{Config: cfg, NoWait: true})
	<-d.Exited()
	if code := exitCode(d.Err()); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(d.Stderr(), cfg+":5: limits.add_addr_accepted:") {
		t.Errorf("stderr does not name file, line and key:\n%s", d.Stderr())
	}
	if eps := endpointShow(c); eps != "" {
		t.Errorf("endpoints created by a refused configuration:\n%s", eps)
	}
	if after := c.IP("mptcp", "limits", "show"); after != limitsBefore {
		t.Errorf("limits changed by a refused configuration: %q -> %q", limitsBefore, after)
	}
	if strings.Contains(c.IP("rule", "show"), "proto 177") {
		t.Error("rules written by a refused configuration")
	}
}

func TestMissingNamedConfigIsAnError(t *testing.T) {
	c := client(t)
	d := daemonlab.Start(t, c, daemonlab.Options{Config: "/nonexistent/mptcpgd.toml", NoWait: true})
	<-d.Exited()
	if exitCode(d.Err()) != 1 || !strings.Contains(d.Stderr(), "/nonexistent/mptcpgd.toml") {
		t.Errorf("exit %v, stderr %q; want exit 1 naming the file", d.Err(), d.Stderr())
	}
}

func TestStartupRefusals(t *testing.T) {
	t.Run("MPTCP disabled", func(t *testing.T) {
		c := client(t)
		c.Sysctl("net.mptcp.enabled", "0")
		d := daemonlab.Start(t, c, daemonlab.Options{NoWait: true})
		<-d.Exited()
		if exitCode(d.Err()) != 1 || !strings.Contains(d.Stderr(), "net.mptcp.enabled=0") || !strings.Contains(d.Stderr(), "sysctl -w net.mptcp.enabled=1") {
			t.Errorf("exit %v, stderr %q; want exit 1 with the cause and the fix", d.Err(), d.Stderr())
		}
	})
	t.Run("no CAP_NET_ADMIN", func(t *testing.T) {
		requireSetpriv(t)
		c := client(t)
		dir := t.TempDir()
		cmd := c.Command(t.Context(), "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
			daemonlab.Binary(t), "--socket", dir+"/c.sock", "--state", dir+"/s.json")
		out, err := cmd.CombinedOutput()
		if exitCode(err) != 1 || !strings.Contains(string(out), "CAP_NET_ADMIN") {
			t.Errorf("as an unprivileged user: exit %v, output %q; want exit 1 naming CAP_NET_ADMIN", err, out)
		}
		if eps := endpointShow(c); eps != "" {
			t.Errorf("endpoints created without the capability:\n%s", eps)
		}
	})
}

func TestSystemdProtocol(t *testing.T) {
	c := client(t)
	cfgPath := daemonlab.WriteConfig(t, "")
	d := daemonlab.Start(t, c, daemonlab.Options{Config: cfgPath, NoWait: true, Env: []string{"WATCHDOG_USEC=400000"}})

	ready := d.WaitNotify("READY=1", 30*time.Second)
	// READY=1 comes after the first reconcile: the endpoints exist now.
	eps := endpointShow(c)
	if !strings.Contains(eps, "192.0.2.2 id") || !strings.Contains(eps, "198.51.100.2 id") || strings.Contains(eps, "203.0.113.2") {
		t.Errorf("endpoints at READY=1:\n%s\nwant eth1's and eth2's, not veth0's", eps)
	}
	if !strings.Contains(ready, "STATUS=") || !strings.Contains(ready, "2 endpoints") {
		t.Errorf("READY datagram %q: want a STATUS= line counting 2 endpoints", ready)
	}
	d.WaitNotify("WATCHDOG=1", 10*time.Second)
	// STATUS= follows changes without polling: a new address shows up.
	c.IP("addr", "add", "192.0.2.9/24", "dev", "eth1")
	d.WaitNotify("STATUS=2 interfaces managed, 3 endpoints", 10*time.Second)
	c.IP("addr", "del", "192.0.2.9/24", "dev", "eth1")
	d.WaitNotify("STATUS=2 interfaces managed, 2 endpoints", 10*time.Second)
	_, idsBefore := endpointIDs(c)

	// A reload with a changed configuration: eth2 becomes backup in place.
	os.WriteFile(cfgPath, []byte("[[interface]]\nmatch = \"eth2\"\nflags = [\"subflow\", \"backup\"]\n"), 0o644)
	before := monotonicUsec(t)
	d.Signal(syscall.SIGHUP)
	reloading := d.WaitNotify("RELOADING=1", 10*time.Second)
	checkMonotonic(t, reloading, before)
	d.WaitNotify("READY=1", 10*time.Second)
	eventually(t, "eth2 backup after reload", func() bool {
		return strings.Contains(endpointShow(c), "198.51.100.2 id "+idsBefore["198.51.100.2"]+" subflow backup")
	})
	if _, ids := endpointIDs(c); ids["192.0.2.2"] != idsBefore["192.0.2.2"] || ids["198.51.100.2"] != idsBefore["198.51.100.2"] {
		t.Errorf("endpoint ids changed on reload: %v -> %v", idsBefore, ids)
	}

	// A reload with a bad configuration keeps the running one and says why.
	os.WriteFile(cfgPath, []byte("[endpoints]\nflags = [\"signal\", \"fullmesh\"]\n"), 0o644)
	d.Signal(syscall.SIGHUP)
	d.WaitNotify("RELOADING=1", 10*time.Second)
	d.WaitNotify("READY=1", 10*time.Second)
	eventually(t, "the refused reload logged", func() bool {
		return strings.Contains(d.Stderr(), "reload refused, keeping the running configuration") && strings.Contains(d.Stderr(), cfgPath+":2: endpoints.flags")
	})
	if !strings.Contains(endpointShow(c), "198.51.100.2 id "+idsBefore["198.51.100.2"]+" subflow backup") {
		t.Errorf("a refused reload changed the endpoints:\n%s", endpointShow(c))
	}

	d.Signal(syscall.SIGTERM)
	d.WaitNotify("STOPPING=1", 10*time.Second)
	<-d.Exited()
	if d.Err() != nil {
		t.Errorf("exit after SIGTERM: %v, want a clean exit", d.Err())
	}
	if !strings.Contains(endpointShow(c), "192.0.2.2") {
		t.Error("a plain stop removed the endpoints (only cleanup_on_exit or `mptcpgd cleanup` may)")
	}
}

func TestShowAndCleanup(t *testing.T) {
	c := client(t)
	c.IP("mptcp", "endpoint", "add", "203.0.113.2", "dev", "veth0", "signal")
	limitsBefore := strings.TrimSpace(c.IP("mptcp", "limits", "show"))
	d := daemonlab.Start(t, c, daemonlab.Options{})

	out, errOut, err := d.Run("show")
	if err != nil {
		t.Fatalf("show: %v %s", err, errOut)
	}
	for _, want := range []string{
		"from the running daemon", `excluded by "veth*"`, "192.0.2.2/24", "endpoint", "ours", "not ours",
		"default via 192.0.2.1", "from 198.51.100.2 lookup", "Connections",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
	// The kernel section says what this kernel lacks: nothing on 6.18,
	// listener events and laminar endpoints on 6.1.
	var kernel netlinkmptcp.Features
	if err := c.Do(func() (err error) { kernel, err = netlinkmptcp.ProbeFeatures(nil); return err }); err != nil {
		t.Fatal(err)
	}
	wantKernel := kernel.Missing()
	if len(wantKernel) == 0 {
		wantKernel = []string{"has everything mptcpgd uses"}
	}
	for _, want := range wantKernel {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q (Linux %d.%d):\n%s", want, kernel.Major, kernel.Minor, out)
		}
	}
	rep := d.Show()
	if !rep.Live || len(rep.Status.Endpoints) != 3 || rep.Connections == nil {
		t.Errorf("show --json: live %v, %d endpoints, connections %v", rep.Live, len(rep.Status.Endpoints), rep.Connections)
	}

	if _, stderr, err := d.Run("cleanup"); err == nil || !strings.Contains(stderr, "stop it first") {
		t.Errorf("cleanup while the daemon runs: %v %q; want a refusal", err, stderr)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	out, _, err = d.Run("show")
	if err != nil || !strings.Contains(out, "from the kernel (no daemon answered)") || !strings.Contains(out, "192.0.2.2") {
		t.Errorf("show without a daemon: %v\n%s", err, out)
	}
	out, errOut, err = d.Run("cleanup")
	if err != nil {
		t.Fatalf("cleanup: %v %s", err, errOut)
	}
	if !strings.Contains(out, "removed endpoint") || !strings.Contains(out, "restored limits") {
		t.Errorf("cleanup output:\n%s", out)
	}
	if eps := endpointShow(c); !strings.HasPrefix(eps, "203.0.113.2 ") || strings.Contains(eps, "\n") {
		t.Errorf("after cleanup the endpoints are:\n%s\nwant only the foreign one", eps)
	}
	if strings.Contains(c.IP("rule", "show"), "proto 177") {
		t.Error("rules of ours left after cleanup")
	}
	if after := strings.TrimSpace(c.IP("mptcp", "limits", "show")); after != limitsBefore {
		t.Errorf("limits after cleanup %q, want the ones before the first start %q", after, limitsBefore)
	}
}

func TestCleanupOnExit(t *testing.T) {
	c := client(t)
	d := daemonlab.Start(t, c, daemonlab.Options{Config: daemonlab.WriteConfig(t, "[daemon]\ncleanup_on_exit = true\n")})
	if endpointShow(c) == "" {
		t.Fatal("no endpoints while running")
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if eps := endpointShow(c); eps != "" {
		t.Errorf("cleanup_on_exit left endpoints:\n%s", eps)
	}
	if strings.Contains(c.IP("rule", "show"), "proto 177") {
		t.Error("cleanup_on_exit left rules")
	}
}

func endpointIDs(ns *lab.NS) ([]string, map[string]string) {
	ids := map[string]string{}
	var lines []string
	for _, l := range strings.Split(endpointShow(ns), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[1] == "id" {
			ids[f[0]] = f[2]
			lines = append(lines, l)
		}
	}
	return lines, ids
}

func monotonicUsec(t *testing.T) uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return uint64(ts.Sec)*1e6 + uint64(ts.Nsec)/1e3
}

func checkMonotonic(t *testing.T, datagram string, before uint64) {
	t.Helper()
	for _, l := range strings.Split(datagram, "\n") {
		if v, ok := strings.CutPrefix(l, "MONOTONIC_USEC="); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n < before || n > monotonicUsec(t) {
				t.Errorf("MONOTONIC_USEC=%s is not the monotonic clock at the reload (after %d)", v, before)
			}
			return
		}
	}
	t.Errorf("RELOADING datagram %q lacks MONOTONIC_USEC", datagram)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
