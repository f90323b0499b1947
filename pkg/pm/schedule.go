package pm

import (
	"net/netip"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// pendingOps are the generic-netlink operations queued to the worker or
// running there, by what they act on.
type pendingOps struct {
	adds   map[netip.Addr]*op
	dels   map[uint8]*op
	flags  map[uint8]*op
	limits *op
	dumps  int
}

func newPendingOps() pendingOps {
	return pendingOps{adds: map[netip.Addr]*op{}, dels: map[uint8]*op{}, flags: map[uint8]*op{}}
}

// count is how many operations are queued or running.
func (p *pendingOps) count() int {
	n := len(p.adds) + len(p.dels) + len(p.flags) + p.dumps
	if p.limits != nil {
		n++
	}
	return n
}

// note records a newly queued operation.
func (p *pendingOps) note(o *op) {
	switch o.kind {
	case opAdd:
		p.adds[o.add.Addr] = o
	case opDelete:
		p.dels[o.target.ID] = o
	case opSetFlags:
		p.flags[o.target.ID] = o
	case opSetLimits:
		p.limits = o
	case opDump:
		p.dumps++
	}
}

// done forgets an operation whose result came back.
func (p *pendingOps) done(o *op) {
	switch o.kind {
	case opAdd:
		if p.adds[o.add.Addr] == o {
			delete(p.adds, o.add.Addr)
		}
	case opDelete:
		delete(p.dels, o.target.ID)
	case opSetFlags:
		delete(p.flags, o.target.ID)
	case opSetLimits:
		if p.limits == o {
			p.limits = nil
		}
	case opDump:
		p.dumps--
	}
}

// unwantedOps lists the queued endpoint operations a new plan no longer
// wants: additions of endpoints that are not wanted any more (or are wanted
// with other flags, port or device), and removals of endpoints the plan
// keeps. The engine withdraws those the worker has not started; the others
// finish, and their result brings a new plan.
func unwantedOps(want []Endpoint, plan EndpointPlan, p *pendingOps) []*op {
	var out []*op
	wanted := make(map[netip.Addr]Endpoint, len(want))
	for _, w := range want {
		wanted[w.Addr] = w
	}
	for addr, o := range p.adds {
		if w, ok := wanted[addr]; !ok || w != o.add {
			out = append(out, o)
		}
	}
	deleting := make(map[uint8]bool, len(plan.Delete))
	for _, ep := range plan.Delete {
		deleting[ep.ID] = true
	}
	for id, o := range p.dels {
		if !deleting[id] {
			out = append(out, o)
		}
	}
	return out
}

// scheduleInput is what scheduleEndpoints decides on.
type scheduleInput struct {
	Plan EndpointPlan
	// Kernel is the endpoint table as far as we know it.
	Kernel []netlinkmptcp.Endpoint
	// Pending are the operations queued or running, after the unwanted
	// ones were withdrawn.
	Pending *pendingOps
	// Ready tells whether a write may be tried now (false while it backs
	// off after a failure). It is asked about every write the plan wants,
	// queued or not, so that a failure's schedule lasts while it is wanted.
	Ready func(opKey) bool
	// Dead tells whether an endpoint's address can no longer carry
	// traffic: gone, or its link gone or without carrier.
	Dead func(netlinkmptcp.Endpoint) bool
}

// heldOp is a wanted operation not queued yet, and why.
type heldOp struct {
	key opKey
	why string
}

// Reasons an operation is held.
const (
	heldPending  = "already queued"
	heldBackoff  = "backing off after a failure"
	heldRemoval  = "waiting for the endpoint's removal"
	heldSlotBusy = "waiting for a slot an unwanted addition holds"
)

// endpointSchedule is what to queue now, in order, and what waits.
type endpointSchedule struct {
	queue []*op
	held  []heldOp
}

// scheduleEndpoints decides which of the plan's endpoint operations to
// queue now. The rules (docs/architecture.md, "Endpoint writes"):
//   - a removal is queued once; a removal of an endpoint whose address is
//     dead also closes the connections' initial subflows from that address
//     (deleting the endpoint closes only the subflows it opened);
//   - a flag change waits for a removal of the same endpoint;
//   - an addition needs a slot among the kernel's MaxEndpoints: the table
//     and the additions under way hold slots, the removals under way free
//     them, and an IMPLICIT endpoint's address is replaced in its own slot;
//   - an addition that needs a slot only a removal frees, or whose address
//     a removal still holds, runs after the removals queued before it: it
//     never overtakes the removal it depends on;
//   - an addition that would need a slot nothing frees waits.
func scheduleEndpoints(in scheduleInput) endpointSchedule {
	var s endpointSchedule
	p := in.Pending
	queuedDel := map[uint8]bool{}
	for _, ep := range in.Plan.Delete {
		k := deleteKey(ep.ID)
		ready := in.Ready(k)
		switch {
		case p.dels[ep.ID] != nil:
			s.held = append(s.held, heldOp{k, heldPending})
			continue
		case !ready:
			s.held = append(s.held, heldOp{k, heldBackoff})
			continue
		}
		queuedDel[ep.ID] = true
		s.queue = append(s.queue, &op{kind: opDelete, target: ep})
		if in.Dead(ep) {
			s.queue = append(s.queue, &op{kind: opCloseInitial, target: ep})
		}
	}
	removing := func(id uint8) bool { return p.dels[id] != nil || queuedDel[id] }
	for _, fc := range in.Plan.SetFlags {
		k := flagsKey(fc.Endpoint.ID)
		ready := in.Ready(k)
		switch {
		case p.flags[fc.Endpoint.ID] != nil:
			s.held = append(s.held, heldOp{k, heldPending})
		case removing(fc.Endpoint.ID):
			s.held = append(s.held, heldOp{k, heldRemoval})
		case !ready:
			s.held = append(s.held, heldOp{k, heldBackoff})
		default:
			s.queue = append(s.queue, &op{kind: opSetFlags, target: fc.Endpoint, flags: fc.Flags})
		}
	}

	removalAt := map[netip.Addr]bool{}
	for _, o := range p.dels {
		removalAt[o.target.Addr] = true
	}
	for _, ep := range in.Plan.Delete {
		if queuedDel[ep.ID] {
			removalAt[ep.Addr] = true
		}
	}
	implicitAt := map[netip.Addr]bool{}
	for _, ep := range in.Kernel {
		if ep.Flags&netlinkmptcp.FlagImplicit != 0 {
			implicitAt[ep.Addr] = true
		}
	}
	used := len(in.Kernel) + len(p.adds)
	freeing := len(p.dels) + len(queuedDel)
	for _, add := range in.Plan.Add {
		k := addKey(add.Addr)
		ready := in.Ready(k)
		if p.adds[add.Addr] != nil {
			s.held = append(s.held, heldOp{k, heldPending})
			continue
		}
		if !ready {
			s.held = append(s.held, heldOp{k, heldBackoff})
			continue
		}
		needsSlot := !implicitAt[add.Addr]
		if needsSlot && used+1-freeing > netlinkmptcp.MaxEndpoints {
			// Its slot is held by an addition under way whose endpoint is
			// no longer wanted: that one's removal is planned when its
			// result comes back, and this addition with it.
			s.held = append(s.held, heldOp{k, heldSlotBusy})
			continue
		}
		full := needsSlot && used+1 > netlinkmptcp.MaxEndpoints
		s.queue = append(s.queue, &op{kind: opAdd, add: add, afterRemovals: full || removalAt[add.Addr]})
		if needsSlot {
			used++
		}
	}
	return s
}
