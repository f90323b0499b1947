package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
)

// TestWatchdogFedWhileAReloadReads (issue 11): a reload whose configuration
// takes long to read does not starve the watchdog. The configuration file
// becomes a FIFO that nobody writes, so the reload's read blocks for as
// long as the test wants; WATCHDOG=1 keeps coming meanwhile, and once the
// file is written the reload completes with the new configuration.
func TestWatchdogFedWhileAReloadReads(t *testing.T) {
	c := client(t)
	cfg := daemonlab.WriteConfig(t, "")
	d := daemonlab.Start(t, c, daemonlab.Options{Config: cfg, Env: []string{"WATCHDOG_USEC=400000"}})
	if err := os.Remove(cfg); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	d.Signal(syscall.SIGHUP)
	d.WaitNotify("RELOADING=1", 10*time.Second)
	// Nothing has written the FIFO: the reload is still reading.
	for range 3 {
		d.WaitNotify("WATCHDOG=1", 10*time.Second)
	}
	// Without blocking: a FIFO that no reader holds open refuses (ENXIO),
	// which says the reload was not reading it.
	f, err := os.OpenFile(cfg, os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatalf("the reload is not reading its configuration while the watchdog was fed: %v", err)
	}
	if _, err := f.WriteString("[[interface]]\nmatch = \"eth2\"\nflags = [\"subflow\", \"backup\"]\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	d.WaitNotify("READY=1", 10*time.Second)
	eventually(t, "eth2 backup after the slow reload", func() bool {
		return strings.Contains(endpointShow(c), "198.51.100.2 id") && strings.Contains(endpointShow(c), "subflow backup")
	})
}
