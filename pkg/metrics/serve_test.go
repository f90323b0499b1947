package metrics

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// pipeListener hands out the server ends of in-memory connections.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.UnixAddr{Name: "pipe"} }

func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

// get sends request and returns the status line, headers and body.
func get(t *testing.T, l *pipeListener, request string) (string, textproto.MIMEHeader, string) {
	t.Helper()
	c := l.dial()
	defer c.Close()
	go io.WriteString(c, request)
	r := textproto.NewReader(bufio.NewReader(c))
	status, err := r.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.R)
	return status, h, string(body)
}

func TestServeHTTP(t *testing.T) {
	r := NewRegistry()
	r.Gauge("x_up", "Up.").Set(1)
	ctx, cancel := context.WithCancel(context.Background())
	l := newPipeListener()
	done := make(chan error)
	go func() {
		done <- ServeHTTP(ctx, l, func(context.Context) ([]byte, error) { return r.Text(), nil })
	}()

	status, h, body := get(t, l, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n")
	if status != "HTTP/1.1 200 OK" || h.Get("Content-Type") != ContentType || body != string(r.Text()) {
		t.Errorf("GET /metrics: %q %v %q", status, h, body)
	}
	if _, err := Parse([]byte(body)); err != nil {
		t.Error(err)
	}
	for req, want := range map[string]string{
		"GET / HTTP/1.1\r\n\r\n":            "HTTP/1.1 404 Not Found",
		"POST /metrics HTTP/1.1\r\n\r\n":    "HTTP/1.1 405 Method Not Allowed",
		"GET /metrics\r\n\r\n":              "HTTP/1.1 400 Bad Request",
		"GET /metrics?x=1 HTTP/1.0\r\n\r\n": "HTTP/1.1 200 OK",
	} {
		if status, _, _ := get(t, l, req); status != want {
			t.Errorf("%q: %q, want %q", req, status, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeHTTP after cancel: %v", err)
	}
}

func TestServeHTTPReportsGatherFailure(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := newPipeListener()
	go ServeHTTP(ctx, l, func(context.Context) ([]byte, error) { return nil, errors.New("engine busy") })
	if status, _, body := get(t, l, "GET /metrics HTTP/1.1\r\n\r\n"); status != "HTTP/1.1 503 Service Unavailable" || body != "engine busy\n" {
		t.Errorf("%q %q", status, body)
	}
}

func TestWriteTextfile(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "mptcpgd.prom")
	for _, text := range []string{"a 1\n", "a 2\n"} {
		if err := WriteTextfile(path, []byte(text)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != text {
			t.Errorf("read %q, %v; want %q", got, err, text)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != TextfileMode {
		t.Errorf("mode %v (%v), want %v under umask 0077", fi.Mode(), err, os.FileMode(TextfileMode))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := WriteTextfile(filepath.Join(dir, "missing", "x.prom"), nil); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("writing into a missing directory: %v", err)
	}
}
