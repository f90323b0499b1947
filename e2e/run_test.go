package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/internal/runlab"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

const iperfPort = 5201

// TestIperf3UnderMptcpgdRun is the seed's manual test with mptcpgd run in
// place of mptcpize: iperf3, an unmodified program, on both ends of the
// seed lab with mptcpgd managing the endpoints; its connection joins over
// the client's second uplink, which carries its share of the bytes.
func TestIperf3UnderMptcpgdRun(t *testing.T) {
	iperf3 := runlab.Command(t, "iperf3")
	s := startSeed(t, lab.TopologyOptions{Variant: lab.Static})
	bin := daemonlab.Binary(t)
	server := s.top.Server.Command(t.Context(), bin, "run", "--", iperf3, "-s", "-1", "-p", strconv.Itoa(iperfPort))
	var serverOut bytes.Buffer
	server.Stdout, server.Stderr = &serverOut, &serverOut
	startGroup(t, server)
	waitMPTCPListener(t, s.top.Server, iperfPort)

	eth2 := s.top.Uplinks[1]
	_, before, err := s.top.Client.LinkStats(eth2.Dev)
	if err != nil {
		t.Fatal(err)
	}
	// iperf3 runs 6 s; one that hangs (a connection stuck for good) fails
	// the test instead of running into the package timeout.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	client := s.top.Client.Command(ctx, bin, "run", "--", iperf3, "-c", s.top.ServerAddr(lab.V4).String(),
		"-p", strconv.Itoa(iperfPort), "-t", "6", "-J")
	var clientOut, clientErr bytes.Buffer
	client.Stdout, client.Stderr = &clientOut, &clientErr
	startGroup(t, client)
	joined := waitJoin(t, s.top.Client, eth2.Addr4)
	if err := client.Wait(); err != nil {
		t.Fatalf("iperf3 client: %v\n%s\n%s", err, clientErr.String(), serverOut.String())
	}
	_, after, err := s.top.Client.LinkStats(eth2.Dev)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		End struct {
			SumSent struct {
				Bytes         float64 `json:"bytes"`
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_sent"`
		} `json:"end"`
	}
	if err := json.Unmarshal(clientOut.Bytes(), &rep); err != nil {
		t.Fatalf("iperf3 -J: %v\n%s", err, clientOut.String())
	}
	sent := rep.End.SumSent.Bytes
	if viaEth2 := float64(after - before); viaEth2 < 0.2*sent {
		t.Errorf("%s carried %.0f of the %.0f bytes iperf3 sent, want at least 20%%", eth2.Dev, viaEth2, sent)
	}
	t.Logf("iperf3 under mptcpgd run: %.1f Mbit/s; a subflow from %s after %v; %s carried %.0f%% of the bytes",
		rep.End.SumSent.BitsPerSecond/1e6, eth2.Addr4, joined.Round(time.Millisecond), eth2.Dev, 100*float64(after-before)/sent)
}

// startGroup starts cmd (mptcpgd run and its program) in a process group
// of its own, which its context's end and the test's end kill as a whole:
// killing only mptcpgd run would leave the program holding cmd's output,
// and a failed test waiting for it for good.
func startGroup(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
}

// waitMPTCPListener waits for an MPTCP socket listening on port in ns.
func waitMPTCPListener(t *testing.T, ns *lab.NS, port uint16) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range listSockets(t, ns) {
			if s.State == sockdiag.StateListen && s.Local.Port() == port {
				if !s.MPTCP {
					t.Fatalf("the listener on port %d is a plain TCP socket", port)
				}
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d", port)
}

// waitJoin waits until a connection to the iperf3 port has an established
// subflow from addr, and says how long that took.
func waitJoin(t *testing.T, ns *lab.NS, addr netip.Addr) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 20*time.Second {
		f, err := ns.Open()
		if err != nil {
			t.Fatal(err)
		}
		conns, err := sockdiag.ListMPTCP(&sockdiag.Config{NetNS: int(f.Fd())})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range conns {
			for _, sf := range c.Subflows {
				if c.Remote.Port() == iperfPort && sf.Local.Addr() == addr && sf.State == sockdiag.StateEstablished {
					return time.Since(start)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no connection to port %d joined from %s", iperfPort, addr)
	return 0
}

func listSockets(t testing.TB, ns *lab.NS) []sockdiag.Socket {
	t.Helper()
	f, err := ns.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := sockdiag.ListSockets(&sockdiag.Config{NetNS: int(f.Fd())})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// BenchmarkConnectionsOverTheLab makes b.N short connections (connect,
// one byte each way, close) from the seed lab's client to its server,
// with mptcpgd managing both ends: from a C program asking for MPTCP
// itself, and from the same program asking for TCP under mptcpgd run.
// ns/op is the program's own time per connection. Run it alone:
//
//	go test -run '^$' -bench ConnectionsOverTheLab -benchtime 10000x -count 3 ./e2e
func BenchmarkConnectionsOverTheLab(b *testing.B) {
	s := startSeed(b, lab.TopologyOptions{Variant: lab.Static})
	ln, err := s.top.Server.ListenMPTCP("tcp4", ":0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go echoOneByte(ln)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	probe := runlab.Tool(b, "sockprobe")
	cases := []struct {
		name  string
		proto string
		wrap  []string
	}{
		{"mptcp-native", "262", nil},
		{"mptcpgd-run", "0", []string{runlab.Tool(b, "mptcpgd"), "run", "--"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			args := append(append([]string{}, c.wrap...), probe, "connbench", s.top.ServerAddr(lab.V4).String(), port, strconv.Itoa(b.N), c.proto)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			out, err := s.top.Client.Command(ctx, args[0], args[1:]...).CombinedOutput()
			if err != nil {
				b.Fatalf("%q: %v\n%s", args, err, out)
			}
			f := strings.Fields(string(out))
			if len(f) < 4 || f[0] != "ns/op" || f[3] != "262" {
				b.Fatalf("connections not MPTCP, or no result: %s", out)
			}
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(v, "ns/op")
		})
	}
}

// echoOneByte answers every connection's byte with one byte.
func echoOneByte(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var b [1]byte
			if _, err := c.Read(b[:]); err == nil {
				c.Write(b[:])
			}
		}()
	}
}
