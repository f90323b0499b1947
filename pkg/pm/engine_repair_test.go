package pm

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	mp "github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
)

func TestEngineRetriesFailedWriteAndLogsOnce(t *testing.T) {
	k := newFakeKernel(clientNet())
	k.failAdd = 4
	h := startEngine(t, parseConfig(t, "[daemon]\nresync_interval = \"0s\"\n"), k, &memStore{}, nil)
	h.advanceUntil("both endpoints after retries", 10*time.Second, hasAddrs("192.0.2.2", "198.51.100.2"))
	warns := h.logs.FilterMessage("kernel write failed, will retry").All()
	perOp := map[string]int{}
	for _, w := range warns {
		perOp[w.ContextMap()["op"].(string)]++
	}
	for op, n := range perOp {
		if n != 1 {
			t.Errorf("%q logged %d warnings for one cause, want 1", op, n)
		}
	}
	if len(perOp) == 0 {
		t.Error("no failure was logged")
	}
	if h.logs.FilterMessage("full resync").Len() != 0 {
		t.Error("a failed write triggered a resync")
	}
}

func TestEngineRepairsFlushAndRuleDeletion(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, nil)
	k.Flush()
	h.e.Resync("test")
	h.waitFor("endpoints restored after a flush", hasAddrs("192.0.2.2", "198.51.100.2"))

	deleteRuleAndWaitRestored(t, h, k)
}

// deleteRuleAndWaitRestored deletes our rule for 192.0.2.2 as someone
// else would, and waits for the engine to put it back.
func deleteRuleAndWaitRestored(t *testing.T, h *harness, k *fakeKernel) {
	t.Helper()
	r := netstate.Rule{Priority: 10000, Src: netip.MustParsePrefix("192.0.2.2/32"), Table: 10002, Protocol: 177}
	_, _, log := k.snapshot()
	n := len(log)
	if err := k.DeleteRule(r); err != nil {
		t.Fatal(err)
	}
	h.w.send(netstate.Update{Kind: netstate.RuleUpdate, Deleted: true, Rule: r})
	h.waitFor("rule restored", func(_ []mp.Endpoint, _ mp.Limits, log []string) bool {
		return slices.Contains(log[n:], "add rule 192.0.2.2")
	})
}

// A competitor that removes our rule each time it is back does not drive
// an endless rewrite loop: after a few repairs they are held off, longer
// each time, and one warning says what keeps being undone and who may do
// it.
func TestEngineRepairsAreRateLimited(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, "[daemon]\nresync_interval = \"0s\"\n"), k, &memStore{}, func(o *Options) {
		o.Competitor = func() string { return "NetworkManager is running" }
	})
	r := netstate.Rule{Priority: 10000, Src: netip.MustParsePrefix("192.0.2.2/32"), Table: 10002, Protocol: 177}
	heldOff := false
	for range 30 {
		h.settle()
		k.mu.Lock()
		_, there := k.net.Rules[r]
		k.mu.Unlock()
		if there {
			if err := k.DeleteRule(r); err != nil {
				t.Fatal(err)
			}
			h.w.send(netstate.Update{Kind: netstate.RuleUpdate, Deleted: true, Rule: r})
		}
		st := h.waitStatus("the removal taken in", func(Status) bool { return true })
		heldOff = heldOff || len(st.HeldOff) > 0
		h.clock.Advance(10 * time.Second)
		time.Sleep(time.Millisecond)
	}
	_, _, log := k.snapshot()
	if n := countOf(log, "add rule 192.0.2.2"); n < 5 || n > 8 {
		t.Errorf("the rule was written %d times in 5 minutes of removals, want 5 repairs and then about one per hold-off", n)
	}
	if !heldOff {
		t.Error("the status never showed the held-off repair")
	}
	warns := h.logs.FilterMessageSnippet("something keeps removing what mptcpgd writes").All()
	if len(warns) != 1 || warns[0].ContextMap()["suspect"] != "NetworkManager is running" {
		t.Errorf("warnings = %v, want one naming the suspect", warns)
	}
	if h.logs.FilterMessageSnippet("rule restored").Len() == 0 {
		t.Error("repairs were not logged as repairs")
	}
}

func countOf(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if l == s {
			n++
		}
	}
	return n
}
