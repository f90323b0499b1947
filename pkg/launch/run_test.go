package launch_test

import (
	"bufio"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/internal/runlab"
)

// pythonProbe reports the protocol of each kind of socket Python makes,
// then connects to the server given as argv[1].
const pythonProbe = `
import socket, sys
for name, fam, typ in (("tcp4", socket.AF_INET, socket.SOCK_STREAM), ("tcp6", socket.AF_INET6, socket.SOCK_STREAM),
                       ("udp4", socket.AF_INET, socket.SOCK_DGRAM), ("unix-stream", socket.AF_UNIX, socket.SOCK_STREAM)):
    s = socket.socket(fam, typ)
    print(name, s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
    s.close()
host, port = sys.argv[1].rsplit(":", 1)
c = socket.create_connection((host, int(port)))
print("connected", c.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
c.sendall(b"hello\n")
print("reply", c.recv(100).decode().strip())
`

// TestEveryTCPSocketIsMPTCP runs programs of every kind under mptcpgd run:
// each TCP stream socket they make is an MPTCP socket (what the program
// reads back with SO_PROTOCOL, and what the server accepts), and their
// UDP and unix sockets are what they asked for.
func TestEveryTCPSocketIsMPTCP(t *testing.T) {
	ns := lab.New(t, "run")
	python := runlab.Command(t, "python3")
	nc := runlab.Command(t, "nc.openbsd")
	curl := runlab.Command(t, "curl")
	probe, gosock := tool(t, "sockprobe"), tool(t, "gosock")

	type check struct {
		name     string
		args     []string
		protos   map[string]string // output lines "kind protocol"
		contains []string
		conns    int // connections the server must see, all MPTCP
	}
	srv := newServer(t, ns, true)
	checks := []check{
		{"python", []string{python, "-c", pythonProbe, srv.addr()},
			map[string]string{"tcp4": "262", "tcp6": "262", "udp4": "17", "unix-stream": "0", "connected": "262", "reply": "ok"}, nil, 1},
		{"static Go, raw socket(2)", []string{gosock, "kinds"},
			map[string]string{"tcp4": "262", "tcp6": "262", "udp4": "17", "unix-stream": "0"}, nil, 0},
		{"static Go, net with MPTCP off in its Dialer", []string{gosock, "dial", srv.addr(), "plain"},
			map[string]string{"multipath": "true <nil>"}, []string{"ok"}, 1},
		{"static Go, net with GODEBUG", []string{gosock, "dial", srv.addr(), "default"},
			map[string]string{"multipath": "true <nil>"}, []string{"ok"}, 1},
		{"dynamic C", []string{probe, "kinds"},
			map[string]string{"tcp4": "262", "tcp6": "262", "tcp4-nonblock-cloexec": "262", "tcp4-explicit": "262",
				"tcp4-again": "262", "tcp4-nonblock-cloexec-again": "262",
				"tcp4-flags": "nonblock=0 cloexec=0", "tcp4-nonblock-cloexec-flags": "nonblock=1 cloexec=1",
				"tcp4-again-flags": "nonblock=0 cloexec=0", "tcp4-nonblock-cloexec-again-flags": "nonblock=1 cloexec=1",
				"udp4": "17", "udp6": "17", "unix-stream": "0", "unix-dgram": "0"}, nil, 0},
		{"dynamic C client", []string{probe, "connect", "127.0.0.1", srv.port()}, map[string]string{"protocol": "262"}, []string{"ok"}, 1},
		{"nc.openbsd", []string{nc, "-N", "127.0.0.1", srv.port()}, nil, []string{"ok"}, 1},
		{"curl", []string{curl, "-sS", "http://" + srv.addr() + "/"}, nil, []string{"hello"}, 1},
		{"shell pipeline", []string{"sh", "-c", fmt.Sprintf("echo hello | %s -N 127.0.0.1 %s | tr a-z A-Z; %s -sS http://%s/ | cat",
			nc, srv.port(), curl, srv.addr())}, nil, []string{"OK", "hello"}, 2},
		{"eight threads at once", []string{probe, "threads", "8"}, nil, []string{strings.Repeat("tcp 262\n", 8)}, 0},
	}
	seen := 0
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, ns, c.args...)
			if r.code() != 0 || len(r.warnings()) > 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code(), r.stdout, r.stderr)
			}
			got := lines(r.stdout)
			for k, v := range c.protos {
				if got[k] != v {
					t.Errorf("%s: %q, want %q\n%s", k, got[k], v, r.stdout)
				}
			}
			for _, s := range c.contains {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("the output lacks %q:\n%s", s, r.stdout)
				}
			}
			seen += c.conns
			if all, mptcp := srv.accepted(seen); all != seen || mptcp != seen {
				t.Errorf("the server accepted %d connections so far, %d of them MPTCP; want %d, all MPTCP", all, mptcp, seen)
			}
		})
	}
}

// TestCheckCountsMPTCPSockets: mptcpgd run --check, given the wrapper's
// PID, finds the program's connection and says it is MPTCP; given a
// program that runs without the wrapper, it says its connection is not,
// and exits 1.
func TestCheckCountsMPTCPSockets(t *testing.T) {
	ns := lab.New(t, "check")
	python := runlab.Command(t, "python3")
	srv := newServer(t, ns, true)
	holder := `import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
c = socket.create_connection((host, int(port)))
print("ready", flush=True)
sys.stdin.read()`
	start := func(wrap bool) (*exec.Cmd, func()) {
		var cmd *exec.Cmd
		if wrap {
			cmd = wrapped(t, ns, python, "-c", holder, srv.addr())
		} else {
			cmd = ns.Command(t.Context(), python, "-c", holder, srv.addr())
		}
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if l, err := bufio.NewReader(stdout).ReadString('\n'); l != "ready\n" {
			t.Fatalf("program: %q, %v", l, err)
		}
		return cmd, func() { stdin.Close(); cmd.Wait() }
	}
	check := func(pid int) (string, int) {
		c := ns.Command(t.Context(), tool(t, "mptcpgd"), "run", "--check", strconv.Itoa(pid))
		out, _ := c.CombinedOutput()
		return string(out), c.ProcessState.ExitCode()
	}

	w, stop := start(true)
	out, code := check(w.Process.Pid)
	stop()
	if code != 0 || !strings.Contains(out, "1 of 1 TCP sockets are MPTCP") || !strings.Contains(out, "MPTCP established 127.0.0.1:") {
		t.Errorf("the wrapped program: exit %d, want 0 and its MPTCP connection:\n%s", code, out)
	}
	p, stop := start(false)
	out, code = check(p.Process.Pid)
	stop()
	if code != 1 || !strings.Contains(out, "0 of 1 TCP sockets are MPTCP") || !strings.Contains(out, "TCP   established") {
		t.Errorf("a program without the wrapper: exit %d, want 1 and its TCP connection:\n%s", code, out)
	}
}
