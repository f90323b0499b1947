package pm

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"

	"github.com/mptcpgd/mptcpgd/pkg/netstate"
)

// Backoff is the retry schedule of a failed kernel write.
type Backoff struct {
	Initial, Max time.Duration
}

// DefaultBackoff retries after 250 ms, doubling to 30 s.
var DefaultBackoff = Backoff{Initial: 250 * time.Millisecond, Max: 30 * time.Second}

// delay is the wait before attempt+1, after attempt failures.
func (b Backoff) delay(attempts int) time.Duration {
	d := b.Initial << min(attempts-1, 20)
	if d > b.Max || d <= 0 {
		return b.Max
	}
	return d
}

// opKey names one kernel write: its retry schedule is kept under it, and
// its String is what the status and the logs call it.
type opKey struct {
	kind opKind
	// addr is the address of an endpoint to add.
	addr netip.Addr
	// id is the endpoint deleted or whose flags change.
	id    uint8
	rule  netstate.Rule
	route netstate.RouteKey
}

func addKey(a netip.Addr) opKey                 { return opKey{kind: opAdd, addr: a} }
func deleteKey(id uint8) opKey                  { return opKey{kind: opDelete, id: id} }
func flagsKey(id uint8) opKey                   { return opKey{kind: opSetFlags, id: id} }
func ruleKey(k opKind, r netstate.Rule) opKey   { return opKey{kind: k, rule: r} }
func routeKey(k opKind, r netstate.Route) opKey { return opKey{kind: k, route: r.Key()} }

var limitsKey = opKey{kind: opSetLimits}

func (k opKey) String() string {
	switch k.kind {
	case opAdd:
		return fmt.Sprintf("%s %s", k.kind, k.addr)
	case opDelete, opSetFlags:
		return fmt.Sprintf("%s %d", k.kind, k.id)
	case opAddRule, opDeleteRule:
		return fmt.Sprintf("%s %s", k.kind, k.rule)
	case opAddRoute, opReplaceRoute, opDeleteRoute:
		return fmt.Sprintf("%s %s table %d metric %d", k.kind, k.route.Dst, k.route.Table, k.route.Priority)
	}
	return k.kind.String()
}

type retryState struct {
	attempts int
	next     time.Time
	cause    string
}

// retrier keeps the retry schedule of failed kernel writes: exponential
// backoff per write, a failure logged once per cause, and the schedules of
// writes that no reconcile wants any more forgotten.
type retrier struct {
	backoff Backoff
	log     *logging.Logger
	entries map[opKey]*retryState
	// wanted are the writes the reconcile under way asked about.
	wanted map[opKey]bool
}

func newRetrier(b Backoff, log *logging.Logger) *retrier {
	return &retrier{backoff: b, log: log, entries: map[opKey]*retryState{}, wanted: map[opKey]bool{}}
}

// ready notes that the reconcile under way wants k, and tells whether k may
// be tried now (it is not backing off after a failure).
func (r *retrier) ready(k opKey, now time.Time) bool {
	r.wanted[k] = true
	e, ok := r.entries[k]
	return !ok || !now.Before(e.next)
}

// failed schedules k's next attempt and logs the failure once per cause,
// not once per attempt.
func (r *retrier) failed(k opKey, err error, now time.Time) {
	e, ok := r.entries[k]
	if !ok {
		e = &retryState{}
		r.entries[k] = e
	}
	e.attempts++
	delay := r.backoff.delay(e.attempts)
	e.next = now.Add(delay)
	if cause := err.Error(); cause != e.cause {
		e.cause = cause
		r.log.Warn("kernel write failed, will retry", logging.Stringer("op", k), logging.Error(err), logging.Duration("retry_in", delay))
	} else {
		r.log.Debug("kernel write failed again", logging.Stringer("op", k), logging.Int("attempts", e.attempts), logging.Duration("retry_in", delay))
	}
}

// succeeded forgets k's failures.
func (r *retrier) succeeded(k opKey) {
	if e, ok := r.entries[k]; ok {
		r.log.Info("kernel write succeeded after retrying", logging.Stringer("op", k), logging.Int("attempts", e.attempts+1))
		delete(r.entries, k)
	}
}

// sweep ends a reconcile: the schedules of writes it did not want are
// dropped, so a write wanted again later starts afresh.
func (r *retrier) sweep() {
	for k := range r.entries {
		if !r.wanted[k] {
			delete(r.entries, k)
		}
	}
	clear(r.wanted)
}

// cause is the error of k's last failed attempt, "" if k is not failing.
func (r *retrier) cause(k opKey) string {
	if e, ok := r.entries[k]; ok {
		return e.cause
	}
	return ""
}

// next is the earliest scheduled retry, zero if none.
func (r *retrier) next() time.Time {
	var t time.Time
	for _, e := range r.entries {
		if t.IsZero() || e.next.Before(t) {
			t = e.next
		}
	}
	return t
}

// names lists the writes waiting to be retried, for the status.
func (r *retrier) names() []string {
	out := make([]string, 0, len(r.entries))
	for k := range r.entries {
		out = append(out, k.String())
	}
	slices.Sort(out)
	return out
}
