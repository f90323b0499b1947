// Package control is the daemon's control socket: a Unix stream socket on
// which `mptcpgd show` asks the running daemon for its live view and
// `mptcpgd reload` asks it to reload. One JSON request line, one JSON reply,
// then the connection closes.
package control

import (
	"bufio"
	"cmp"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultPath is the socket under systemd's RuntimeDirectory=mptcpgd.
const DefaultPath = "/run/mptcpgd/control.sock"

// Commands the daemon answers.
const (
	// Status: the live report (show.Report).
	Status = "status"
	// Reload: re-read the configuration and apply it; the reply is an
	// empty result, or the reason the configuration was refused.
	Reload = "reload"
	// Adopt: take over the foreign endpoints on managed addresses; the
	// reply lists them.
	Adopt = "adopt"
	// Rejoin: retry every failed join now.
	Rejoin = "rejoin"
	// Metrics: the current metrics in the Prometheus text format, as a
	// string.
	Metrics = "metrics"
)

// MaxRequest bounds a request line.
const MaxRequest = 64 << 10

type request struct {
	Command string `json:"command"`
}

type reply struct {
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Listen creates the socket at path, readable and writable by its owner
// only. A socket file nobody answers on (left by a crash) is replaced; one
// that answers belongs to a running daemon and is an error, and anything
// else at path (a file, a directory, a link) is left alone and an error.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create control socket %s: %w", path, err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s answers: another mptcpgd runs there (give this one --socket)", path)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("create control socket: %w", err)
	}
	// The live view names every connection's addresses: owner only.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("create control socket: %w", err)
	}
	return ln, nil
}

// removeStale removes the socket file at path, if there is one.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: %s is there, not a socket; it is left alone: remove it, or give --socket another path", path, fileKind(fi.Mode()))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale control socket %s: %w", path, err)
	}
	return nil
}

func fileKind(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case fs.ModeDir:
		return "a directory"
	case fs.ModeSymlink:
		return "a symbolic link"
	case fs.ModeNamedPipe:
		return "a named pipe"
	default:
		return "a device or special file"
	}
}

// Handler answers one command with a JSON-encodable result.
type Handler func(ctx context.Context, command string) (any, error)

// Defaults of a Server.
const (
	DefaultMaxConns       = 32
	DefaultRequestTimeout = 5 * time.Second
)

// Accept failures (EMFILE, ENFILE, ENOBUFS...) are retried after a delay
// that doubles from minBackoff to maxBackoff; after giveUp failures in a
// row, about half a minute, Serve gives up.
const (
	minBackoff = 10 * time.Millisecond
	maxBackoff = time.Second
	giveUp     = 30
)

// writeTimeout bounds writing a reply to a client that does not read it.
const writeTimeout = 10 * time.Second

// Server answers requests. Every connection must send its request within
// RequestTimeout; at most MaxConns are open at once, and when that many are
// open a new one takes the place of the one that has waited longest for its
// request (a client that asks, like `show`, is served even while idle
// connections pile up), or, when every one is being answered, it is told
// the daemon is busy.
type Server struct {
	Handler        Handler
	MaxConns       int           // DefaultMaxConns when 0
	RequestTimeout time.Duration // DefaultRequestTimeout when 0

	// Tests shorten the accept backoff.
	minBackoff, maxBackoff time.Duration
	giveUp                 int

	mu      sync.Mutex
	open    int
	waiting list.List // of *conn that have not sent their request, oldest first
}

// conn is an accepted connection.
type conn struct {
	net.Conn
	elem    *list.Element // in waiting, until the request is in
	evicted bool          // closed to make room; no longer counted
}

// Serve answers requests on ln with h until ctx is done, with the default
// bounds.
func Serve(ctx context.Context, ln net.Listener, h Handler) error {
	return (&Server{Handler: h}).Serve(ctx, ln)
}

// Serve answers requests on ln until ctx is done, then closes ln (which
// removes the socket file) and returns nil. When accepting keeps failing,
// or ln is closed under it, it returns the error: the daemon cannot be
// reached any more.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	minB, maxB, limit := cmp.Or(s.minBackoff, minBackoff), cmp.Or(s.maxBackoff, maxBackoff), cmp.Or(s.giveUp, giveUp)
	var delay time.Duration
	failures := 0
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("control socket %s: %w", ln.Addr(), err)
			}
			failures++
			if failures >= limit {
				return fmt.Errorf("control socket %s: accepting failed %d times in a row: %w", ln.Addr(), failures, err)
			}
			delay = min(max(2*delay, minB), maxB)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		failures, delay = 0, 0
		if c := s.admit(nc); c != nil {
			go s.serveOne(ctx, c)
		}
	}
}

// admit counts a new connection in, making room if it must. It returns nil
// when it told the client the daemon is busy.
func (s *Server) admit(nc net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open >= cmp.Or(s.MaxConns, DefaultMaxConns) {
		front := s.waiting.Front()
		if front == nil {
			go busy(nc, s.open)
			return nil
		}
		oldest := s.waiting.Remove(front).(*conn)
		oldest.elem, oldest.evicted = nil, true
		oldest.Close()
		s.open--
	}
	s.open++
	c := &conn{Conn: nc}
	c.elem = s.waiting.PushBack(c)
	return c
}

// busy tells a client that every connection is being answered. It reads
// the request first (briefly): closing with the request unread would reset
// the connection, and the client would see that instead.
func busy(c net.Conn, open int) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	_, _ = readRequest(c, time.Second)
	_ = json.NewEncoder(c).Encode(reply{Error: fmt.Sprintf("busy: %d requests are being answered; try again", open)})
}

// received takes c off the waiting list, and reports whether it was closed
// to make room meanwhile.
func (s *Server) received(c *conn) (evicted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.elem != nil {
		s.waiting.Remove(c.elem)
		c.elem = nil
	}
	return c.evicted
}

func (s *Server) done() {
	s.mu.Lock()
	s.open--
	s.mu.Unlock()
}

func (s *Server) serveOne(ctx context.Context, c *conn) {
	defer c.Close()
	timeout := cmp.Or(s.RequestTimeout, DefaultRequestTimeout)
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	cmd, err := readRequest(c, timeout)
	if s.received(c) {
		return
	}
	defer s.done()
	var rep reply
	if err != nil {
		rep.Error = err.Error()
	} else if res, err := s.Handler(ctx, cmd); err != nil {
		rep.Error = err.Error()
	} else if rep.Result, err = json.Marshal(res); err != nil {
		rep.Error = "encode reply: " + err.Error()
	}
	// The handler may take long (a reload): the deadline starts now.
	_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
	_ = json.NewEncoder(c).Encode(rep)
	if errors.Is(err, errTooLarge) {
		// Closing with unread bytes resets the connection, and the client
		// would read that instead of the reply: take what it still sends,
		// within bounds.
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 4*MaxRequest))
	}
}

var errTooLarge = fmt.Errorf("bad request: longer than %d KiB (a request is one JSON line)", MaxRequest>>10)

// readRequest reads one request line (or a request ended by the client's
// closing its side) of at most MaxRequest bytes.
func readRequest(c net.Conn, timeout time.Duration) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(c, MaxRequest+1)).ReadBytes('\n')
	var ne net.Error
	switch {
	case len(line) > MaxRequest:
		return "", errTooLarge
	case errors.As(err, &ne) && ne.Timeout():
		return "", fmt.Errorf("no request within %v", timeout)
	case err != nil && !errors.Is(err, io.EOF):
		return "", fmt.Errorf("bad request: %w", err)
	case err != nil && len(line) == 0:
		return "", errors.New("bad request: the connection closed before a request")
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return "", fmt.Errorf("bad request: %w", err)
	}
	return req.Command, nil
}

// Refusal is the daemon's answer when it did not do what was asked.
type Refusal struct {
	Socket string
	Reason string
}

func (r *Refusal) Error() string { return "mptcpgd on " + r.Socket + ": " + r.Reason }

// Query sends command to the daemon at path and decodes its result into
// out; a nil out ignores the result. When the daemon answers with an
// error, the error is a *Refusal.
func Query(ctx context.Context, path, command string, out any) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("query mptcpgd on %s: %w: the control socket is open to the daemon's user only; run this as root", path, err)
	}
	if err != nil {
		return fmt.Errorf("query mptcpgd on %s: %w", path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(request{Command: command}); err != nil {
		return fmt.Errorf("query mptcpgd on %s: %w", path, err)
	}
	var rep reply
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
		return fmt.Errorf("query mptcpgd on %s: read reply: %w", path, err)
	}
	if rep.Error != "" {
		return &Refusal{Socket: path, Reason: rep.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(rep.Result, out); err != nil {
		return fmt.Errorf("query mptcpgd on %s: decode reply: %w", path, err)
	}
	return nil
}
