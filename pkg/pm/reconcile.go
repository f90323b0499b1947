package pm

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
)

// reconcile decides what the kernel should hold and starts the writes that
// get it there: routing inline (fast, its own lock), endpoints and limits
// through the worker.
func (e *Engine) reconcile() {
	now := e.clock.Now()
	e.obs.expireFirstSeen(now, e.opt.GatewayWait)
	in := Input{
		Config:      e.cfg,
		Net:         e.net,
		Kernel:      e.kernelList(),
		Records:     e.own.endpoints(),
		HeldUntil:   e.obs.heldUntil(e.net, now),
		Now:         now,
		FirstSeen:   e.obs.firstSeen,
		GatewayWait: e.opt.GatewayWait,
		Left:        e.left,
		LeftAsOf:    e.leftAsOf,
	}
	if e.opt.ARP != nil {
		in.ARP = e.obs.arp
	}
	d := Decide(in)
	e.logOverCap(d)
	if d.WaitingForNetworkManager && e.opt.AskNetworkManager != nil {
		e.opt.AskNetworkManager()
	}

	rp := PlanRouting(d.Routing.Rules, d.Routing.Routes, e.net, e.owners)
	e.routing.apply(rp, e.net, now, e.later)
	e.recordRouting()
	holdUnrouted(&d, in.Kernel, e.net, e.retry.cause)
	e.holdUngated(&d, in.Kernel, now)
	e.decision = d
	e.planEndpoints(d, in.Kernel, now)
	e.planLimits(d, now)
	for _, f := range e.deferred {
		f()
	}
	clear(e.deferred)
	e.deferred = e.deferred[:0]
	e.warnings.update(append(slices.Clip(d.Warnings), conflictWarnings(rp, e.net, e.cfg.Routing.Protocol)...))
	e.retry.sweep()
	e.updateSummary()
	e.checkReady()
	e.armTimer(now, in.HeldUntil, WaitingUntil(in))
}

// recordRouting records the routing settings in use once nothing that
// earlier settings tagged is left.
func (e *Engine) recordRouting() {
	if len(e.owners) > 1 && !leftBehind(e.net, e.owners[1:], e.owners[:1]) {
		e.owners = e.owners[:1]
	}
	if len(e.owners) == 1 {
		e.own.noteRouting(recordOf(e.owners[0]))
	}
}

// prune forgets the records of endpoints that left the kernel's table: we
// did not delete them, so someone else did, and putting them back is a
// repair.
func (e *Engine) prune() {
	for _, r := range e.own.prune(e.kernel) {
		e.repairs.drift(addKey(r.Addr))
	}
}

// later defers a log line until the reconcile has handed its endpoint
// writes to the worker: writing a log line is a system call, and an address
// waiting for its endpoint should not wait for it.
func (e *Engine) later(f func()) { e.deferred = append(e.deferred, f) }

// conflictWarnings are the routes left unwritten because their place holds
// a route that is not ours.
func conflictWarnings(p RoutingPlan, net netstate.State, protocol uint8) []Warning {
	var out []Warning
	for _, r := range p.Conflicts {
		w := Warning{Kind: WarnRouteConflict,
			Message: fmt.Sprintf("route %s is not written: table %d already holds a route there that is not ours (protocol %d tags ours)", r, r.Table, protocol)}
		if len(r.NextHops) > 0 {
			w.Iface = net.Links[r.NextHops[0].IfIndex].Name
		}
		out = append(out, w)
	}
	return out
}

// planEndpoints withdraws the queued endpoint writes the decision no longer
// wants and queues the ones scheduleEndpoints picks.
func (e *Engine) planEndpoints(d Decision, kernel []netlinkmptcp.Endpoint, now time.Time) {
	p := PlanEndpoints(d.Endpoints, kernel, d.Owned)
	for _, o := range unwantedOps(d.Endpoints, p, &e.pending) {
		if e.queue.cancel(o.seq) {
			e.pending.done(o)
		}
	}
	e.reAdd(&p, d)
	for _, ep := range p.Keep {
		e.own.record(ep)
	}
	for _, fc := range p.SetFlags {
		e.own.record(fc.Endpoint)
	}
	s := scheduleEndpoints(scheduleInput{
		Plan:    p,
		Kernel:  kernel,
		Pending: &e.pending,
		Ready:   func(k opKey) bool { return e.retry.ready(k, now) && e.repairs.allowed(k, now) },
		Dead:    e.deadAddress,
	})
	for _, o := range s.queue {
		if o.kind == opAdd {
			// From now on the kernel may try joins from it: a failure the
			// view reports before the result comes back counts.
			e.since[o.add.Addr] = now
		}
		e.enqueue(o)
	}
}

// reAdd turns the kept endpoints that join supervision asked to re-add
// into a removal and an addition: the only retry the in-kernel path manager
// offers, as a new endpoint is applied to every established connection.
func (e *Engine) reAdd(p *EndpointPlan, d Decision) {
	if len(e.readd) == 0 {
		return
	}
	want := map[netip.Addr]Endpoint{}
	for _, w := range d.Endpoints {
		want[w.Addr] = w
	}
	kept := p.Keep[:0]
	for _, ep := range p.Keep {
		w, wanted := want[ep.Addr]
		if !e.readd[ep.Addr] || !wanted || e.pending.dels[ep.ID] != nil {
			kept = append(kept, ep)
			continue
		}
		delete(e.readd, ep.Addr)
		p.Delete = append(p.Delete, ep)
		p.Add = append(p.Add, w)
		e.log.Info("re-adding endpoint so that connections that lack it join again", logging.String(logging.FieldIface, w.IfName),
			logging.Stringer(logging.FieldAddr, ep.Addr), logging.Uint8(logging.FieldEndpointID, ep.ID))
	}
	p.Keep = kept
	for a := range e.readd {
		if _, ok := want[a]; !ok {
			delete(e.readd, a)
		}
	}
}

// holdUngated holds back the additions whose gateway does not answer yet
// (gatewayGate): the source routing is in place, the endpoint waits.
func (e *Engine) holdUngated(d *Decision, kernel []netlinkmptcp.Endpoint, now time.Time) {
	if e.gate == nil {
		return
	}
	present := map[netip.Addr]bool{}
	for _, ep := range kernel {
		if d.Owned[ep.ID] {
			present[ep.Addr] = true
		}
	}
	wanted := map[neighKey]bool{}
	kept := d.Endpoints[:0]
	for _, ep := range d.Endpoints {
		gw := gatewayOf(d, ep)
		if gw.Addr.IsValid() {
			wanted[neighKey{gw.IfIndex, gw.Addr}] = true
		}
		if present[ep.Addr] {
			kept = append(kept, ep)
			continue
		}
		ok, why := e.gate.open(gw, now)
		if ok {
			kept = append(kept, ep)
			continue
		}
		d.hold(ep.Addr, why)
	}
	d.Endpoints = kept
	e.gate.forget(wanted)
}

// deadAddress tells whether an endpoint's address can no longer carry
// traffic: it is gone, or its link is gone or has no carrier.
func (e *Engine) deadAddress(ep netlinkmptcp.Endpoint) bool {
	link, ok := endpointLink(e.net, ep)
	if !ok || !link.Carrier() {
		return true
	}
	_, present := e.net.Addrs[netstate.AddrKey{IfIndex: link.Index, Addr: ep.Addr}]
	return !present
}

func (e *Engine) planLimits(d Decision, now time.Time) {
	if !e.retry.ready(limitsKey, now) || d.Limits == e.limits {
		return
	}
	if pl := e.pending.limits; pl != nil {
		if pl.limits == d.Limits || !e.queue.cancel(pl.seq) {
			return
		}
		e.pending.done(pl)
	}
	e.enqueue(&op{kind: opSetLimits, limits: d.Limits})
}

func (e *Engine) enqueue(o *op) {
	e.seq++
	o.seq = e.seq
	e.pending.note(o)
	e.queue.enqueue(o)
	if o.kind == opAdd {
		// The daemon runs on one P: without a yield the worker would
		// write the endpoint only once the engine blocks, after the
		// rest of its bookkeeping.
		runtime.Gosched()
	}
}

// handleResult takes in o and every result already queued behind it, then
// decides once: a burst's writes cost one decision per batch, not one per
// endpoint.
func (e *Engine) handleResult(o *op) {
	for {
		e.takeResult(o)
		select {
		case o = <-e.results:
			continue
		default:
		}
		break
	}
	e.reconcile()
}

// takeResult records what a kernel write did.
func (e *Engine) takeResult(o *op) {
	now := e.clock.Now()
	e.pending.done(o)
	switch o.kind {
	case opAdd:
		k := addKey(o.add.Addr)
		if o.err != nil {
			if o.endpoints != nil {
				e.setKernel(o.endpoints)
			}
			e.retry.failed(k, o.err, now)
			break
		}
		e.retry.succeeded(k)
		e.kernel[o.stored.ID] = o.stored
		e.own.record(o.stored)
		e.superviseSoon()
		msg := "endpoint added"
		if e.repairs.done(k, now) {
			msg = "endpoint restored (someone else removed it)"
		}
		e.log.Info(msg, logging.String(logging.FieldIface, o.add.IfName), logging.Stringer(logging.FieldAddr, o.add.Addr),
			logging.Uint8(logging.FieldEndpointID, o.stored.ID), logging.Stringer(logging.FieldFlags, o.stored.Flags), logging.Duration("took", o.took))
	case opDelete:
		k := deleteKey(o.target.ID)
		if o.err != nil && !errors.Is(o.err, netlinkmptcp.ErrNotFound) {
			e.retry.failed(k, o.err, now)
			break
		}
		e.retry.succeeded(k)
		delete(e.kernel, o.target.ID)
		e.own.unrecord(o.target.ID)
		e.log.Info("endpoint removed", logging.String(logging.FieldIface, e.ifName(o.target)),
			logging.Stringer(logging.FieldAddr, o.target.Addr), logging.Uint8(logging.FieldEndpointID, o.target.ID), logging.Duration("took", o.took))
	case opSetFlags:
		k := flagsKey(o.target.ID)
		if o.err != nil {
			e.retry.failed(k, o.err, now)
			break
		}
		e.retry.succeeded(k)
		ep := e.kernel[o.target.ID]
		ep.Flags = ep.Flags&^settableFlags | o.flags
		e.kernel[o.target.ID] = ep
		e.log.Info("endpoint flags changed", logging.Stringer(logging.FieldAddr, ep.Addr), logging.Uint8(logging.FieldEndpointID, ep.ID), logging.Stringer(logging.FieldFlags, ep.Flags))
	case opSetLimits:
		if o.err != nil {
			e.retry.failed(limitsKey, o.err, now)
			break
		}
		e.retry.succeeded(limitsKey)
		e.limits = o.limits
		e.log.Info("limits set", logging.Uint32("subflows", o.limits.Subflows), logging.Uint32("add_addr_accepted", o.limits.AddAddrAccepted))
	case opCloseInitial:
		if o.err != nil && !errors.Is(o.err, netlinkmptcp.ErrNotFound) {
			e.log.Warn("closing initial subflows from a dead address failed", logging.Stringer(logging.FieldAddr, o.target.Addr), logging.Error(o.err))
			break
		}
		e.log.Info("initial subflows from a dead address closed", logging.Stringer(logging.FieldAddr, o.target.Addr), logging.Duration("took", o.took))
	case opDump:
		if o.err != nil {
			e.log.Warn("reading the MPTCP endpoint table failed", logging.Error(o.err))
			break
		}
		e.setKernel(o.endpoints)
		e.limits = o.seenLimits
		e.prune()
	}
}

// ifName names the interface of an endpoint, for the log.
func (e *Engine) ifName(ep netlinkmptcp.Endpoint) string {
	if l, ok := endpointLink(e.net, ep); ok {
		return l.Name
	}
	return ""
}

// armTimer wakes the engine for the next retry, the end of a hold-down or
// of a gateway wait.
func (e *Engine) armTimer(now time.Time, held map[int]time.Time, gatewayWait time.Time) {
	next := gatewayWait
	for _, t := range []time.Time{e.retry.next(), e.repairs.next(now), e.superviseAt, e.gate.next()} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, t := range held {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if next.IsZero() {
		next = now.Add(time.Hour)
	}
	e.timer.Reset(max(next.Sub(now), time.Millisecond))
}
