package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// sample is a set of measured durations.
type sample []time.Duration

// pct is the p-th percentile (0..100), nearest rank; 0 when empty.
func (s sample) pct(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	rank := int(math.Ceil(p/100*float64(len(c)))) - 1
	return c[max(0, min(rank, len(c)-1))]
}

func (s sample) max() time.Duration { return s.pct(100) }

// ms formats a duration in milliseconds with a precision that suits it.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case d == 0:
		return "0"
	case v < 1:
		return fmt.Sprintf("%.3f ms", v)
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 1000:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f s", v/1000)
}

// ratio is a/b as "1.23×", or "–" when b is 0.
func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	r := a / b
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f×", r)
	case r >= 10:
		return fmt.Sprintf("%.1f×", r)
	}
	return fmt.Sprintf("%.2f×", r)
}

func dratio(a, b time.Duration) string { return ratio(float64(a), float64(b)) }

func minDur(ds ...time.Duration) time.Duration { return slices.Min(ds) }

func maxDur(ds ...time.Duration) time.Duration { return slices.Max(ds) }
