// Package metrics is a small registry of counters, gauges and histograms
// and their Prometheus text exposition (format 0.0.4). It exists instead of
// prometheus/client_golang because the daemon's idle memory is budgeted:
// that library links net/http, protobuf and a goroutine-heavy collector
// model, several MiB of binary and heap for what a few maps do here.
//
// Series are identified by their label values; families are written in
// registration order and series in label-value order, so the same state
// always renders to the same bytes (the textfile writer compares them).
package metrics

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
)

// Kind is a metric family's type.
type Kind uint8

// Kinds, as the exposition's TYPE line names them.
const (
	KindCounter Kind = iota + 1
	KindGauge
	KindHistogram
)

func (k Kind) String() string {
	switch k {
	case KindCounter:
		return "counter"
	case KindGauge:
		return "gauge"
	case KindHistogram:
		return "histogram"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Registry holds metric families. It is safe for concurrent use.
type Registry struct {
	mu       sync.Mutex
	families []*family
}

type family struct {
	name, help string
	kind       Kind
	labels     []string
	buckets    []float64 // upper bounds, ascending, without +Inf
	series     map[string]*series
}

type series struct {
	values []string
	value  float64
	// Histograms: counts per bucket (not cumulative), sum and count.
	counts []uint64
	sum    float64
	count  uint64
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

func (r *Registry) register(name, help string, kind Kind, buckets []float64, labels []string) *family {
	if !validName(name) {
		panic("metrics: invalid metric name " + name)
	}
	if kind == KindCounter && !strings.HasSuffix(name, "_total") {
		panic("metrics: counter " + name + " does not end in _total")
	}
	for _, l := range labels {
		if !validLabel(l) || l == "le" {
			panic("metrics: invalid label name " + l + " of " + name)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.families {
		if f.name == name {
			panic("metrics: " + name + " registered twice")
		}
	}
	f := &family{name: name, help: help, kind: kind, labels: labels, buckets: buckets, series: map[string]*series{}}
	r.families = append(r.families, f)
	return f
}

// get returns the series with the label values lv, created at zero; r.mu
// is held.
func (f *family) get(lv []string) *series {
	if len(lv) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s has labels %v, got %d values", f.name, f.labels, len(lv)))
	}
	key := strings.Join(lv, "\xff")
	s, ok := f.series[key]
	if !ok {
		s = &series{values: slices.Clone(lv)}
		if f.kind == KindHistogram {
			s.counts = make([]uint64, len(f.buckets)+1)
		}
		f.series[key] = s
	}
	return s
}

// Counter is a family of counters: values that only go up.
type Counter struct {
	r *Registry
	f *family
}

// Counter registers a counter family; its name must end in _total.
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	return &Counter{r, r.register(name, help, KindCounter, nil, labels)}
}

// Add adds v (not negative) to the series with label values lv.
func (c *Counter) Add(v float64, lv ...string) {
	if v < 0 || math.IsNaN(v) {
		panic(fmt.Sprintf("metrics: counter %s decreased by %v", c.f.name, v))
	}
	c.r.mu.Lock()
	c.f.get(lv).value += v
	c.r.mu.Unlock()
}

// Inc adds one.
func (c *Counter) Inc(lv ...string) { c.Add(1, lv...) }

// Touch creates the series at zero if it does not exist, so that rate()
// sees the first increase.
func (c *Counter) Touch(lv ...string) {
	c.r.mu.Lock()
	c.f.get(lv)
	c.r.mu.Unlock()
}

// Gauge is a family of values that go up and down.
type Gauge struct {
	r *Registry
	f *family
}

// Gauge registers a gauge family.
func (r *Registry) Gauge(name, help string, labels ...string) *Gauge {
	return &Gauge{r, r.register(name, help, KindGauge, nil, labels)}
}

// Set sets the series with label values lv.
func (g *Gauge) Set(v float64, lv ...string) {
	g.r.mu.Lock()
	g.f.get(lv).value = v
	g.r.mu.Unlock()
}

// Reset removes every series: what is measured anew (the interfaces of the
// moment) leaves no series behind for what is gone.
func (g *Gauge) Reset() {
	g.r.mu.Lock()
	clear(g.f.series)
	g.r.mu.Unlock()
}

// Histogram is a family of histograms.
type Histogram struct {
	r *Registry
	f *family
}

// Histogram registers a histogram family with the given bucket upper
// bounds (ascending; +Inf is implied).
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *Histogram {
	if !slices.IsSorted(buckets) || len(buckets) == 0 || math.IsInf(buckets[len(buckets)-1], 1) {
		panic("metrics: histogram " + name + " needs ascending finite buckets")
	}
	return &Histogram{r, r.register(name, help, KindHistogram, slices.Clone(buckets), labels)}
}

// Observe counts v in the series with label values lv.
func (h *Histogram) Observe(v float64, lv ...string) {
	i, _ := slices.BinarySearch(h.f.buckets, v)
	h.r.mu.Lock()
	s := h.f.get(lv)
	s.counts[i]++
	s.sum += v
	s.count++
	h.r.mu.Unlock()
}

// ExponentialBuckets returns n bounds from start, each factor times the
// previous.
func ExponentialBuckets(start, factor float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = start
		start *= factor
	}
	return out
}

func validName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

func validLabel(s string) bool {
	return validName(s) && !strings.Contains(s, ":") && !strings.HasPrefix(s, "__")
}
