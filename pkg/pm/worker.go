package pm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// opKind is a kind of kernel operation: the generic-netlink ones the worker
// runs, and the rtnetlink writes of source routing, which the engine makes
// itself (they take another lock and are fast).
type opKind uint8

const (
	opAdd opKind = iota + 1
	opDelete
	opSetFlags
	opSetLimits
	opDump
	opCloseInitial
	opAddRule
	opDeleteRule
	opAddRoute
	opReplaceRoute
	opDeleteRoute
)

var opNames = [...]string{
	opAdd:          "add endpoint",
	opDelete:       "delete endpoint",
	opSetFlags:     "set flags of endpoint",
	opSetLimits:    "set limits",
	opDump:         "dump endpoints",
	opCloseInitial: "close initial subflows",
	opAddRule:      "add rule",
	opDeleteRule:   "delete rule",
	opAddRoute:     "add route",
	opReplaceRoute: "replace route",
	opDeleteRoute:  "delete route",
}

func (k opKind) String() string {
	if int(k) < len(opNames) && opNames[k] != "" {
		return opNames[k]
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

// op is one generic-netlink write (or the endpoint dump), queued to the
// worker and sent back to the engine with its result.
type op struct {
	seq  uint64
	kind opKind
	// add is the endpoint to create (opAdd).
	add Endpoint
	// target is the endpoint deleted or changed (opDelete, opSetFlags), or
	// whose address's initial subflows are closed (opCloseInitial).
	target netlinkmptcp.Endpoint
	flags  netlinkmptcp.Flags
	limits netlinkmptcp.Limits
	// afterRemovals holds an add behind the removals queued before it: it
	// reuses their address or needs the slot they free.
	afterRemovals bool

	// Results.
	stored     netlinkmptcp.Endpoint
	endpoints  []netlinkmptcp.Endpoint // opDump, or a refresh after a failed add
	seenLimits netlinkmptcp.Limits
	err        error
	took       time.Duration
}

// worker runs the generic-netlink writes off the engine's goroutine.
// Removals are the kernel's slow path (each waits an RCU grace period under
// a host-wide lock): they run in order, and additions, flag changes and
// limits overtake the removals still waiting, unless they depend on them.
type worker struct {
	kernel  MPTCP
	results chan<- *op

	mu    sync.Mutex
	queue []*op
	wake  chan struct{}
}

func newWorker(k MPTCP, results chan<- *op) *worker {
	return &worker{kernel: k, results: results, wake: make(chan struct{}, 1)}
}

func (w *worker) enqueue(o *op) {
	w.mu.Lock()
	w.queue = append(w.queue, o)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// cancel removes a queued op that has not started. It reports false when
// the op already runs or ran: its result will arrive.
func (w *worker) cancel(seq uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, o := range w.queue {
		if o.seq == seq {
			w.queue = append(w.queue[:i], w.queue[i+1:]...)
			return true
		}
	}
	return false
}

// take removes and returns the next op to run.
func (w *worker) take() *op {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := nextOp(w.queue)
	if i < 0 {
		return nil
	}
	o := w.queue[i]
	w.queue = append(w.queue[:i], w.queue[i+1:]...)
	return o
}

// nextOp picks the index of the op to run next: the first fast op (not a
// removal or dump) that does not wait for an earlier removal, else the
// oldest op.
func nextOp(queue []*op) int {
	if len(queue) == 0 {
		return -1
	}
	removalBefore := false
	for i, o := range queue {
		switch o.kind {
		case opDelete, opCloseInitial:
			removalBefore = true
		case opDump:
		default:
			if !o.afterRemovals || !removalBefore {
				return i
			}
		}
	}
	return 0
}

func (w *worker) run(ctx context.Context) {
	for {
		o := w.take()
		if o == nil {
			select {
			case <-w.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		w.do(o)
		select {
		case w.results <- o:
		case <-ctx.Done():
			return
		}
	}
}

func (w *worker) do(o *op) {
	start := time.Now()
	switch o.kind {
	case opAdd:
		o.stored, o.err = w.kernel.AddEndpoint(o.add.Kernel())
		if errors.Is(o.err, netlinkmptcp.ErrExists) || errors.Is(o.err, netlinkmptcp.ErrTableFull) {
			// Someone else changed the table: learn it now, so the
			// retry is planned against the truth (a resync is not needed).
			o.endpoints, _ = w.kernel.Endpoints()
		}
	case opDelete:
		o.err = w.kernel.DeleteEndpoint(o.target.ID)
	case opSetFlags:
		o.err = w.kernel.SetEndpointFlags(o.target.ID, o.flags)
	case opSetLimits:
		o.err = w.kernel.SetLimits(o.limits.Update())
	case opCloseInitial:
		o.err = w.kernel.CloseInitialSubflows(o.target.Addr)
	case opDump:
		o.endpoints, o.err = w.kernel.Endpoints()
		if o.err == nil {
			o.seenLimits, o.err = w.kernel.Limits()
		}
	}
	o.took = time.Since(start)
}
