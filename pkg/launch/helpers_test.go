package launch_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/internal/runlab"
)

// Kernel tests: `mptcpgd run` (the real binary) runs programs inside a
// fresh network namespace, whose loopback the test's servers listen on.

func TestMain(m *testing.M) {
	code := m.Run()
	runlab.Cleanup()
	os.Exit(code)
}

// tool returns one of the programs runlab builds.
func tool(tb lab.TB, name string) string {
	tb.Helper()
	return runlab.Tool(tb, name)
}

// result is how a run ended.
type result struct {
	stdout, stderr string
	state          *os.ProcessState
}

func (r result) code() int { return r.state.ExitCode() }

func (r result) signal() syscall.Signal {
	ws := r.state.Sys().(syscall.WaitStatus)
	if !ws.Signaled() {
		return 0
	}
	return ws.Signal()
}

// warnings are the lines mptcpgd run wrote as warnings.
func (r result) warnings() []string {
	var out []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(l, "mptcpgd run: warning: ") {
			out = append(out, l)
		}
	}
	return out
}

// wrapped prepares `mptcpgd run ARGS...` in ns, with GODEBUG removed from
// its environment so that the supervisor runs with Go's defaults.
func wrapped(t *testing.T, ns *lab.NS, args ...string) *exec.Cmd {
	t.Helper()
	// Bounded, so that a program that hangs fails its test rather than
	// the package's timeout, whose dump names no cause.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	cmd := ns.Command(ctx, tool(t, "mptcpgd"), append([]string{"run", "--"}, args...)...)
	cmd.WaitDelay = 10 * time.Second
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

// run runs `mptcpgd run ARGS...` in ns to the end.
func run(t *testing.T, ns *lab.NS, args ...string) result {
	t.Helper()
	cmd := wrapped(t, ns, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("mptcpgd run %q: %v", args, err)
	}
	return result{stdout: o.String(), stderr: e.String(), state: cmd.ProcessState}
}

// lines maps "name value..." lines of a program's output to their
// values, fields separated by single spaces.
func lines(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			m[f[0]] = strings.Join(f[1:], " ")
		}
	}
	return m
}

// server accepts connections in a namespace and answers each: an HTTP
// request with a small page, anything else with "ok". It records whether
// every connection it accepted was MPTCP.
type server struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []bool
}

func newServer(t *testing.T, ns *lab.NS, mptcp bool) *server {
	t.Helper()
	ln, err := ns.Listen("tcp4", "127.0.0.1:0", mptcp)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go s.serve()
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }
func (s *server) port() string { _, p, _ := net.SplitHostPort(s.addr()); return p }

func (s *server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		mp, _ := c.(*net.TCPConn).MultipathTCP()
		s.mu.Lock()
		s.conns = append(s.conns, mp)
		s.mu.Unlock()
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			first, _ := r.ReadString('\n')
			if strings.HasPrefix(first, "GET ") {
				for {
					l, err := r.ReadString('\n')
					if err != nil || strings.TrimSpace(l) == "" {
						break
					}
				}
				io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")
				return
			}
			io.WriteString(c, "ok\n")
		}()
	}
}

// accepted returns how many connections were accepted and how many of
// them were MPTCP, once n have been accepted (or after ten seconds).
func (s *server) accepted(n int) (all, mptcp int) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		all, mptcp = len(s.conns), 0
		for _, mp := range s.conns {
			if mp {
				mptcp++
			}
		}
		s.mu.Unlock()
		if all >= n || time.Now().After(deadline) {
			return all, mptcp
		}
		time.Sleep(10 * time.Millisecond)
	}
}
