package pm

import (
	"testing"
	"time"
)

func TestFlapHoldDown(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type step struct {
		at       time.Duration
		up       bool
		wantHold time.Duration
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"two flaps hold nothing", []step{
			{0, true, 0}, {1 * time.Second, false, 0}, {2 * time.Second, true, 0},
			{3 * time.Second, false, 0}, {4 * time.Second, true, 0},
		}},
		{"third flap in 10s holds 1s, then doubling to 30s", []step{
			{0, true, 0},
			{1 * time.Second, false, 0}, {1100 * time.Millisecond, true, 0},
			{2 * time.Second, false, 0}, {2100 * time.Millisecond, true, 0},
			{3 * time.Second, false, time.Second}, {3100 * time.Millisecond, true, time.Second},
			{5 * time.Second, false, 2 * time.Second}, {5100 * time.Millisecond, true, 2 * time.Second},
			{8 * time.Second, false, 4 * time.Second}, {9 * time.Second, true, 4 * time.Second},
			{14 * time.Second, false, 8 * time.Second}, {15 * time.Second, true, 8 * time.Second},
			{24 * time.Second, false, 16 * time.Second}, {25 * time.Second, true, 16 * time.Second},
			{42 * time.Second, false, 30 * time.Second}, {43 * time.Second, true, 30 * time.Second},
			{74 * time.Second, false, 30 * time.Second},
		}},
		{"flaps spread wider than the window hold nothing", []step{
			{0, true, 0},
			{1 * time.Second, false, 0}, {2 * time.Second, true, 0},
			{8 * time.Second, false, 0}, {9 * time.Second, true, 0},
			{15 * time.Second, false, 0}, {16 * time.Second, true, 0},
		}},
		{"a quiet minute forgets the history", []step{
			{0, true, 0},
			{1 * time.Second, false, 0}, {1100 * time.Millisecond, true, 0},
			{2 * time.Second, false, 0}, {2100 * time.Millisecond, true, 0},
			{3 * time.Second, false, time.Second}, {3100 * time.Millisecond, true, time.Second},
			{64 * time.Second, false, 0}, {65 * time.Second, true, 0},
		}},
		{"repeated equal states are not transitions", []step{
			{0, true, 0}, {1 * time.Second, false, 0}, {1100 * time.Millisecond, false, 0},
			{1200 * time.Millisecond, false, 0}, {2 * time.Second, true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlapTracker(DefaultFlapPolicy)
			for i, s := range tt.steps {
				f.carrier(7, s.up, at(s.at))
				if got := f.holdDown(7); got != s.wantHold {
					t.Fatalf("step %d (%v up=%v): hold-down %v, want %v", i, s.at, s.up, got, s.wantHold)
				}
			}
		})
	}
}

// A link that keeps flapping starts one hold-down, which grows: one
// warning, not one per flap.
func TestFlapHoldDownStartsOnce(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := newFlapTracker(DefaultFlapPolicy)
	f.carrier(7, true, t0)
	starts := 0
	for i := range 200 {
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		if f.carrier(7, false, at) {
			starts++
		}
		f.carrier(7, true, at.Add(50*time.Millisecond))
	}
	if starts != 1 {
		t.Errorf("200 flaps started %d hold-downs, want 1", starts)
	}
}

func TestFlapUsableAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := newFlapTracker(DefaultFlapPolicy)
	f.carrier(3, true, t0)
	if !f.usableAt(3).IsZero() {
		t.Fatal("a stable link must be usable at once")
	}
	for i := range 3 {
		f.carrier(3, false, t0.Add(time.Duration(2*i+1)*time.Second))
		f.carrier(3, true, t0.Add(time.Duration(2*i+2)*time.Second))
	}
	want := t0.Add(6 * time.Second).Add(time.Second)
	if got := f.usableAt(3); !got.Equal(want) {
		t.Errorf("usableAt = %v, want %v (came up at 6s, held 1s)", got, want)
	}
	f.forget(3)
	if !f.usableAt(3).IsZero() {
		t.Error("a forgotten link has no hold-down")
	}
}
