package daemon

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// tuneRuntime fits the Go runtime to a daemon that idles most of the time.
// GOMAXPROCS, GOGC or GOMEMLIMIT in the environment win over each part.
//
// One P: the daemon's work is a few goroutines that take turns, and with
// more Ps the runtime wakes a second thread for each event, timer or reply,
// which was most of its CPU and of its wake-ups.
//
// No periodic collection: the runtime forces one every two minutes, some
// 50 context switches on an idle daemon, ten times what everything else
// costs. Collection is driven by a memory limit instead, which follows the
// live heap as GOGC=100 would (twice the live heap, at least minHeapGoal,
// plus what is not heap).
func tuneRuntime() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(-1)
	followLiveHeap()
}

// minHeapGoal is the least heap the memory limit leaves room for. The
// daemon allocates little per event (decoding does not allocate), so a
// small floor costs a few collections of a small heap during a burst and
// keeps its resident memory near idle after one.
const minHeapGoal = 1 << 20

// followLiveHeap sets the memory limit from the last collection's live heap
// and again after every collection.
func followLiveHeap() {
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	metrics.Read(samples)
	v := func(i int) uint64 { return samples[i].Value.Uint64() }
	live := v(0)
	notHeap := v(1) - v(2) - v(3) - v(4) - v(5)
	debug.SetMemoryLimit(int64(notHeap + max(2*live, minHeapGoal)))
	// A finalizer runs after the collection that finds its object
	// unreachable: it re-arms itself for the next one.
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) { followLiveHeap() })
}

// gcSentinel is big enough not to share a tiny-allocator block, whose
// finalizers may never run.
type gcSentinel struct{ _ [16]byte }
