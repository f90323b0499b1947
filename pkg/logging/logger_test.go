package logging

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// The logger writes what zap's would: level, name, message and typed
// fields, and nothing below its level, which can change while in use.
func TestLogger(t *testing.T) {
	level := NewAtomicLevelAt(InfoLevel)
	core, logs := observer.New(level)
	l := NewLogger(core).Named("pm").With(String("iface", "eth1"))
	l.Debug("hidden")
	l.Info("endpoint added", Stringer("addr", netip.MustParseAddr("192.0.2.2")), Uint8("endpoint_id", 3),
		Uint32("table", 10003), Int("n", -1), Int32("ifindex", 4), Duration("took", 1500*time.Millisecond), Bool("backup", true),
		Stringers("addrs", []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::2")}),
		Error(errors.New("boom")), Error(nil))
	if err := level.SetLevelText("debug"); err != nil {
		t.Fatal(err)
	}
	l.Debug("shown")
	if err := level.SetLevelText("loud"); err == nil {
		t.Error("SetLevelText(loud) accepted an unknown level")
	}

	entries := logs.AllUntimed()
	if len(entries) != 2 || entries[0].Message != "endpoint added" || entries[1].Message != "shown" {
		t.Fatalf("entries %+v, want endpoint added and shown", entries)
	}
	e := entries[0]
	if e.LoggerName != "pm" || e.Level != InfoLevel {
		t.Errorf("name %q level %v, want pm info", e.LoggerName, e.Level)
	}
	want := map[string]any{
		"iface": "eth1", "addr": "192.0.2.2", "endpoint_id": uint8(3), "table": uint32(10003), "n": int64(-1),
		"ifindex": int32(4), "took": 1500 * time.Millisecond, "backup": true,
		"addrs": []any{"192.0.2.2", "2001:db8::2"}, "error": "boom",
	}
	got := e.ContextMap()
	for k, v := range want {
		if g, ok := got[k]; !ok || !equalValue(g, v) {
			t.Errorf("field %s = %#v, want %#v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("fields %v, want exactly %v (a nil error adds none)", got, want)
	}
}

func equalValue(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestNopWritesNothing(t *testing.T) {
	l := Nop()
	if ce := l.Check(ErrorLevel, "x"); ce != nil {
		t.Errorf("Nop().Check = %v, want nil", ce)
	}
	l.Error("nothing")
	if l.Core().Enabled(zapcore.ErrorLevel) {
		t.Error("Nop's core is enabled")
	}
}
