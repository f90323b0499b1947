package lab

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fatalTB records a Fatalf and ends the goroutine as testing.T does.
type fatalTB struct {
	testing.TB
	fatal string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestTransferWaitFailsAStuckTransfer: a transfer whose only path is cut
// fails once it received nothing for its StallLimit, saying what the
// kernel shows of its sockets, instead of waiting for ever (the package
// timeout, whose dump names no cause).
func TestTransferWaitFailsAStuckTransfer(t *testing.T) {
	topo := NewTopology(t, TopologyOptions{Variant: Static, RateMbit: 50})
	tr := StartTransfer(t, topo, topo.ServerAddr(V4), 1<<30)
	tr.StallLimit = 2 * time.Second
	WaitFor(t, 10*time.Second, "the first bytes at the server", func() error {
		if read, _ := tr.meter.Progress(); read == 0 {
			return fmt.Errorf("nothing read")
		}
		return nil
	})
	topo.CablePull(0)
	// Plugged back afterwards so that the server's reader sees the end.
	t.Cleanup(func() { topo.CablePlug(0) })

	rec := &fatalTB{TB: t}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.Wait(rec)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Wait still waits 30 s after the only path was cut, with a stall limit of 2 s")
	}
	for _, want := range []string{"the transfer is stuck: nothing received for", "of 1073741824 bytes", "ss -tMni", "ip mptcp endpoint show"} {
		if !strings.Contains(rec.fatal, want) {
			t.Errorf("Wait failed the transfer with %q, want it to contain %q", rec.fatal, want)
		}
	}
	t.Logf("Wait gave up %v after the cut: %s", time.Since(start).Round(time.Millisecond), rec.fatal)
}
