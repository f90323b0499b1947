package top

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/daemonmetrics"
	"github.com/mptcpgd/mptcpgd/pkg/metrics"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
	"github.com/mptcpgd/mptcpgd/pkg/rejoin"
)

// sample is a daemon's sample with eth1 sending sent bytes in all, eth2
// withdrawn, and eth3 waiting for a join.
func sample(at time.Time, sent float64) Sample {
	text := fmt.Sprintf(`# TYPE %[1]s gauge
%[1]s{interface="eth1"} 1
%[1]s{interface="eth2"} 0
%[1]s{interface="eth3"} 1
# TYPE %[2]s gauge
%[2]s{interface="eth1"} 2
# TYPE %[3]s counter
%[3]s{interface="eth1"} %[4]v
%[3]s{interface="wwan0"} 10
# TYPE %[5]s counter
%[5]s{interface="eth3",errno="EHOSTUNREACH"} 2
%[5]s{interface="eth3",errno="ECONNRESET"} 1
# TYPE %[6]s gauge
%[6]s{side="client"} 3
%[6]s{side="server"} 1
`, daemonmetrics.NameEndpoints, daemonmetrics.NameSubflows, daemonmetrics.NameSentBytes, sent,
		daemonmetrics.NameJoinFailures, daemonmetrics.NameConnections)
	fams, err := metrics.Parse([]byte(text))
	if err != nil {
		panic(err)
	}
	link := func(i int, n string) netstate.Link { return netstate.Link{Index: i, Name: n} }
	return Sample{At: at, Metrics: fams, Status: pm.Status{
		Interfaces: []pm.InterfaceStatus{
			{Link: link(1, "lo")},
			{Link: link(2, "eth1"), Managed: true},
			{Link: link(3, "eth2"), Managed: true, Withdrawn: "no carrier"},
			{Link: link(4, "eth3"), Managed: true},
		},
		Missing: []rejoin.Missing{{Token: 1, IfName: "eth3", Reason: "join failed (EHOSTUNREACH); retry at 10:00:01"}},
	}}
}

func TestBuild(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	prev := sample(t0, 1000)
	f := Build(&prev, sample(t0.Add(2*time.Second), 5000))
	want := []Row{
		{Interface: "eth1", State: "active", Endpoints: 1, Subflows: 2, SendRate: 2000, RecvRate: 0},
		{Interface: "eth2", State: "withdrawn", Why: "no carrier", SendRate: 0, RecvRate: 0},
		{Interface: "eth3", State: "waiting", Why: "join failed (EHOSTUNREACH); retry at 10:00:01", Endpoints: 1, Failures: 3},
		{Interface: "wwan0", State: "not managed", SendRate: 0, RecvRate: 0},
	}
	if fmt.Sprint(f.Rows) != fmt.Sprint(want) || f.Clients != 3 || f.Servers != 1 {
		t.Errorf("rows\n%v\nwant\n%v\nclients %v servers %v", f.Rows, want, f.Clients, f.Servers)
	}
	first := Build(nil, prev)
	if first.Rows[0].SendRate >= 0 || !strings.Contains(strings.Join(first.Lines(false), "\n"), " - ") {
		t.Errorf("the first frame has rates: %v", first.Lines(false))
	}
	lines := f.Lines(true)
	if !strings.Contains(lines[2], "16.0 kbit/s") || !strings.Contains(lines[2], strings.Repeat("#", barWidth)) {
		t.Errorf("eth1's line: %q", lines[2])
	}
}

// fakeDaemon answers samples at one-second steps; fail makes the n-th
// answer an error.
type fakeDaemon struct {
	mu   sync.Mutex
	n    int
	fail int
}

func (d *fakeDaemon) query(context.Context) (Sample, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	if d.n == d.fail {
		return Sample{}, errors.New("daemon gone")
	}
	return sample(time.Unix(int64(d.n), 0), float64(d.n*1000)), nil
}

func TestRunPlainLines(t *testing.T) {
	var out bytes.Buffer
	d := &fakeDaemon{}
	if err := Run(context.Background(), Options{Query: d.query, Out: &out, Interval: time.Millisecond, Count: 2}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if strings.Count(text, "INTERFACE") != 2 || strings.Contains(text, "\x1b") || !strings.Contains(text, "8.0 kbit/s") {
		t.Errorf("plain output:\n%s", text)
	}
}

// openPTY returns a pseudo-terminal's terminal side and the side that reads
// what is written to it.
func openPTY(t *testing.T) (terminal, screen *os.File) {
	t.Helper()
	screen, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("needs a pseudo-terminal: %v", err)
		}
		t.Skipf("needs a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { screen.Close() })
	fd := int(screen.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	terminal, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminal.Close() })
	return terminal, screen
}

// screenReader collects what the terminal shows.
type screenReader struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	seen chan struct{}
}

func readScreen(screen *os.File) *screenReader {
	s := &screenReader{seen: make(chan struct{}, 1)}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := screen.Read(b)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.buf.Write(b[:n])
			s.mu.Unlock()
			select {
			case s.seen <- struct{}{}:
			default:
			}
		}
	}()
	return s
}

func (s *screenReader) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		ok := strings.Contains(s.buf.String(), want)
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.seen:
		case <-deadline:
			t.Fatalf("the screen never showed %q", want)
		}
	}
}

// TestRunRestoresTheTerminal: `q` ends the view, and the daemon's failing
// ends it too; either way the terminal's mode is as it was and the
// alternate screen is left.
func TestRunRestoresTheTerminal(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail int
		quit bool
	}{{"q", 0, true}, {"error", 3, false}} {
		t.Run(tc.name, func(t *testing.T) {
			term, screen := openPTY(t)
			before, err := unix.IoctlGetTermios(int(term.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			s := readScreen(screen)
			d := &fakeDaemon{fail: tc.fail}
			done := make(chan error, 1)
			go func() {
				done <- Run(context.Background(), Options{Query: d.query, Out: term, In: term, Interval: 10 * time.Millisecond})
			}()
			s.waitFor(t, "press q to quit")
			during, _ := unix.IoctlGetTermios(int(term.Fd()), unix.TCGETS)
			if during.Lflag&(unix.ICANON|unix.ECHO) != 0 {
				t.Errorf("while running, the terminal still echoes or buffers lines: lflag %#x", during.Lflag)
			}
			if tc.quit {
				screen.Write([]byte("q"))
			}
			select {
			case err := <-done:
				if (err != nil) != (tc.fail != 0) {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not end")
			}
			after, err := unix.IoctlGetTermios(int(term.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			if *after != *before {
				t.Errorf("terminal mode after Run %+v, want %+v", *after, *before)
			}
			s.waitFor(t, leaveScreen)
		})
	}
}
