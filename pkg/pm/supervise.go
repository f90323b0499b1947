package pm

import (
	"context"
	"net/netip"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/connview"
	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/rejoin"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
)

// Connections is the live connection view (connview.View), as join
// supervision reads it.
type Connections interface {
	Clients() []connview.Connection
	JoinsChanged() <-chan struct{}
	// Recheck asks for the view to be checked against the kernel (what
	// it closed without an event); a change comes through JoinsChanged.
	// It must not block.
	Recheck()
}

// recheckEvery bounds how often the connection view is checked against
// the kernel while a failed join is spared for other connections' sake.
const recheckEvery = 5 * time.Second

// superviseDelay coalesces the join changes of a burst of connections
// into one look; the first retry of a failed join waits longer anyway.
const superviseDelay = 500 * time.Millisecond

// retryInitial is the wait before the first retry of a failed join.
const retryInitial = time.Second

func rejoinSettings(cfg *config.Config, l netlinkmptcp.Limits) rejoin.Settings {
	return rejoin.Settings{Subflows: int(l.Subflows), JoinTimeout: cfg.Rejoin.JoinTimeout,
		RetryInitial: retryInitial, RetryMax: cfg.Rejoin.RetryMax}
}

// superviseSoon asks for a look at the joins shortly: changes come in
// bursts.
func (e *Engine) superviseSoon() {
	if e.opt.Connections == nil {
		return
	}
	at := e.clock.Now().Add(superviseDelay)
	if e.superviseAt.IsZero() || at.Before(e.superviseAt) {
		e.superviseAt = at
		e.armTimer(e.clock.Now(), nil, time.Time{})
	}
}

// supervise looks at the connections' joins: it re-adds the endpoints whose
// joins failed where that cuts nothing (docs/architecture.md, "Rejoin"),
// logs each failure cause once, and notes what each connection lacks.
func (e *Engine) supervise(now time.Time) {
	e.superviseAt = time.Time{}
	if e.opt.Connections == nil {
		return
	}
	e.sup.SetSettings(rejoinSettings(e.cfg, e.limits))
	var eps []rejoin.Endpoint
	for _, want := range e.decision.Endpoints {
		ep, ok := e.kernelAt(want.Addr)
		if !ok || ep.Flags&netlinkmptcp.FlagSubflow == 0 || !e.decision.Owned[ep.ID] {
			continue
		}
		gw := gatewayOf(&e.decision, want)
		eps = append(eps, rejoin.Endpoint{ID: ep.ID, Addr: ep.Addr, IfName: want.IfName, Since: e.since[ep.Addr],
			Held: func() string {
				if ok, why := e.gate.open(gw, now); !ok {
					return why
				}
				return ""
			}})
	}
	p := e.sup.Plan(now, eps, joinConns(e.opt.Connections.Clients()))
	e.missing = p.Missing
	if p.Verify && (e.lastRecheck.IsZero() || now.Sub(e.lastRecheck) >= recheckEvery) {
		e.lastRecheck = now
		e.opt.Connections.Recheck()
	}
	for _, c := range p.Causes {
		e.logJoinFailure(c)
	}
	for _, a := range p.ReAdd {
		e.readd[a] = true
	}
	e.countJoinRetries(eps, p.ReAdd)
	e.superviseAt = p.Next
	if len(p.ReAdd) > 0 {
		e.reconcile()
		return
	}
	e.updateSummary()
	e.armTimer(now, nil, time.Time{})
}

func (e *Engine) logJoinFailure(c rejoin.Cause) {
	f := []logging.Field{logging.String(logging.FieldIface, c.Endpoint.IfName), logging.Stringer(logging.FieldAddr, c.Endpoint.Addr),
		logging.Uint8(logging.FieldEndpointID, c.Endpoint.ID), logging.Int("connections", c.Conns)}
	if c.Errno == 0 {
		e.log.Warn("joins did not happen within the join timeout", append(f, logging.Duration("timeout", e.cfg.Rejoin.JoinTimeout))...)
		return
	}
	e.log.Warn("joins failed", append(f, logging.String("errno", rejoin.ErrnoText(c.Errno)))...)
}

// RetryJoins makes every failed join due now: for an administrator who just
// fixed a firewall.
func (e *Engine) RetryJoins(ctx context.Context) error {
	return e.call(ctx, func() {
		e.sup.RetryNow()
		e.supervise(e.clock.Now())
	})
}

// kernelAt finds the kernel's endpoint for an address.
func (e *Engine) kernelAt(a netip.Addr) (netlinkmptcp.Endpoint, bool) {
	for _, ep := range e.kernel {
		if ep.Addr == a {
			return ep, true
		}
	}
	return netlinkmptcp.Endpoint{}, false
}

// gatewayOf is the gateway d chose for an endpoint's interface and family.
func gatewayOf(d *Decision, ep Endpoint) srcroute.Gateway {
	for _, gw := range d.Routing.Gateways {
		if gw.IfIndex == ep.IfIndex && gw.IPv6 == ep.Addr.Is6() {
			return gw
		}
	}
	return srcroute.Gateway{}
}

// joinConns turns the view's client connections into rejoin's.
func joinConns(cs []connview.Connection) []rejoin.Conn {
	out := make([]rejoin.Conn, 0, len(cs))
	for _, c := range cs {
		local := c.Local
		if !local.IsValid() && len(c.Subflows) > 0 {
			local = c.Subflows[0].Local
		}
		jc := rejoin.Conn{Token: c.Token, IPv6: local.Addr().Is6(), Since: c.Since, DenyJoinID0: c.DenyJoinID0,
			PeerAddrs: len(c.PeerAddrs), Failed: map[netip.Addr]rejoin.Failure{}}
		for _, sf := range c.Subflows {
			jc.Locals = append(jc.Locals, sf.Local.Addr())
			if !sf.Initial {
				jc.Joined++
			}
		}
		for _, f := range c.FailedJoins {
			jc.Failed[f.Local] = rejoin.Failure{Errno: f.Errno, At: f.At}
		}
		out = append(out, jc)
	}
	return out
}
