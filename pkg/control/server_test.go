package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// serve runs s on a fresh socket until the test ends, and returns the
// socket's path.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path
}

func query(t *testing.T, path, cmd string, out any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return Query(ctx, path, cmd, out)
}

func dial(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readReply reads what the server sends until it closes the connection.
// The deadline only keeps a broken server from hanging the test.
func readReply(t *testing.T, c net.Conn) (reply, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return reply{}, err
	}
	var r reply
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("reply %q: %v", b, err)
		}
	}
	return r, nil
}

func status(context.Context, string) (any, error) { return "ok", nil }

// TestIdleConnectionsMakeRoom: idle connections beyond the cap are closed,
// oldest first, and a client that asks is still answered.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	const max, idle = 4, 10
	path := serve(t, &Server{Handler: status, MaxConns: max, RequestTimeout: time.Hour})
	conns := make([]net.Conn, idle)
	for i := range conns {
		conns[i] = dial(t, path)
	}
	var got string
	if err := query(t, path, Status, &got); err != nil || got != "ok" {
		t.Fatalf("Query with %d idle connections open = %q, %v", idle, got, err)
	}
	// Accepted in order: the query and the idle ones beyond the cap each
	// closed the oldest idle one.
	for i, c := range conns[:idle+1-max] {
		if _, err := readReply(t, c); err != nil {
			t.Errorf("idle connection %d still open (%v), want it closed to make room", i+1, err)
		}
	}
}

func TestBusyWhenEveryConnectionIsAnswered(t *testing.T) {
	release := make(chan struct{})
	var inHandler atomic.Int32
	entered := make(chan struct{}, 2)
	path := serve(t, &Server{MaxConns: 2, Handler: func(ctx context.Context, cmd string) (any, error) {
		inHandler.Add(1)
		entered <- struct{}{}
		<-release
		return "late", nil
	}})
	results := make(chan error, 2)
	for range 2 {
		go func() { results <- query(t, path, Status, new(string)) }()
	}
	<-entered
	<-entered
	err := query(t, path, Status, new(string))
	if err == nil || !strings.Contains(err.Error(), "busy") {
		t.Errorf("third query while two are answered = %v, want busy", err)
	}
	close(release)
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("query answered after the busy one: %v", err)
		}
	}
}

func TestNoRequestTimesOut(t *testing.T) {
	path := serve(t, &Server{Handler: status, RequestTimeout: 50 * time.Millisecond})
	c := dial(t, path)
	r, err := readReply(t, c)
	if err != nil || r.Error != "no request within 50ms" {
		t.Errorf("idle connection got %+v, %v; want it closed with \"no request within 50ms\"", r, err)
	}
}

// A reply that takes longer than the request timeout (a reload) still
// reaches the client.
func TestSlowAnswerArrives(t *testing.T) {
	path := serve(t, &Server{RequestTimeout: 20 * time.Millisecond, Handler: func(context.Context, string) (any, error) {
		time.Sleep(200 * time.Millisecond)
		return "slow", nil
	}})
	var got string
	if err := query(t, path, Reload, &got); err != nil || got != "slow" {
		t.Errorf("Query = %q, %v; want the slow answer", got, err)
	}
}

func TestOversizedRequest(t *testing.T) {
	path := serve(t, &Server{Handler: status})
	c := dial(t, path)
	go func() {
		// The server stops reading at the bound; this write may fail.
		_, _ = c.Write([]byte(`{"command":"` + strings.Repeat("x", MaxRequest+10)))
	}()
	r, err := readReply(t, c)
	if err != nil || r.Error != "bad request: longer than 64 KiB (a request is one JSON line)" {
		t.Errorf("oversized request answered %+v, %v", r, err)
	}
}

func TestRequestEndedByClose(t *testing.T) {
	path := serve(t, &Server{Handler: status})
	c := dial(t, path).(*net.UnixConn)
	if _, err := c.Write([]byte(`{"command":"status"}`)); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	r, err := readReply(t, c)
	if err != nil || r.Error != "" || string(r.Result) != `"ok"` {
		t.Errorf("request without a newline answered %+v, %v", r, err)
	}
}

// failingListener fails every Accept as a process out of file
// descriptors does.
type failingListener struct {
	net.Listener
	calls atomic.Int32
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.calls.Add(1)
	return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

func TestPersistentAcceptErrorEndsServe(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: ln}
	s := &Server{Handler: status, minBackoff: time.Millisecond, maxBackoff: 4 * time.Millisecond, giveUp: 6}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), fl) }()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EMFILE) || !strings.Contains(err.Error(), "6 times in a row") {
			t.Errorf("Serve = %v, want the accept error after 6 tries", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("Serve still retrying after %d failed accepts", fl.calls.Load())
	}
	if n := fl.calls.Load(); n != 6 {
		t.Errorf("Accept called %d times, want 6", n)
	}
}

func TestListenLeavesWhatIsNotASocket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	sub := filepath.Join(dir, "dir")
	link := filepath.Join(dir, "link")
	if err := os.WriteFile(file, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	for path, kind := range map[string]string{file: "a regular file", sub: "a directory", link: "a symbolic link"} {
		ln, err := Listen(path)
		if err == nil {
			ln.Close()
		}
		if err == nil || !strings.Contains(err.Error(), path+": "+kind+" is there, not a socket") {
			t.Errorf("Listen(%s) = %v, want a refusal naming %s", path, err, kind)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("%s removed: %v", kind, err)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != "precious" {
		t.Errorf("file content now %q", b)
	}
}

func TestReloadVerdict(t *testing.T) {
	path := serve(t, &Server{Handler: func(_ context.Context, cmd string) (any, error) {
		if cmd != Reload {
			return nil, errors.New("unknown command " + cmd)
		}
		return nil, nil
	}})
	if err := query(t, path, Reload, nil); err != nil {
		t.Errorf("Query(reload) = %v, want success", err)
	}
	refuse := serve(t, &Server{Handler: func(context.Context, string) (any, error) {
		return nil, errors.New("/etc/mptcpgd.toml:3: routing.protocol: changed")
	}})
	var refusal *Refusal
	err := query(t, refuse, Reload, nil)
	if !errors.As(err, &refusal) || refusal.Reason != "/etc/mptcpgd.toml:3: routing.protocol: changed" {
		t.Errorf("Query(reload) refused = %v, want a Refusal with the daemon's reason", err)
	}
}

// TestQueryPermissionDenied: a user who may not open the socket is told
// so, not that no daemon answers.
func TestQueryPermissionDenied(t *testing.T) {
	lab.Require(t) // root, to act as another user
	path := serve(t, &Server{Handler: status})
	for _, d := range []string{filepath.Dir(filepath.Dir(path)), filepath.Dir(path)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	lab.AsUser(t, 65534, func() { err = query(t, path, Status, new(string)) })
	if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "run this as root") {
		t.Errorf("Query as another user = %v, want permission denied and the fix", err)
	}
}
