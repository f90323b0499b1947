package pm

import (
	"maps"
	"slices"

	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// resync re-reads everything: the network now, the endpoint table through
// the worker (so it is read after the writes queued before it).
func (e *Engine) resync(reason string) {
	lvl := logging.InfoLevel
	if reason == "safety-net timer" {
		lvl = logging.DebugLevel
	}
	e.log.Log(lvl, "full resync", logging.String("reason", reason))
	e.metrics().Resync(reason)
	e.lastResync = e.clock.Now()
	e.checkEnabled()
	if err := e.dumpNetwork(false); err != nil {
		e.log.Warn("resync failed, keeping the previous view", logging.Error(err))
	}
	e.enqueue(&op{kind: opDump})
	e.reconcile()
}

// safetyNet re-reads on the safety-net timer what the kernel announces no
// change of: the MPTCP endpoints and limits (`ip mptcp endpoint flush`
// has no event) and whether MPTCP is enabled; every fullEvery ticks,
// everything.
func (e *Engine) safetyNet() {
	e.ticks++
	if e.ticks%fullEvery == 0 {
		e.resync("safety-net timer")
		return
	}
	e.log.Debug("safety-net check of the MPTCP endpoints and limits")
	e.checkEnabled()
	e.enqueue(&op{kind: opDump})
}

// checkEnabled notes whether MPTCP is enabled in the namespace, and says so
// once per change. Endpoints, limits and routing are kept in line either
// way: when MPTCP comes back, connections find them ready.
func (e *Engine) checkEnabled() {
	if e.opt.Enabled == nil {
		return
	}
	why := ""
	if err := e.opt.Enabled(); err != nil {
		why = err.Error()
	}
	if why == e.disabled {
		return
	}
	if why != "" {
		e.log.Warn("MPTCP is off in this network namespace: new connections are plain TCP until it is enabled again", logging.String("reason", why))
	} else {
		e.log.Info("MPTCP is enabled again")
	}
	e.disabled = why
}

func (e *Engine) setKernel(eps []netlinkmptcp.Endpoint) {
	clear(e.kernel)
	for _, ep := range eps {
		e.kernel[ep.ID] = ep
	}
}

func (e *Engine) kernelList() []netlinkmptcp.Endpoint {
	ids := slices.Sorted(maps.Keys(e.kernel))
	out := make([]netlinkmptcp.Endpoint, 0, len(ids))
	for _, id := range ids {
		out = append(out, e.kernel[id])
	}
	return out
}
