package pm

import "time"

// FlapPolicy is the hold-down applied to links whose carrier keeps coming
// and going. Every loss withdraws the link's endpoints at once; what is held
// back is their return, because each removal costs an RCU grace period
// under the kernel's host-wide generic-netlink lock.
type FlapPolicy struct {
	// Threshold losses within Window start a hold-down of Initial.
	Threshold int
	Window    time.Duration
	Initial   time.Duration
	// Each further loss doubles the hold-down, up to Max.
	Max time.Duration
	// Quiet without a loss forgets the link's history.
	Quiet time.Duration
}

// DefaultFlapPolicy: 3 flaps in 10 s hold a link down for
// 1 s, doubling to 30 s, reset after a quiet minute.
var DefaultFlapPolicy = FlapPolicy{Threshold: 3, Window: 10 * time.Second, Initial: time.Second, Max: 30 * time.Second, Quiet: time.Minute}

type flapHistory struct {
	losses   []time.Time
	lastLoss time.Time
	holdDown time.Duration
	upSince  time.Time
	up       bool
}

// flapTracker follows carrier transitions per link and says when a link
// that came back may be used again.
type flapTracker struct {
	policy FlapPolicy
	links  map[int]*flapHistory
}

func newFlapTracker(p FlapPolicy) *flapTracker {
	return &flapTracker{policy: p, links: map[int]*flapHistory{}}
}

// carrier records the link's carrier state at now; only transitions count.
// It reports whether a hold-down started: one that grows while the link
// keeps flapping is the same episode.
func (f *flapTracker) carrier(ifindex int, up bool, now time.Time) (started bool) {
	h, ok := f.links[ifindex]
	if !ok {
		// A link seen for the first time has no history to hold against it.
		f.links[ifindex] = &flapHistory{up: up, upSince: now}
		return false
	}
	if h.up == up {
		return false
	}
	h.up = up
	if up {
		h.upSince = now
		return false
	}
	if !h.lastLoss.IsZero() && now.Sub(h.lastLoss) >= f.policy.Quiet {
		h.losses, h.holdDown = nil, 0
	}
	h.lastLoss = now
	kept := h.losses[:0]
	for _, t := range h.losses {
		if now.Sub(t) < f.policy.Window {
			kept = append(kept, t)
		}
	}
	h.losses = append(kept, now)
	switch {
	case h.holdDown > 0:
		h.holdDown = min(2*h.holdDown, f.policy.Max)
		return false
	case len(h.losses) >= f.policy.Threshold:
		h.holdDown = f.policy.Initial
		return true
	}
	return false
}

// usableAt is when a link that is up may carry endpoints again: the time it
// came up plus its hold-down. Links without a hold-down are usable at once.
func (f *flapTracker) usableAt(ifindex int) time.Time {
	h, ok := f.links[ifindex]
	if !ok || h.holdDown == 0 {
		return time.Time{}
	}
	return h.upSince.Add(h.holdDown)
}

// holdDown returns the link's current hold-down.
func (f *flapTracker) holdDown(ifindex int) time.Duration {
	if h, ok := f.links[ifindex]; ok {
		return h.holdDown
	}
	return 0
}

// forget drops a deleted link's history.
func (f *flapTracker) forget(ifindex int) { delete(f.links, ifindex) }
