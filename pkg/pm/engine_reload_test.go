package pm

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	mp "github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

func TestEngineReloadChangesFlagsInPlace(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, nil)
	before, _, log := k.snapshot()
	n := len(log)
	if err := h.e.Reload(context.Background(), parseConfig(t, "[[interface]]\nmatch = \"eth2\"\nflags = [\"subflow\", \"backup\"]\n")); err != nil {
		t.Fatal(err)
	}
	h.waitFor("backup flag set", func(eps []mp.Endpoint, _ mp.Limits, _ []string) bool {
		return slices.ContainsFunc(eps, func(e mp.Endpoint) bool { return e.Flags&mp.FlagBackup != 0 })
	})
	after, _, log := k.snapshot()
	for _, l := range log[n:] {
		if strings.HasPrefix(l, "delete endpoint") || strings.HasPrefix(l, "add endpoint") {
			t.Errorf("reload re-created an endpoint: %q", l)
		}
	}
	for i := range before {
		if before[i].ID != after[i].ID {
			t.Errorf("ids changed: %v -> %v", before, after)
		}
	}
	// Unmanaging a working interface deletes its endpoint but leaves the
	// connections' initial subflows from it alone.
	if err := h.e.Reload(context.Background(), parseConfig(t, "[endpoints]\ninclude = [\"eth1\"]\n")); err != nil {
		t.Fatal(err)
	}
	h.waitFor("eth2 no longer managed", hasAddrs("192.0.2.2"))
	h.stop()
	if _, _, log := k.snapshot(); slices.ContainsFunc(log, func(s string) bool { return strings.HasPrefix(s, "close initial") }) {
		t.Errorf("initial subflows closed although the address still works:\n%s", strings.Join(log, "\n"))
	}
	h = startEngine(t, parseConfig(t, ""), k, &memStore{}, nil)
	if err := h.e.Reload(context.Background(), parseConfig(t, "[routing]\nprotocol = 178\n")); err == nil || !strings.Contains(err.Error(), "routing.protocol") {
		t.Errorf("reload changing the protocol = %v, want an error naming routing.protocol", err)
	}
}

func TestEngineReloadAppliesTheResyncInterval(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, "[daemon]\nresync_interval = \"0s\"\n"), k, &memStore{}, nil)
	if err := h.e.Reload(context.Background(), parseConfig(t, "[daemon]\nresync_interval = \"1s\"\n")); err != nil {
		t.Fatal(err)
	}
	h.waitStatus("the reload's own resync done", func(st Status) bool { return st.Pending == 0 })
	// A flush behind our back is repaired only by the safety-net resync,
	// which the reload switched on.
	k.Flush()
	h.advanceUntil("endpoints restored by the timer", time.Second, hasAddrs("192.0.2.2", "198.51.100.2"))
	if n := h.logs.FilterMessage("safety-net check of the MPTCP endpoints and limits").Len(); n == 0 {
		t.Error("no safety-net check logged after the reload set an interval")
	}
}
