package pm

import "testing"

func TestNextOp(t *testing.T) {
	del := func(seq uint64) *op { return &op{seq: seq, kind: opDelete} }
	add := func(seq uint64, after bool) *op { return &op{seq: seq, kind: opAdd, afterRemovals: after} }
	tests := []struct {
		name  string
		queue []*op
		want  uint64
	}{
		{"empty", nil, 0},
		{"oldest removal first when alone", []*op{del(1), del(2)}, 1},
		{"an independent add overtakes queued removals", []*op{del(1), del(2), add(3, false)}, 3},
		{"a dependent add waits for the removals before it", []*op{del(1), add(2, true)}, 1},
		{"a dependent add with no removal before it runs", []*op{add(1, true), del(2)}, 1},
		{"limits overtake removals", []*op{del(1), {seq: 2, kind: opSetLimits}}, 2},
		{"the dump waits its turn but does not hold fast ops", []*op{{seq: 1, kind: opDump}, add(2, true)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := nextOp(tt.queue)
			var got uint64
			if i >= 0 {
				got = tt.queue[i].seq
			}
			if got != tt.want {
				t.Errorf("next op = %d, want %d", got, tt.want)
			}
		})
	}
}
