// Package control is the daemon's control socket: a Unix stream socket on
// which `mptcpgd show` asks the running daemon for its live view. One JSON
// request line, one JSON reply, then the connection closes.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DefaultPath is the socket under systemd's RuntimeDirectory=mptcpgd.
const DefaultPath = "/run/mptcpgd/control.sock"

type request struct {
	Command string `json:"command"`
}

type reply struct {
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Listen creates the socket at path, readable and writable by its owner
// only. A socket file nobody answers on (left by a crash) is replaced; one
// that answers belongs to a running daemon and is an error.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create control socket %s: %w", path, err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s answers: another mptcpgd runs there (give this one --socket)", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale control socket %s: %w", path, err)
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

// Handler answers one command with a JSON-encodable result.
type Handler func(ctx context.Context, command string) (any, error)

// Serve answers requests on ln until ctx is done, then closes ln (which
// removes the socket file).
func Serve(ctx context.Context, ln net.Listener, h Handler) {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go serveOne(ctx, c, h)
	}
}

func serveOne(ctx context.Context, c net.Conn, h Handler) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var req request
	line, err := bufio.NewReader(io.LimitReader(c, 64<<10)).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	var rep reply
	if err != nil {
		rep.Error = "bad request: " + err.Error()
	} else if res, err := h(ctx, req.Command); err != nil {
		rep.Error = err.Error()
	} else if rep.Result, err = json.Marshal(res); err != nil {
		rep.Error = "encode reply: " + err.Error()
	}
	_ = json.NewEncoder(c).Encode(rep)
}

// Query sends command to the daemon at path and decodes its result into
// out.
func Query(ctx context.Context, path, command string, out any) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
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
		return fmt.Errorf("mptcpgd on %s: %s", path, rep.Error)
	}
	if err := json.Unmarshal(rep.Result, out); err != nil {
		return fmt.Errorf("query mptcpgd on %s: decode reply: %w", path, err)
	}
	return nil
}
