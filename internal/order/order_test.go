package order

import "testing"

func TestFalseFirst(t *testing.T) {
	for _, tt := range []struct {
		a, b bool
		want int
	}{{false, false, 0}, {true, true, 0}, {false, true, -1}, {true, false, 1}} {
		if got := FalseFirst(tt.a, tt.b); got != tt.want {
			t.Errorf("FalseFirst(%v, %v) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
