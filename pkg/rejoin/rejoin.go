// Package rejoin decides when a failed join is tried again (see
// docs/architecture.md, "Rejoin"). The in-kernel path manager opens a
// subflow from each subflow endpoint when a connection is established or
// the endpoint is added, and never again: a join that fails (the gateway's
// neighbour entry FAILED after an outage, a switch port still learning, a
// middlebox resetting) leaves the connection on one path for good.
//
// The only retry the in-kernel path manager offers is adding the endpoint
// again, and removing it first closes every connection's subflows over it.
// So an endpoint is re-added only while no connection has a working subflow
// over it; when some do and others lack it, the working ones are left alone
// and the others reported (a per-connection retry needs the userspace path
// manager). The Supervisor is pure: it reads what the connections have and
// remembers only its retry schedule.
package rejoin

import (
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Endpoint is one of our endpoints that opens subflows.
type Endpoint struct {
	ID     uint8
	Addr   netip.Addr
	IfName string
	// Since is when the kernel got the endpoint (its latest addition): a
	// failure from before does not count against it.
	Since time.Time
	// Held says why it cannot be re-added now (its gateway does not answer
	// yet), "" when it can; nil when nothing holds it. It is asked only
	// when a connection lacks the endpoint, since asking may cost a
	// question to the kernel.
	Held func() string
}

// Conn is an established client-side connection.
type Conn struct {
	Token uint32
	IPv6  bool
	// Since is when it was established.
	Since time.Time
	// Locals are the local addresses of its subflows, the initial one
	// included.
	Locals []netip.Addr
	// Joined counts its joined subflows.
	Joined int
	// DenyJoinID0 with no announced address: the peer accepts no join.
	DenyJoinID0 bool
	PeerAddrs   int
	// Failed are the latest failed joins by local address.
	Failed map[netip.Addr]Failure
}

// Failure is a join the kernel closed with an error.
type Failure struct {
	Errno syscall.Errno
	At    time.Time
}

// Settings are the supervisor's.
type Settings struct {
	// Subflows is the kernel's subflows limit: a connection with that many
	// joined subflows opens no more.
	Subflows int
	// JoinTimeout is how long a connection may lack a subflow from an
	// endpoint after the endpoint was added or the connection established
	// before its join counts as failed.
	JoinTimeout time.Duration
	// RetryInitial and RetryMax: the wait before the first retry, doubling
	// up to RetryMax.
	RetryInitial, RetryMax time.Duration
}

// Missing is a connection without a subflow from an endpoint it should
// have one from, and why.
type Missing struct {
	Token    uint32     `json:"token"`
	Endpoint uint8      `json:"endpoint_id"`
	Addr     netip.Addr `json:"addr"`
	IfName   string     `json:"ifname"`
	Reason   string     `json:"reason"`
	// NextTry is when the endpoint is re-added next, zero if it is not.
	NextTry time.Time `json:"next_try,omitzero"`
}

// Cause is a failure to log: the first of its kind for an endpoint since
// it last had every join it should.
type Cause struct {
	Endpoint Endpoint
	// Errno is the kernel's error; 0 for a join that did not happen within
	// JoinTimeout.
	Errno syscall.Errno
	// Conns is how many connections it hit.
	Conns int
}

// Plan is what to do now.
type Plan struct {
	// ReAdd are the endpoints to remove and add again, by address.
	ReAdd   []netip.Addr
	Missing []Missing
	Causes  []Cause
	// Next is when to look again (a join timing out, a retry due), zero if
	// nothing waits.
	Next time.Time
	// Verify: a failed join was not retried only because the view says
	// other connections have a working subflow over its endpoint. The
	// kernel closes subflows without an event when their connection is no
	// longer established, so those are worth checking against the kernel.
	Verify bool
}

type retry struct {
	attempts int
	next     time.Time
	logged   map[syscall.Errno]bool
}

// Supervisor keeps the retry schedule of each endpoint, by address (a
// re-added endpoint gets a new id).
type Supervisor struct {
	set     Settings
	retries map[netip.Addr]*retry
}

// New returns a supervisor.
func New(s Settings) *Supervisor {
	return &Supervisor{set: s, retries: map[netip.Addr]*retry{}}
}

// SetSettings changes the settings (a reload); schedules are kept.
func (s *Supervisor) SetSettings(set Settings) { s.set = set }

// RetryNow makes every failed join due now, for an administrator who just
// fixed a firewall.
func (s *Supervisor) RetryNow() {
	for _, r := range s.retries {
		r.next = time.Time{}
	}
}

// Plan decides, at now, which endpoints to re-add and which connections
// lack which endpoints, and why.
func (s *Supervisor) Plan(now time.Time, eps []Endpoint, conns []Conn) Plan {
	var p Plan
	wake := func(t time.Time) {
		if t.After(now) && (p.Next.IsZero() || t.Before(p.Next)) {
			p.Next = t
		}
	}
	seen := map[netip.Addr]bool{}
	for _, e := range eps {
		seen[e.Addr] = true
		var lacking []lack
		working := 0
		for _, c := range conns {
			if c.IPv6 != e.Addr.Is6() {
				continue
			}
			if slices.Contains(c.Locals, e.Addr) {
				working++
				continue
			}
			if c.Joined >= s.set.Subflows || (c.DenyJoinID0 && c.PeerAddrs == 0) {
				// The kernel would open no subflow from e for it.
				continue
			}
			l := lack{conn: c, deadline: later(e.Since, c.Since).Add(s.set.JoinTimeout)}
			if f, ok := c.Failed[e.Addr]; ok && !f.At.Before(e.Since) {
				l.failure, l.failed = f, true
			} else if !now.Before(l.deadline) {
				l.failed = true
			}
			lacking = append(lacking, l)
		}
		if len(lacking) == 0 {
			delete(s.retries, e.Addr)
			continue
		}
		r := s.retries[e.Addr]
		if r == nil {
			r = &retry{logged: map[syscall.Errno]bool{}}
			s.retries[e.Addr] = r
		}
		p.Causes = append(p.Causes, r.causes(e, lacking)...)
		failedAny := slices.ContainsFunc(lacking, func(l lack) bool { return l.failed })
		why := func(l lack, tail string, next time.Time) {
			p.Missing = append(p.Missing, Missing{Token: l.conn.Token, Endpoint: e.ID, Addr: e.Addr, IfName: e.IfName,
				Reason: l.text() + tail, NextTry: next})
		}
		held := ""
		if e.Held != nil && failedAny && working == 0 {
			held = e.Held()
		}
		switch {
		case held != "":
			for _, l := range lacking {
				why(l, "; "+held, time.Time{})
			}
		case working > 0:
			p.Verify = p.Verify || failedAny
			for _, l := range lacking {
				why(l, fmt.Sprintf("; not retried: %d other connection(s) have a working subflow over this endpoint and re-adding it would cut them (a per-connection retry needs the userspace path manager)", working), time.Time{})
				if !l.failed {
					wake(l.deadline)
				}
			}
		case !failedAny:
			for _, l := range lacking {
				why(l, "", time.Time{})
				wake(l.deadline)
			}
		case !now.Before(r.next):
			p.ReAdd = append(p.ReAdd, e.Addr)
			r.attempts++
			r.next = now.Add(s.backoff(r.attempts))
			for _, l := range lacking {
				why(l, "; retrying now", time.Time{})
			}
		default:
			for _, l := range lacking {
				why(l, "", r.next)
			}
			wake(r.next)
		}
	}
	for a := range s.retries {
		if !seen[a] {
			delete(s.retries, a)
		}
	}
	return p
}

// backoff is the wait after the attempts-th retry.
func (s *Supervisor) backoff(attempts int) time.Duration {
	d := s.set.RetryInitial << min(attempts-1, 20)
	if d > s.set.RetryMax || d <= 0 {
		return s.set.RetryMax
	}
	return d
}

// causes are the failures of e not logged yet, with how many connections
// each hit.
func (r *retry) causes(e Endpoint, lacking []lack) []Cause {
	count := map[syscall.Errno]int{}
	var order []syscall.Errno
	for _, l := range lacking {
		if !l.failed {
			continue
		}
		if count[l.failure.Errno] == 0 {
			order = append(order, l.failure.Errno)
		}
		count[l.failure.Errno]++
	}
	var out []Cause
	for _, errno := range order {
		if !r.logged[errno] {
			r.logged[errno] = true
			out = append(out, Cause{Endpoint: e, Errno: errno, Conns: count[errno]})
		}
	}
	return out
}

type lack struct {
	conn     Conn
	deadline time.Time
	failed   bool
	// failure is the kernel's, when it reported one; a failed lack
	// without one timed out.
	failure Failure
}

func (l lack) text() string {
	switch {
	case l.failed && l.failure.Errno != 0:
		return fmt.Sprintf("join failed: %s at %s", ErrnoText(l.failure.Errno), l.failure.At.Format(time.TimeOnly))
	case l.failed:
		return fmt.Sprintf("no join by %s", l.deadline.Format(time.TimeOnly))
	}
	return fmt.Sprintf("joining (counts as failed at %s)", l.deadline.Format(time.TimeOnly))
}

// ErrnoText names an errno as the logs and show do: "EHOSTUNREACH (no
// route to host)".
func ErrnoText(e syscall.Errno) string {
	if name := unix.ErrnoName(e); name != "" {
		return fmt.Sprintf("%s (%s)", name, e.Error())
	}
	return e.Error()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
