package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
)

// mptcpgd reload reports the daemon's verdict: a refused configuration
// exits 1 naming the file and line, and the running one stays; an accepted
// one is applied.
func TestReloadCommandReportsTheVerdict(t *testing.T) {
	c := client(t)
	cfg := daemonlab.WriteConfig(t, "")
	d := daemonlab.Start(t, c, daemonlab.Options{Config: cfg})
	if err := os.WriteFile(cfg, []byte("[limits]\nsubflows = 12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := d.Run("reload")
	if exitCode(err) != 1 || !strings.Contains(stderr, cfg+":2: limits.subflows") {
		t.Errorf("reload of a bad file: exit %v, stderr %q; want exit 1 naming the file and line", err, stderr)
	}
	if err := os.WriteFile(cfg, []byte("[[interface]]\nmatch = \"eth2\"\nflags = [\"subflow\", \"backup\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := d.Run("reload"); err != nil {
		t.Fatalf("reload of a good file: %v: %s", err, stderr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(endpointShow(c), "198.51.100.2 id 2 subflow backup dev eth2") {
		if time.Now().After(deadline) {
			t.Fatalf("the reloaded flags were not applied:\n%s", endpointShow(c))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A hand-made endpoint on a managed address is left alone and explained;
// mptcpgd adopt lists it (--dry-run), then takes it over and converges it.
func TestAdoptTakesBackAHandMadeEndpoint(t *testing.T) {
	c := client(t)
	c.IP("mptcp", "endpoint", "add", "198.51.100.2", "id", "51", "signal", "dev", "eth2")
	d := daemonlab.Start(t, c, daemonlab.Options{})
	rep := d.Show()
	for _, e := range rep.Status.Endpoints {
		if e.ID == 51 && (e.Owner != pm.OwnerForeign || !e.Takeable) {
			t.Errorf("hand-made endpoint shown as %+v, want foreign and takeable", e)
		}
	}
	if got := endpointShow(c); !strings.Contains(got, "198.51.100.2 id 51 signal dev eth2") {
		t.Fatalf("the hand-made endpoint was changed:\n%s", got)
	}
	out, stderr, err := d.Run("adopt", "--dry-run")
	if err != nil || !strings.Contains(out, "would adopt endpoint 198.51.100.2 id 51 signal") {
		t.Fatalf("adopt --dry-run: %v, %q, %s", err, out, stderr)
	}
	out, stderr, err = d.Run("adopt")
	if err != nil || !strings.Contains(out, "adopted endpoint 198.51.100.2 id 51") {
		t.Fatalf("adopt: %v, %q, %s", err, out, stderr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Contains(endpointShow(c), "signal") || !strings.Contains(endpointShow(c), "198.51.100.2") {
		if time.Now().After(deadline) {
			t.Fatalf("the adopted endpoint was not converged to subflow:\n%s", endpointShow(c))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
