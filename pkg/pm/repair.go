package pm

import (
	"slices"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"
)

// RepairPolicy limits how often we put back what someone else keeps
// removing (NetworkManager on every reapply, a script): a competitor must
// not drive an endless rewrite-and-log loop.
type RepairPolicy struct {
	// Max repairs of one thing within Window start a hold-off of HoldOff,
	// doubling up to MaxHoldOff while it goes on.
	Max        int
	Window     time.Duration
	HoldOff    time.Duration
	MaxHoldOff time.Duration
}

// DefaultRepairPolicy allows 5 repairs of one thing in 10 minutes, then one
// a minute, doubling to one an hour.
var DefaultRepairPolicy = RepairPolicy{Max: 5, Window: 10 * time.Minute, HoldOff: time.Minute, MaxHoldOff: time.Hour}

type repairHistory struct {
	at      []time.Time
	holdOff time.Duration
	until   time.Time
}

// repairs follows the things of ours that someone else removed (drift) and
// how often we put them back, keyed by the write that puts them back.
type repairs struct {
	policy RepairPolicy
	log    *logging.Logger
	// competitor names a program known to undo our work, "" if none runs.
	competitor func() string
	drifted    map[opKey]bool
	hist       map[opKey]*repairHistory
	// repaired is called for each repair (metrics); nil is not called.
	repaired func()
}

func newRepairs(p RepairPolicy, log *logging.Logger, competitor func() string) *repairs {
	if competitor == nil {
		competitor = func() string { return "" }
	}
	return &repairs{policy: p, log: log, competitor: competitor, drifted: map[opKey]bool{}, hist: map[opKey]*repairHistory{}}
}

// drift notes that someone else removed what k writes: the next write of k
// is a repair.
func (r *repairs) drift(k opKey) { r.drifted[k] = true }

// observe notes the drift among observed changes.
func (r *repairs) observe(changes []Change) {
	for _, c := range changes {
		switch c.Kind {
		case RuleRemoved:
			r.drift(ruleKey(opAddRule, c.Rule))
		case RouteRemoved:
			r.drift(routeKey(opAddRoute, c.Route))
		}
	}
}

// allowed tells whether k may be written now: false while its repairs are
// held off.
func (r *repairs) allowed(k opKey, now time.Time) bool {
	h, ok := r.hist[k]
	return !ok || !now.Before(h.until)
}

// done notes that a write of k succeeded and tells whether it was a repair.
// Too many repairs of one thing start or lengthen its hold-off; the first
// hold-off of an episode is said once, with what keeps being undone.
func (r *repairs) done(k opKey, now time.Time) bool {
	if !r.drifted[k] {
		return false
	}
	delete(r.drifted, k)
	if r.repaired != nil {
		r.repaired()
	}
	h, ok := r.hist[k]
	if !ok || (len(h.at) > 0 && now.Sub(h.at[len(h.at)-1]) > r.policy.Window && !now.Before(h.until)) {
		// New, or quiet for a window: a new episode.
		h = &repairHistory{}
		r.hist[k] = h
	}
	h.at = append(slices.DeleteFunc(h.at, func(t time.Time) bool { return now.Sub(t) > r.policy.Window }), now)
	if len(h.at) < r.policy.Max && h.holdOff == 0 {
		return true
	}
	// Once held off, every further repair of the episode waits longer.
	first := h.holdOff == 0
	h.holdOff = min(max(2*h.holdOff, r.policy.HoldOff), r.policy.MaxHoldOff)
	h.until = now.Add(h.holdOff)
	h.at = nil
	if first {
		f := []logging.Field{logging.Stringer("op", k), logging.Int("repairs", r.policy.Max), logging.Duration("within", r.policy.Window), logging.Duration("hold_off", h.holdOff)}
		if c := r.competitor(); c != "" {
			f = append(f, logging.String("suspect", c))
		}
		r.log.Warn("something keeps removing what mptcpgd writes; repairing it less often", f...)
	}
	return true
}

// next is the end of the earliest hold-off still running, zero if none.
func (r *repairs) next(now time.Time) time.Time {
	var t time.Time
	for _, h := range r.hist {
		if h.until.After(now) && (t.IsZero() || h.until.Before(t)) {
			t = h.until
		}
	}
	return t
}

// heldOff names the writes whose repairs are held off at now.
func (r *repairs) heldOff(now time.Time) []string {
	var out []string
	for k, h := range r.hist {
		if h.until.After(now) {
			out = append(out, k.String()+" until "+h.until.Format(time.TimeOnly))
		}
	}
	slices.Sort(out)
	return out
}
