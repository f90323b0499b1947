package pm

import (
	"context"
	"slices"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

// ownership is the record of what is ours: the endpoints we created or
// adopted, and the limits found at first start (see docs/architecture.md,
// "Ownership"). It belongs to the engine's goroutine; saving happens in
// the background (run), so the fast path never waits for a disk.
type ownership struct {
	store  Store
	log    *logging.Logger
	clock  Clock
	retry  Backoff
	state  statefile.State
	saveCh chan statefile.State
}

// saveRetry is how a failed save is retried: a full disk or a read-only
// remount must not lose the record, nor spin.
var saveRetry = Backoff{Initial: time.Second, Max: time.Minute}

func newOwnership(store Store, log *logging.Logger, clock Clock) *ownership {
	return &ownership{store: store, log: log, clock: clock, retry: saveRetry, saveCh: make(chan statefile.State, 1)}
}

// load reads the record.
func (o *ownership) load() error {
	s, err := o.store.Load()
	if err != nil {
		return err
	}
	o.state = s
	return nil
}

// endpoints are the recorded endpoints.
func (o *ownership) endpoints() []statefile.Endpoint { return o.state.Endpoints }

// noteInitialLimits records the kernel's limits on the first start, before
// we change them, so cleanup can put them back. It saves at once: nothing
// may be changed before this is on disk.
func (o *ownership) noteInitialLimits(l netlinkmptcp.Limits) error {
	if o.state.InitialLimits != nil {
		return nil
	}
	o.state.InitialLimits = &l
	return o.store.Save(o.state)
}

// routing are the routing settings the record holds, nil if none.
func (o *ownership) routing() *statefile.Routing { return o.state.Routing }

// noteRouting records the settings our rules and routes carry from now on.
func (o *ownership) noteRouting(r statefile.Routing) {
	if o.state.Routing != nil && *o.state.Routing == r {
		return
	}
	o.state.Routing = &r
	o.save()
}

// record notes an endpoint as ours.
func (o *ownership) record(ep netlinkmptcp.Endpoint) {
	for i, r := range o.state.Endpoints {
		if r.ID == ep.ID {
			if r.Addr == ep.Addr && r.Port == ep.Port {
				return
			}
			o.state.Endpoints = slices.Delete(o.state.Endpoints, i, i+1)
			break
		}
	}
	o.state.Endpoints = append(o.state.Endpoints, statefile.Endpoint{ID: ep.ID, Addr: ep.Addr, Port: ep.Port})
	o.save()
}

// unrecord forgets the endpoint with the given id.
func (o *ownership) unrecord(id uint8) {
	n := len(o.state.Endpoints)
	o.state.Endpoints = slices.DeleteFunc(o.state.Endpoints, func(r statefile.Endpoint) bool { return r.ID == id })
	if len(o.state.Endpoints) != n {
		o.save()
	}
}

// save hands the record to run; a save still waiting is replaced by the
// newer one.
func (o *ownership) save() {
	s := o.state
	s.Endpoints = slices.Clone(s.Endpoints)
	select {
	case <-o.saveCh:
	default:
	}
	o.saveCh <- s
}

// prune forgets the records whose endpoint is no longer in the kernel's
// table (a flush, or an endpoint deleted while we were stopped): their ids
// may be given to someone else's endpoints next. It returns what it forgot.
func (o *ownership) prune(kernel map[uint8]netlinkmptcp.Endpoint) []statefile.Endpoint {
	var gone []statefile.Endpoint
	o.state.Endpoints = slices.DeleteFunc(o.state.Endpoints, func(r statefile.Endpoint) bool {
		ep, ok := kernel[r.ID]
		if !ok || ep.Addr != r.Addr {
			gone = append(gone, r)
			return true
		}
		return false
	})
	if len(gone) > 0 {
		o.log.Info("forgot endpoints that left the kernel's table", logging.Int("records", len(gone)))
		o.save()
	}
	return gone
}

// run writes what save hands it until ctx is done. A failed save is
// retried with backoff until it succeeds (with the newest record), and
// logged once per cause.
func (o *ownership) run(ctx context.Context) {
	var (
		pending  *statefile.State
		lastErr  string
		attempts int
	)
	retry := o.clock.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Close()
	for {
		select {
		case s := <-o.saveCh:
			pending = &s
			retry.Stop()
		case <-retry.C():
		case <-ctx.Done():
			return
		}
		err := o.store.Save(*pending)
		if err == nil {
			if lastErr != "" {
				o.log.Info("saved the ownership record after retrying", logging.Int("attempts", attempts+1))
			}
			pending, lastErr, attempts = nil, "", 0
			continue
		}
		attempts++
		delay := o.retry.delay(attempts)
		if err.Error() != lastErr {
			lastErr = err.Error()
			o.log.Error("saving the ownership record failed, will retry", logging.Error(err), logging.Duration("retry_in", delay))
		}
		retry.Reset(delay)
	}
}

// saveNow writes the record synchronously (on stop, after run ended).
func (o *ownership) saveNow() error { return o.store.Save(o.state) }
