package bitnames

import "testing"

var names = []Name{{0x1, "signal"}, {0x2, "subflow"}, {0x4, "backup"}}

func TestRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		v    uint32
		text string
	}{{0, "none"}, {0x2, "subflow"}, {0x6, "subflow,backup"}, {0x41, "signal,0x40"}} {
		if got := Format(tt.v, names); got != tt.text {
			t.Errorf("Format(%#x) = %q, want %q", tt.v, got, tt.text)
		}
		if got, err := Parse(tt.text, names); err != nil || got != tt.v {
			t.Errorf("Parse(%q) = %#x, %v, want %#x", tt.text, got, err, tt.v)
		}
	}
	if _, err := Parse("subflow,fast", names); err == nil || err.Error() != `unknown flag "fast" (want signal, subflow or backup)` {
		t.Errorf("Parse of an unknown word: %v", err)
	}
}
