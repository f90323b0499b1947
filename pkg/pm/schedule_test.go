package pm

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	mp "github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// opText names a scheduled operation in test expectations.
func opText(o *op) string {
	switch o.kind {
	case opAdd:
		if o.afterRemovals {
			return "add " + o.add.Addr.String() + " after removals"
		}
		return "add " + o.add.Addr.String()
	case opDelete:
		return fmt.Sprintf("delete %d", o.target.ID)
	case opCloseInitial:
		return "close initial " + o.target.Addr.String()
	case opSetFlags:
		return fmt.Sprintf("flags %d %s", o.target.ID, o.flags)
	}
	return o.kind.String()
}

// fullTable is an endpoint table of n subflow endpoints, ids 1..n, on
// 198.18.0.1...
func fullTable(n int) []mp.Endpoint {
	var eps []mp.Endpoint
	for i := 1; i <= n; i++ {
		eps = append(eps, have(uint8(i), fmt.Sprintf("198.18.0.%d", i), mp.FlagSubflow, int32(i)))
	}
	return eps
}

func TestScheduleEndpoints(t *testing.T) {
	sub := mp.FlagSubflow
	gone := have(5, "192.0.2.9", sub, 2)
	alive := have(6, "192.0.2.6", sub, 2)
	table7 := fullTable(7)
	tests := []struct {
		name    string
		plan    EndpointPlan
		kernel  []mp.Endpoint
		pending func(p *pendingOps)
		backoff []opKey
		queue   []string
		held    []heldOp
	}{
		{
			name:  "a removal is queued",
			plan:  EndpointPlan{Delete: []mp.Endpoint{alive}},
			queue: []string{"delete 6"},
		},
		{
			name:  "a removal of a dead address also closes the initial subflows from it",
			plan:  EndpointPlan{Delete: []mp.Endpoint{gone}},
			queue: []string{"delete 5", "close initial 192.0.2.9"},
		},
		{
			name:    "a removal under way is not queued again",
			plan:    EndpointPlan{Delete: []mp.Endpoint{alive}},
			pending: func(p *pendingOps) { p.note(&op{kind: opDelete, target: alive}) },
			held:    []heldOp{{deleteKey(6), heldPending}},
		},
		{
			name:    "a removal backing off waits",
			plan:    EndpointPlan{Delete: []mp.Endpoint{alive}},
			backoff: []opKey{deleteKey(6)},
			held:    []heldOp{{deleteKey(6), heldBackoff}},
		},
		{
			name:  "a flag change is queued",
			plan:  EndpointPlan{SetFlags: []FlagChange{{Endpoint: alive, Flags: mp.FlagBackup}}},
			queue: []string{"flags 6 backup"},
		},
		{
			name:    "a flag change waits for a removal of its endpoint",
			plan:    EndpointPlan{SetFlags: []FlagChange{{Endpoint: alive, Flags: mp.FlagBackup}}},
			pending: func(p *pendingOps) { p.note(&op{kind: opDelete, target: alive}) },
			held:    []heldOp{{flagsKey(6), heldRemoval}},
		},
		{
			name:   "an addition with a free slot is queued and runs before removals",
			plan:   EndpointPlan{Add: []Endpoint{want("192.0.2.2", sub, 2)}},
			kernel: table7,
			queue:  []string{"add 192.0.2.2"},
		},
		{
			name:   "an addition never overtakes the removal that frees its slot",
			plan:   EndpointPlan{Delete: []mp.Endpoint{table7[6]}, Add: []Endpoint{want("192.0.2.2", sub, 2)}},
			kernel: append(slices.Clone(table7), alive),
			queue:  []string{"delete 7", "add 192.0.2.2 after removals"},
		},
		{
			name:   "an addition runs after the removal that still holds its address",
			plan:   EndpointPlan{Delete: []mp.Endpoint{alive}, Add: []Endpoint{want("192.0.2.6", mp.FlagSignal, 2)}},
			kernel: []mp.Endpoint{alive},
			queue:  []string{"delete 6", "add 192.0.2.6 after removals"},
		},
		{
			name:    "an addition depends on a removal already under way",
			plan:    EndpointPlan{Add: []Endpoint{want("192.0.2.6", mp.FlagSignal, 2)}},
			kernel:  []mp.Endpoint{alive},
			pending: func(p *pendingOps) { p.note(&op{kind: opDelete, target: alive}) },
			queue:   []string{"add 192.0.2.6 after removals"},
		},
		{
			name:   "an addition replacing an IMPLICIT endpoint reuses its slot",
			plan:   EndpointPlan{Add: []Endpoint{want("198.18.0.8", sub, 8)}},
			kernel: append(slices.Clone(table7), have(8, "198.18.0.8", mp.FlagImplicit|mp.FlagSignal, 0)),
			queue:  []string{"add 198.18.0.8"},
		},
		{
			name:   "an addition waits while an unwanted addition under way holds the last slot",
			plan:   EndpointPlan{Add: []Endpoint{want("192.0.2.2", sub, 2)}},
			kernel: table7,
			pending: func(p *pendingOps) {
				p.note(&op{kind: opAdd, add: want("192.0.2.99", sub, 9)})
			},
			held: []heldOp{{addKey(netip.MustParseAddr("192.0.2.2")), heldSlotBusy}},
		},
		{
			name:    "an addition under way is not queued again",
			plan:    EndpointPlan{Add: []Endpoint{want("192.0.2.2", sub, 2)}},
			pending: func(p *pendingOps) { p.note(&op{kind: opAdd, add: want("192.0.2.2", sub, 2)}) },
			held:    []heldOp{{addKey(netip.MustParseAddr("192.0.2.2")), heldPending}},
		},
		{
			name:    "an addition backing off waits",
			plan:    EndpointPlan{Add: []Endpoint{want("192.0.2.2", sub, 2)}},
			backoff: []opKey{addKey(netip.MustParseAddr("192.0.2.2"))},
			held:    []heldOp{{addKey(netip.MustParseAddr("192.0.2.2")), heldBackoff}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPendingOps()
			if tt.pending != nil {
				tt.pending(&p)
			}
			asked := map[opKey]bool{}
			s := scheduleEndpoints(scheduleInput{
				Plan:    tt.plan,
				Kernel:  tt.kernel,
				Pending: &p,
				Ready: func(k opKey) bool {
					asked[k] = true
					return !slices.Contains(tt.backoff, k)
				},
				Dead: func(ep mp.Endpoint) bool { return ep.ID == gone.ID },
			})
			var got []string
			for _, o := range s.queue {
				got = append(got, opText(o))
			}
			if !slices.Equal(got, tt.queue) {
				t.Errorf("queued %q, want %q", got, tt.queue)
			}
			if !slices.Equal(s.held, tt.held) {
				t.Errorf("held %v, want %v", s.held, tt.held)
			}
			// Every wanted write is asked about, queued or not, so that
			// its retry schedule lasts while it is wanted.
			for _, h := range s.held {
				if !asked[h.key] {
					t.Errorf("%s held without asking whether it may run", h.key)
				}
			}
		})
	}
}

func TestUnwantedOps(t *testing.T) {
	sub := mp.FlagSubflow
	a, b, c := want("192.0.2.2", sub, 2), want("192.0.2.3", sub, 3), want("192.0.2.4", sub, 4)
	changed := c
	changed.Flags |= mp.FlagBackup
	kept, dropped := have(5, "198.51.100.5", sub, 5), have(6, "198.51.100.6", sub, 6)
	p := newPendingOps()
	ops := map[string]*op{
		"add a":        {kind: opAdd, add: a},
		"add b":        {kind: opAdd, add: b},
		"add c":        {kind: opAdd, add: c},
		"delete kept":  {kind: opDelete, target: kept},
		"delete still": {kind: opDelete, target: dropped},
	}
	for _, o := range ops {
		p.note(o)
	}
	got := unwantedOps([]Endpoint{a, changed}, EndpointPlan{Delete: []mp.Endpoint{dropped}}, &p)
	var names []string
	for name, o := range ops {
		if slices.Contains(got, o) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	// b is no longer wanted, c is wanted with other flags, and the plan
	// keeps the endpoint whose removal is queued.
	if want := []string{"add b", "add c", "delete kept"}; !slices.Equal(names, want) {
		t.Errorf("unwanted = %q, want %q", names, want)
	}
}
