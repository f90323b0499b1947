package daemon

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/connview"
	"github.com/mptcpgd/mptcpgd/pkg/logging"
)

// TestReadyOnlyOnceEverythingIsReady: READY=1 waits for every ready
// channel (the path manager's first reconcile, the connection view's
// first read), not only the first, and comes once all are closed.
func TestReadyOnlyOnceEverythingIsReady(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "")

	reconciled, viewRead := make(chan struct{}), make(chan struct{})
	close(reconciled)
	readied := make(chan struct{})
	n := &notifier{ready: []<-chan struct{}{reconciled, viewRead}, log: logging.Nop(),
		status: newStatusLine(connview.New()), onReady: func() { close(readied) }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	// Nothing is sent before READY=1; a message within this wait is a
	// READY=1 that came too early.
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 4096)
	if m, err := conn.Read(buf); err == nil {
		t.Fatalf("sent %q while the connection view was not read yet", buf[:m])
	}
	close(viewRead)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no READY=1 after everything was ready: %v", err)
	}
	if !strings.HasPrefix(string(buf[:m]), "READY=1") {
		t.Errorf("sent %q, want READY=1 first", buf[:m])
	}
	<-readied
}
