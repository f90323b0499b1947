package rejoin

import (
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	t0   = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	eth1 = netip.MustParseAddr("192.0.2.2")
	eth2 = netip.MustParseAddr("198.51.100.2")
	set  = Settings{Subflows: 4, JoinTimeout: 5 * time.Second, RetryInitial: time.Second, RetryMax: 4 * time.Second}
	e2   = Endpoint{ID: 2, Addr: eth2, IfName: "eth2", Since: t0}
)

func at(d time.Duration) time.Time { return t0.Add(d) }

// conn is a client connection established at t0 whose initial subflow is
// from eth1, with extra subflows from locals.
func conn(token uint32, locals ...netip.Addr) Conn {
	return Conn{Token: token, Since: t0, Locals: append([]netip.Addr{eth1}, locals...), Joined: len(locals), Failed: map[netip.Addr]Failure{}}
}

func failed(c Conn, errno syscall.Errno, when time.Duration) Conn {
	c.Failed = map[netip.Addr]Failure{eth2: {Errno: errno, At: at(when)}}
	return c
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name    string
		now     time.Duration
		ep      Endpoint
		conns   []Conn
		readd   bool
		reasons []string // one per missing connection, a part of it
		next    time.Duration
		causes  []syscall.Errno
		// verify: the working subflows that spare the endpoint are worth
		// checking against the kernel.
		verify bool
	}{
		{name: "every connection has its subflow", ep: e2, conns: []Conn{conn(1, eth2), conn(2, eth2)}},
		{name: "a join under way waits for its deadline", now: time.Second, ep: e2, conns: []Conn{conn(1)},
			reasons: []string{"joining (counts as failed at 12:00:05)"}, next: 5 * time.Second},
		{name: "a failed join re-adds the endpoint", now: time.Second, ep: e2, conns: []Conn{failed(conn(1), syscall.EHOSTUNREACH, 100*time.Millisecond)},
			readd: true, reasons: []string{"join failed: EHOSTUNREACH (no route to host) at 12:00:00; retrying now"}, causes: []syscall.Errno{syscall.EHOSTUNREACH}},
		{name: "a join that timed out re-adds the endpoint", now: 6 * time.Second, ep: e2, conns: []Conn{conn(1)},
			readd: true, reasons: []string{"no join by 12:00:05; retrying now"}, causes: []syscall.Errno{0}},
		{name: "a failure from before the endpoint's last addition does not count", now: 2 * time.Second,
			ep: Endpoint{ID: 3, Addr: eth2, IfName: "eth2", Since: at(time.Second)}, conns: []Conn{failed(conn(1), syscall.EHOSTUNREACH, 0)},
			reasons: []string{"joining"}, next: 6 * time.Second},
		{name: "a working subflow elsewhere is never cut", now: time.Second, ep: e2,
			conns:   []Conn{conn(1, eth2), failed(conn(2), syscall.ECONNRESET, 500*time.Millisecond)},
			reasons: []string{"join failed: ECONNRESET (connection reset by peer) at 12:00:00; not retried: 1 other connection(s) have a working subflow"},
			causes:  []syscall.Errno{syscall.ECONNRESET}, verify: true},
		{name: "a join under way beside a working subflow: nothing to verify", now: time.Second, ep: e2,
			conns:   []Conn{conn(1, eth2), conn(2)},
			reasons: []string{"joining (counts as failed at 12:00:05); not retried"}, next: 5 * time.Second},
		{name: "an endpoint whose gateway does not answer waits", now: time.Second,
			ep: Endpoint{ID: 2, Addr: eth2, IfName: "eth2", Since: t0,
				Held: func() string { return "waiting for gateway 198.51.100.1 to answer ARP since 12:00:00 (FAILED)" }},
			conns:   []Conn{failed(conn(1), syscall.EHOSTUNREACH, 100*time.Millisecond)},
			reasons: []string{"join failed: EHOSTUNREACH (no route to host) at 12:00:00; waiting for gateway"}, causes: []syscall.Errno{syscall.EHOSTUNREACH}},
		{name: "a connection at its subflows limit wants no more", now: time.Minute, ep: e2,
			conns: []Conn{{Token: 1, Since: t0, Locals: []netip.Addr{eth1, eth1, eth1, eth1, eth1}, Joined: 4}}},
		{name: "a peer that accepts no join is not waited for", now: time.Minute, ep: e2,
			conns: []Conn{func() Conn { c := conn(1); c.DenyJoinID0 = true; return c }()}},
		{name: "another family is not this endpoint's", now: time.Minute, ep: e2,
			conns: []Conn{func() Conn { c := conn(1); c.IPv6 = true; return c }()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(set).Plan(at(tt.now), []Endpoint{tt.ep}, tt.conns)
			if got := len(p.ReAdd) == 1 && p.ReAdd[0] == tt.ep.Addr; got != tt.readd {
				t.Errorf("re-add = %v, want %v", p.ReAdd, tt.readd)
			}
			if len(p.Missing) != len(tt.reasons) {
				t.Fatalf("missing = %+v, want %d", p.Missing, len(tt.reasons))
			}
			for i, r := range tt.reasons {
				if !strings.Contains(p.Missing[i].Reason, r) {
					t.Errorf("reason %q does not say %q", p.Missing[i].Reason, r)
				}
			}
			if want := at(tt.next); (tt.next == 0 && !p.Next.IsZero()) || (tt.next != 0 && !p.Next.Equal(want)) {
				t.Errorf("next = %v, want %v", p.Next, tt.next)
			}
			var causes []syscall.Errno
			for _, c := range p.Causes {
				causes = append(causes, c.Errno)
			}
			if !slices.Equal(causes, tt.causes) {
				t.Errorf("causes = %v, want %v", causes, tt.causes)
			}
			if p.Verify != tt.verify {
				t.Errorf("verify = %v, want %v", p.Verify, tt.verify)
			}
		})
	}
}

// Retries back off (1 s, 2 s, 4 s, capped at 4 s), each cause is logged
// once, RetryNow makes the next one due, and a success forgets it all.
func TestPlanBacksOffAndLogsOnce(t *testing.T) {
	s := New(set)
	failing := []Conn{failed(conn(1), syscall.ECONNRESET, 100*time.Millisecond)}
	var readds []time.Duration
	logged := 0
	for ms := 1000; ms <= 13000; ms += 250 {
		now := time.Duration(ms) * time.Millisecond
		p := s.Plan(at(now), []Endpoint{e2}, failing)
		logged += len(p.Causes)
		if len(p.ReAdd) > 0 {
			readds = append(readds, now)
		}
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 12 * time.Second}
	if !slices.Equal(readds, want) {
		t.Errorf("re-added at %v, want %v", readds, want)
	}
	if logged != 1 {
		t.Errorf("the cause was logged %d times, want once", logged)
	}
	s.RetryNow()
	if p := s.Plan(at(12500*time.Millisecond), []Endpoint{e2}, failing); len(p.ReAdd) != 1 {
		t.Error("RetryNow did not make the retry due")
	}
	if p := s.Plan(at(13*time.Second), []Endpoint{e2}, []Conn{conn(1, eth2)}); len(p.Missing) != 0 || len(s.retries) != 0 {
		t.Errorf("a success kept %+v, schedules %v", p.Missing, s.retries)
	}
	p := s.Plan(at(14*time.Second), []Endpoint{e2}, failing)
	if len(p.ReAdd) != 1 || len(p.Causes) != 1 {
		t.Errorf("after a success, a new failure: re-add %v, causes %v; want both afresh", p.ReAdd, p.Causes)
	}
}
