package pm

import (
	"slices"
	"sync"
	"testing"

	mp "github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

type countedMetrics struct {
	mu      sync.Mutex
	resyncs []string
	repairs int
}

func (c *countedMetrics) Resync(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resyncs = append(c.resyncs, reason)
}

func (c *countedMetrics) Repair() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.repairs++
}

func (c *countedMetrics) JoinRetry(string) {}

func (c *countedMetrics) get() ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.resyncs), c.repairs
}

// TestEngineCountsResyncsAndRepairs: a resync is counted with its reason,
// and a rule someone deleted and we put back is one repair.
func TestEngineCountsResyncsAndRepairs(t *testing.T) {
	k := newFakeKernel(clientNet())
	m := &countedMetrics{}
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, func(o *Options) { o.Metrics = m })
	deleteRuleAndWaitRestored(t, h, k)
	h.e.Resync("test")
	h.waitFor("the resync", func([]mp.Endpoint, mp.Limits, []string) bool {
		resyncs, _ := m.get()
		return slices.Contains(resyncs, "test")
	})
	resyncs, repairs := m.get()
	if !slices.Contains(resyncs, "test") || repairs != 1 {
		t.Errorf("counted resyncs %q and %d repairs, want a resync for \"test\" and 1 repair", resyncs, repairs)
	}
}
