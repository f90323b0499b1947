package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// mptcpdArgs make mptcpd 0.12 do what mptcpgd does on a client: its
// address advertiser plugin adds an endpoint with flag subflow, bound to
// the device, for every address (those present at start included), and
// removes it with the address; link-local and loopback addresses are
// skipped. Everything is on the command line, which takes precedence over
// /etc/mptcpd/mptcpd.conf; from that file only plugin-dir is read (the
// compiled-in default is the same).
var mptcpdArgs = []string{
	"--log=stderr",
	"--path-manager=addr_adv",
	"--load-plugins=addr_adv",
	"--addr-flags=subflow",
	"--notify-flags=existing,skip_link_local,skip_loopback",
}

// mptcpgdConfig is the configuration the bench runs mptcpgd with: the
// built-in defaults (subflow endpoints on every interface but lo, veth*,
// ...; limits 4/4; source routing with table 10000+ifindex, rule priority
// 10000, protocol 177; resync every 30 s) and a clean exit, so that the
// next daemon finds the namespace as the lab made it.
const mptcpgdConfig = `[daemon]
cleanup_on_exit = true
`

// daemon is a daemon under test, running in a lab namespace.
type daemon interface {
	// Name is "mptcpgd" or "mptcpd".
	Name() string
	// PID is the daemon's process id (ip netns exec execs it in place).
	PID() int
	// Stop terminates it and waits.
	Stop()
	// Log is everything it logged so far.
	Log() string
}

// gd is mptcpgd under daemonlab.
type gd struct{ d *daemonlab.Daemon }

func (g gd) Name() string { return "mptcpgd" }
func (g gd) PID() int     { return g.d.Cmd.Process.Pid }
func (g gd) Log() string  { return g.d.Stderr() }

func (g gd) Stop() {
	if err := g.d.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: mptcpgd exited with %v; it logged:\n%s\n", err, g.d.Stderr())
	}
}

// startMptcpgd runs mptcpgd in ns with the bench configuration plus extra
// (TOML appended to it) and waits for READY=1.
func startMptcpgd(s *lab.Scope, ns *lab.NS, extra string) gd {
	cfg := daemonlab.WriteConfig(s, mptcpgdConfig+extra)
	d := gd{daemonlab.Start(s, ns, daemonlab.Options{Config: cfg})}
	checkComm(s, d.PID(), "mptcpgd")
	return d
}

// mptcpd is a running mptcpd.
type mptcpd struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan struct{}
	err    error
	once   sync.Once
}

func (m *mptcpd) Name() string { return "mptcpd" }
func (m *mptcpd) PID() int     { return m.cmd.Process.Pid }

func (m *mptcpd) Log() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stderr.String()
}

func (m *mptcpd) Write(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stderr.Write(b)
}

// Stop sends SIGTERM to the process the bench started, and SIGKILL if it
// is still there after 5 s.
func (m *mptcpd) Stop() {
	m.once.Do(func() {
		select {
		case <-m.exited:
			return
		default:
		}
		daemonlab.Terminate(m.cmd.Process, m.exited, 5*time.Second)
	})
}

// mptcpdReady is what mptcpd logs once its plugin is loaded.
const mptcpdReady = "path manager initialized"

// startMptcpd runs mptcpd (binary bin) in ns and waits until its plugin is
// loaded. It is stopped when s closes.
func startMptcpd(s *lab.Scope, ns *lab.NS, bin string) *mptcpd {
	m := &mptcpd{exited: make(chan struct{})}
	m.cmd = ns.Command(context.Background(), bin, mptcpdArgs...)
	m.cmd.Stdout, m.cmd.Stderr = m, m
	if err := m.cmd.Start(); err != nil {
		s.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		m.err = m.cmd.Wait()
		close(m.exited)
	}()
	s.Cleanup(m.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(m.Log(), mptcpdReady) {
		select {
		case <-m.exited:
			s.Fatalf("mptcpd exited (%v) before it was ready; it logged:\n%s", m.err, m.Log())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Fatalf("mptcpd not ready after 10 s; it logged:\n%s", m.Log())
		}
	}
	checkComm(s, m.PID(), "mptcpd")
	return m
}

// checkComm makes sure pid is the daemon itself, not a wrapper, since its
// /proc figures are what the bench reports.
func checkComm(s *lab.Scope, pid int, want string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(b)) != want {
		s.Fatalf("process %d is %q, want %s (%v)", pid, strings.TrimSpace(string(b)), want, err)
	}
}

// resetMPTCP puts a namespace back as the lab made it after a daemon or the
// floor ran in it: no endpoints, the given limits, no rule or route with
// mptcpgd's protocol. It returns what it had to remove, so that a daemon
// that leaves things behind is noticed.
func resetMPTCP(s *lab.Scope, ns *lab.NS, limits netlinkmptcp.Limits) []string {
	mp := mptcpClient(s, ns)
	var left []string
	eps, err := mp.Endpoints()
	if err != nil {
		s.Fatal(err)
	}
	for _, e := range eps {
		left = append(left, "endpoint "+e.String())
	}
	if err := mp.FlushEndpoints(); err != nil {
		s.Fatal(err)
	}
	if err := mp.SetLimits(limits.Update()); err != nil {
		s.Fatal(err)
	}
	rc := routingConn(s, ns)
	st, _, err := rc.Dump()
	if err != nil {
		s.Fatal(err)
	}
	for r := range st.Rules {
		left = append(left, "rule "+r.String())
		if err := rc.DeleteRule(r); err != nil {
			s.Fatal(err)
		}
	}
	for _, r := range st.Routes {
		if r.Protocol != ourProto {
			continue
		}
		left = append(left, "route "+r.String())
		if err := rc.DeleteRoute(r); err != nil {
			s.Fatal(err)
		}
	}
	return left
}
