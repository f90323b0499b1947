package pm

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
)

// Neighbours reads and resolves the gateways' neighbour entries
// (rtnl.Conn).
type Neighbours interface {
	Neighbour(ifindex int, addr netip.Addr) (netstate.NeighState, bool, error)
	Resolve(ifindex int, addr netip.Addr) error
	// Reprobe restarts the resolution of an unresolved entry with a probe
	// now (rtnl.Conn.Reprobe).
	Reprobe(ifindex int, addr netip.Addr) error
}

// NeighbourWatcher switches neighbour notifications on and off; a Watcher
// that implements it (rtnl.Watcher) delivers them as NeighUpdates.
type NeighbourWatcher interface {
	WatchNeighbours(on bool) error
}

// DefaultGatewayTimeout bounds the wait for a gateway to answer: then the
// endpoint is added anyway, with one warning.
const DefaultGatewayTimeout = 30 * time.Second

// The gate's own probes of a gateway it waits for. Left alone, the kernel
// probes an unresolved entry once a second, starting from the first packet
// that needed it, often while the link was still down, and a probe sent the
// moment the carrier returns can come before the path answers: either way
// the gateway's answer waits up to a second for the next probe. The gate
// probes again reprobeFirst after the wait began, then at doubling
// intervals up to reprobeMax, until the wait ends: two ARP requests (or
// neighbour solicitations) a second at most.
const (
	reprobeFirst = 100 * time.Millisecond
	reprobeMax   = 500 * time.Millisecond
)

type neighKey struct {
	ifindex int
	addr    netip.Addr
}

type gatewayWait struct {
	ifname string
	since  time.Time
	state  netstate.NeighState
	// probeAt is when the gate probes again, after probeGap; probeFailed
	// says a failure to ask for that was logged (once per wait).
	probeAt     time.Time
	probeGap    time.Duration
	probeFailed bool
}

// gatewayGate holds an endpoint's (re-)addition while its gateway's
// neighbour entry is unusable (docs/architecture.md, "Rejoin"): after an
// outage the entry is often FAILED, and a join SYN sent into it fails at
// once with EHOSTUNREACH, after which the in-kernel path manager never
// tries again. The gate starts resolution itself (NTF_USE), follows the
// entry, and opens when the gateway answers, or after a timeout.
type gatewayGate struct {
	neigh   Neighbours
	watch   NeighbourWatcher
	log     *logging.Logger
	timeout time.Duration
	waits   map[neighKey]*gatewayWait
	// expired are the waits that timed out; each was warned about once.
	expired  map[neighKey]bool
	watching bool
}

func newGatewayGate(n Neighbours, w NeighbourWatcher, log *logging.Logger, timeout time.Duration) *gatewayGate {
	return &gatewayGate{neigh: n, watch: w, log: log, timeout: timeout, waits: map[neighKey]*gatewayWait{}, expired: map[neighKey]bool{}}
}

// open tells whether an endpoint whose interface has gateway gw may be
// added now, and if not, why. Interfaces without a gateway (point-to-point,
// an on-link default route, none) are not gated. A gateway installed
// on-link (the cloud /32 case) is: it has a neighbour entry like any other,
// which fails the same way after an outage. A gateway whose entry is absent
// or usable opens at once, so the fast path asks the kernel once and waits
// for nothing.
func (g *gatewayGate) open(gw srcroute.Gateway, now time.Time) (bool, string) {
	if g == nil || !gw.Addr.IsValid() {
		return true, ""
	}
	k := neighKey{gw.IfIndex, gw.Addr}
	if w, ok := g.waits[k]; ok {
		if now.Sub(w.since) < g.timeout {
			if !now.Before(w.probeAt) {
				g.reprobe(k, w)
				w.probeGap = min(2*w.probeGap, reprobeMax)
				w.probeAt = now.Add(w.probeGap)
			}
			return false, g.waitText(gw, w)
		}
		g.release(k)
		if !g.expired[k] {
			g.expired[k] = true
			g.log.Warn("gateway did not answer in time: adding its endpoint anyway", logging.String(logging.FieldIface, gw.IfName),
				logging.Stringer(logging.FieldGateway, gw.Addr), logging.Stringer("state", w.state), logging.Duration("waited", now.Sub(w.since)))
		}
		return true, ""
	}
	if g.expired[k] {
		return true, ""
	}
	st, ok, err := g.neigh.Neighbour(gw.IfIndex, gw.Addr)
	if err != nil {
		g.log.Debug("reading the gateway's neighbour entry failed; not waiting for it", logging.Stringer(logging.FieldGateway, gw.Addr), logging.Error(err))
		return true, ""
	}
	if !ok || st.Usable() {
		return true, ""
	}
	w := &gatewayWait{ifname: gw.IfName, since: now, state: st, probeAt: now.Add(reprobeFirst), probeGap: reprobeFirst}
	g.waits[k] = w
	g.setWatching(true)
	if st&netstate.NeighIncomplete != 0 {
		// Its probes may have gone out while the link was down.
		g.reprobe(k, w)
	} else {
		g.resolve(k)
	}
	g.log.Info("waiting for the gateway to answer before adding its endpoint", logging.String(logging.FieldIface, gw.IfName),
		logging.Stringer(logging.FieldGateway, gw.Addr), logging.Stringer("state", st))
	return false, g.waitText(gw, w)
}

func (g *gatewayGate) waitText(gw srcroute.Gateway, w *gatewayWait) string {
	proto := "ARP"
	if gw.Addr.Is6() {
		proto = "neighbour discovery"
	}
	return fmt.Sprintf("waiting for gateway %s to answer %s since %s (%s)", gw.Addr, proto, w.since.Format(time.TimeOnly), w.state)
}

// neighbour takes in a neighbour change; it reports whether a wait ended,
// so the engine decides again. A gateway that failed again is resolved
// again: the wait is bounded by the timeout, not by the kernel's probes.
func (g *gatewayGate) neighbour(n netstate.Neigh) bool {
	if g == nil {
		return false
	}
	k := neighKey{n.IfIndex, n.Addr}
	w, ok := g.waits[k]
	if !ok {
		return false
	}
	w.state = n.State
	if n.State.Usable() {
		g.log.Info("gateway answers", logging.String(logging.FieldIface, w.ifname), logging.Stringer(logging.FieldGateway, n.Addr), logging.Stringer("state", n.State))
		g.release(k)
		return true
	}
	if n.State&netstate.NeighFailed != 0 {
		g.resolve(k)
	}
	return false
}

func (g *gatewayGate) resolve(k neighKey) {
	if err := g.neigh.Resolve(k.ifindex, k.addr); err != nil {
		g.log.Warn("asking the kernel to resolve the gateway failed", logging.Stringer(logging.FieldGateway, k.addr), logging.Error(err))
	}
}

func (g *gatewayGate) reprobe(k neighKey, w *gatewayWait) {
	if err := g.neigh.Reprobe(k.ifindex, k.addr); err != nil && !w.probeFailed {
		w.probeFailed = true
		g.log.Warn("asking the kernel to probe the gateway again failed", logging.Stringer(logging.FieldGateway, k.addr), logging.Error(err))
	}
}

func (g *gatewayGate) release(k neighKey) {
	delete(g.waits, k)
	if len(g.waits) == 0 {
		g.setWatching(false)
	}
}

// forget ends the waits of gateways no endpoint waits for any more, and the
// memory of timed-out ones, so that a later outage is gated again.
func (g *gatewayGate) forget(wanted map[neighKey]bool) {
	if g == nil {
		return
	}
	for k := range g.waits {
		if !wanted[k] {
			g.release(k)
		}
	}
	for k := range g.expired {
		if !wanted[k] {
			delete(g.expired, k)
		}
	}
}

func (g *gatewayGate) setWatching(on bool) {
	if g.watch == nil || g.watching == on {
		return
	}
	if err := g.watch.WatchNeighbours(on); err != nil {
		g.log.Warn("switching neighbour notifications failed", logging.Bool("on", on), logging.Error(err))
		return
	}
	g.watching = on
}

// next is when the gate next probes a gateway or a wait times out, zero if
// none waits.
func (g *gatewayGate) next() time.Time {
	var t time.Time
	if g == nil {
		return t
	}
	for _, w := range g.waits {
		for _, at := range []time.Time{w.since.Add(g.timeout), w.probeAt} {
			if t.IsZero() || at.Before(t) {
				t = at
			}
		}
	}
	return t
}
