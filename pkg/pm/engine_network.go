package pm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/rtnl"
)

func (e *Engine) readNetwork(ctx context.Context) {
	for {
		updates, skipped, err := e.opt.Watcher.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if skipped > 0 {
			e.log.Debug("skipped rtnetlink messages that could not be decoded", logging.Int("count", skipped))
		}
		if err == nil && len(updates) == 0 {
			// Filtered out (routes we do not keep, our own echoes):
			// nothing to decide on.
			continue
		}
		select {
		case e.netCh <- netMsg{updates: updates, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil && !errors.Is(err, rtnl.ErrOverflow) {
			// A broken socket must not spin; the resync it triggers
			// keeps the state right meanwhile.
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
	}
}

// handleNet applies m and every batch already queued behind it, then
// decides once: eight addresses removed at once cost one decision, not
// eight.
func (e *Engine) handleNet(m netMsg) {
	now := e.clock.Now()
	var readErr error
	for {
		if m.err != nil && readErr == nil {
			readErr = m.err
		}
		for _, u := range m.updates {
			if u.Kind == netstate.NeighUpdate && e.gate.neighbour(u.Neigh) {
				e.superviseSoon()
			}
		}
		e.observe(ApplyUpdates(e.net, m.updates, e.owners), now, false)
		select {
		case m = <-e.netCh:
			continue
		default:
		}
		break
	}
	switch {
	case readErr == nil:
		e.reconcile()
	case errors.Is(readErr, rtnl.ErrOverflow):
		e.resync("rtnetlink overflow")
	default:
		e.log.Warn("reading network changes failed", logging.Error(readErr))
		e.resync("rtnetlink read error")
	}
}

// observe takes in observed changes: what they mean for links and
// addresses, and what someone else removed of ours.
func (e *Engine) observe(changes []Change, now time.Time, first bool) {
	e.obs.observe(changes, now, first)
	e.repairs.observe(changes)
}

// dumpNetwork replaces the view of the network with a fresh dump and
// observes what changed; first is the dump at start.
func (e *Engine) dumpNetwork(first bool) error {
	s, skipped, err := e.opt.Network.Dump()
	if err != nil {
		return fmt.Errorf("read links, addresses, routes and rules: %w", err)
	}
	if skipped > 0 {
		e.log.Debug("skipped rtnetlink messages that could not be decoded", logging.Int("count", skipped))
	}
	prev := e.net
	if first {
		prev = netstate.New()
	}
	e.obs.forgetARP()
	e.observe(Diff(prev, s, e.owners), e.clock.Now(), first)
	e.net = s
	return nil
}
