package sdnotify_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/sdnotify"
	"golang.org/x/sys/unix"
)

// listen creates the socket systemd would listen on and points NOTIFY_SOCKET
// at it.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

// receive returns the next datagram on conn.
func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	// Only a guard against hanging when nothing was sent.
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifications(t *testing.T) {
	tests := []struct {
		name string
		send func(sdnotify.Notifier) error
		want string
	}{
		{"ready", func(n sdnotify.Notifier) error { return n.Ready("") }, "READY=1"},
		{"ready with status", func(n sdnotify.Notifier) error { return n.Ready("2 interfaces, 3 endpoints") },
			"READY=1\nSTATUS=2 interfaces, 3 endpoints"},
		{"status", func(n sdnotify.Notifier) error { return n.Status("resyncing") }, "STATUS=resyncing"},
		{"status stays one line", func(n sdnotify.Notifier) error { return n.Status("a\nREADY=1") }, "STATUS=a READY=1"},
		{"stopping", func(n sdnotify.Notifier) error { return n.Stopping() }, "STOPPING=1"},
		{"watchdog", func(n sdnotify.Notifier) error { return n.Watchdog() }, "WATCHDOG=1"},
	}
	sockets := map[string]func(t *testing.T) string{
		"path":     func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify.sock") },
		"abstract": func(t *testing.T) string { return fmt.Sprintf("@mptcpgd-sdnotify-test-%d", os.Getpid()) },
	}
	for kind, name := range sockets {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				conn := listen(t, name(t))
				var n sdnotify.Notifier
				if !n.Enabled() {
					t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
				}
				if err := tt.send(n); err != nil {
					t.Fatal(err)
				}
				if got := receive(t, conn); got != tt.want {
					t.Errorf("datagram = %q, want %q", got, tt.want)
				}
			})
		}
	}
}

func TestReloadingCarriesMonotonicTime(t *testing.T) {
	conn := listen(t, filepath.Join(t.TempDir(), "notify.sock"))
	before := monotonicUsec(t)
	if err := (sdnotify.Notifier{}).Reloading(); err != nil {
		t.Fatal(err)
	}
	after := monotonicUsec(t)

	got := receive(t, conn)
	lines := strings.Split(got, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("datagram = %q, want RELOADING=1 and MONOTONIC_USEC= in one message", got)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil {
		t.Fatalf("MONOTONIC_USEC in %q: %v", got, err)
	}
	if usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC=%d, want CLOCK_MONOTONIC between %d and %d", usec, before, after)
	}
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Sec*1_000_000 + ts.Nsec/1_000
}

func TestWithoutNotifySocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	var n sdnotify.Notifier
	if n.Enabled() {
		t.Error("Enabled() = true without NOTIFY_SOCKET")
	}
	for name, send := range map[string]func() error{
		"Ready":     func() error { return n.Ready("up") },
		"Status":    func() error { return n.Status("up") },
		"Reloading": n.Reloading,
		"Stopping":  n.Stopping,
		"Watchdog":  n.Watchdog,
	} {
		if err := send(); err != nil {
			t.Errorf("%s without NOTIFY_SOCKET: %v, want nil", name, err)
		}
	}
}

func TestSendErrorNamesStateAndSocket(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gone.sock")
	t.Setenv("NOTIFY_SOCKET", missing)
	err := (sdnotify.Notifier{}).Ready("up")
	if err == nil {
		t.Fatal("Ready to a missing socket returned nil")
	}
	for _, want := range []string{"notify systemd READY=1", missing} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	tests := []struct {
		name      string
		usec, pid string
		want      time.Duration
		wantOK    bool
	}{
		{"off", "", "", 0, false},
		{"on, no pid", "30000000", "", 15 * time.Second, true},
		{"on, our pid", "30000000", self, 15 * time.Second, true},
		{"on, another process's pid", "30000000", strconv.Itoa(os.Getpid() + 1), 0, false},
		{"malformed", "30s", "", 0, false},
		{"zero", "0", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			got, ok := (sdnotify.Notifier{}).WatchdogInterval()
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("WatchdogInterval() = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
