package control

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestQueryServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "control.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode = %v, %v; want 0600", fi.Mode(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Serve(ctx, ln, func(_ context.Context, cmd string) (any, error) {
			if cmd != "status" {
				return nil, errors.New("unknown command " + cmd)
			}
			return map[string]int{"endpoints": 2}, nil
		})
		close(done)
	}()

	qctx, qcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer qcancel()
	var got map[string]int
	if err := Query(qctx, path, "status", &got); err != nil || got["endpoints"] != 2 {
		t.Errorf("Query(status) = %v, %v", got, err)
	}
	if err := Query(qctx, path, "bogus", &got); err == nil || !strings.Contains(err.Error(), "unknown command bogus") {
		t.Errorf("Query(bogus) = %v, want the handler's error", err)
	}
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "another mptcpgd") {
		t.Errorf("second Listen on a live socket = %v, want refusal", err)
	}
	cancel()
	<-done
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after Serve returned: %v", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	// A crashed daemon leaves the file behind without anyone listening.
	ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket file missing: %v", err)
	}
	ln, err = Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln.Close()
}

func TestQueryWithoutDaemon(t *testing.T) {
	err := Query(context.Background(), filepath.Join(t.TempDir(), "none.sock"), "status", new(any))
	if err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Errorf("Query without a daemon = %v, want an error naming the socket", err)
	}
}
