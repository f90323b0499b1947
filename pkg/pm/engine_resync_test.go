package pm

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/rtnl"
)

func TestEngineOverflowResyncs(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, nil)
	// A change the watcher never reported, then an overflow.
	k.change(netstate.Update{Kind: netstate.AddrUpdate, Addr: netstate.Addr{IfIndex: 3, Addr: netip.MustParseAddr("198.51.100.3"), Prefix: netip.MustParsePrefix("198.51.100.3/24")}})
	h.w.ch <- watchItem{err: rtnl.ErrOverflow}
	h.waitFor("the unreported address managed after the resync", hasAddrs("192.0.2.2", "198.51.100.2", "198.51.100.3"))
	if h.logs.FilterMessage("full resync").FilterField(zap.String("reason", "rtnetlink overflow")).Len() != 1 {
		t.Errorf("want one resync logged for the overflow")
	}
}

// The safety-net timer re-reads the MPTCP state on every tick and
// everything on every tenth: links, addresses, routes and rules have
// events of their own.
func TestEngineSafetyNetIsFullEveryTenthTick(t *testing.T) {
	k := newFakeKernel(clientNet())
	h := startEngine(t, parseConfig(t, "[daemon]\nresync_interval = \"1s\"\n"), k, &memStore{}, nil)
	for range 25 {
		h.settle()
		h.clock.Advance(time.Second)
		time.Sleep(time.Millisecond)
	}
	h.settle()
	checks := h.logs.FilterMessage("safety-net check of the MPTCP endpoints and limits").Len()
	full := h.logs.FilterMessage("full resync").FilterField(zap.String("reason", "safety-net timer")).Len()
	if ticks := checks + full; ticks < 20 || full != ticks/fullEvery {
		t.Errorf("%d ticks: %d checks, %d full resyncs; want one full resync every %d", ticks, checks, full, fullEvery)
	}
}

// MPTCP switched off while running is noticed at the next resync, said
// once, shown in the status and the summary, and noticed again when it
// comes back.
func TestEngineNoticesMPTCPDisabled(t *testing.T) {
	k := newFakeKernel(clientNet())
	var mu sync.Mutex
	var off error
	var summaries []string
	h := startEngine(t, parseConfig(t, ""), k, &memStore{}, func(o *Options) {
		o.Enabled = func() error { mu.Lock(); defer mu.Unlock(); return off }
		o.OnSummary = func(s string) { mu.Lock(); defer mu.Unlock(); summaries = append(summaries, s) }
	})
	set := func(err error) { mu.Lock(); off = err; mu.Unlock() }
	set(errors.New("MPTCP is disabled in this network namespace (net.mptcp.enabled=0)"))
	for range 2 {
		h.e.Resync("test")
	}
	st := h.waitStatus("MPTCP off noticed", func(st Status) bool { return st.Disabled != "" })
	if !strings.Contains(st.Disabled, "net.mptcp.enabled=0") {
		t.Errorf("status says %q", st.Disabled)
	}
	h.settle()
	mu.Lock()
	last := summaries[len(summaries)-1]
	mu.Unlock()
	if !strings.Contains(last, "MPTCP disabled") {
		t.Errorf("summary %q does not say MPTCP is off", last)
	}
	set(nil)
	h.e.Resync("test")
	h.waitStatus("MPTCP back noticed", func(st Status) bool { return st.Disabled == "" })
	if n := h.logs.FilterMessageSnippet("MPTCP is off").Len(); n != 1 {
		t.Errorf("MPTCP off logged %d times, want once", n)
	}
	if h.logs.FilterMessage("MPTCP is enabled again").Len() != 1 {
		t.Error("MPTCP back not logged")
	}
}
