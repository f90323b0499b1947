package logging

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// sentEntry is one call of journal.Send.
type sentEntry struct {
	Message  string
	Priority journal.Priority
	Vars     map[string]string
}

// captureLogger returns a debug-level logger on a journal core whose entries
// land in the returned slice instead of journald.
func captureLogger() (*Logger, *[]sentEntry) {
	core, sent := captureCore()
	return NewLogger(core), sent
}

func captureCore() (zapcore.Core, *[]sentEntry) {
	var sent []sentEntry
	core := newJournalCore(zapcore.DebugLevel, "mptcpgd", func(msg string, p journal.Priority, vars map[string]string) error {
		sent = append(sent, sentEntry{msg, p, vars})
		return nil
	})
	return core, &sent
}

type limits struct{ subflows, accepted int }

func (l limits) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddInt("subflows", l.subflows)
	enc.AddInt("add_addr_accepted", l.accepted)
	return nil
}

func TestJournalCoreEntry(t *testing.T) {
	addr := netip.MustParseAddr("192.0.2.2")
	tests := []struct {
		name string
		log  func(*Logger)
		want []sentEntry
	}{
		{
			name: "daemon fields are upper-cased journal fields and key=value pairs in the message",
			log: func(l *Logger) {
				l.With(zap.String(FieldIface, "eth1")).Error("add endpoint failed",
					zap.Stringer(FieldAddr, addr),
					zap.Uint8(FieldEndpointID, 3),
					zap.Uint32(FieldTable, 10002),
					zap.Duration("hold_down", 1500*time.Millisecond),
					zap.Error(errors.New("address exists")))
			},
			want: []sentEntry{{
				Message:  `add endpoint failed iface=eth1 addr=192.0.2.2 endpoint_id=3 table=10002 hold_down=1.5s error="address exists"`,
				Priority: journal.PriErr,
				Vars: map[string]string{
					"SYSLOG_IDENTIFIER": "mptcpgd",
					"IFACE":             "eth1",
					"ADDR":              "192.0.2.2",
					"ENDPOINT_ID":       "3",
					"TABLE":             "10002",
					"HOLD_DOWN":         "1.5s",
					"ERROR":             "address exists",
				},
			}},
		},
		{
			name: "values of other types render as text",
			log: func(l *Logger) {
				l.Debug("values",
					zap.Any("prefix", netip.MustParsePrefix("2001:db8::/64")),
					zap.Any("addrport", netip.AddrPortFrom(addr, 8080)),
					zap.Bool("up", true),
					zap.Float64("ratio", 0.25),
					zap.Int("neg", -7),
					zap.Time("since", time.Date(2024, 5, 1, 12, 0, 0, 5, time.UTC)),
					zap.Strings("flags", []string{"subflow", "backup"}),
					zap.Object("limits", limits{4, 2}),
					zap.Any("raw", struct{ A int }{1}),
					zap.Binary("bytes", []byte{0xff, 0}),
					zap.Stringer("nil_addr", (*netip.Addr)(nil)))
			},
			want: []sentEntry{{
				Message: `values prefix=2001:db8::/64 addrport=192.0.2.2:8080 up=true ratio=0.25 neg=-7 since=2024-05-01T12:00:00.000000005Z ` +
					`flags="[\"subflow\",\"backup\"]" limits="{\"add_addr_accepted\":2,\"subflows\":4}" raw="{\"A\":1}" bytes="/wA=" nil_addr=<nil>`,
				Priority: journal.PriDebug,
				Vars: map[string]string{
					"SYSLOG_IDENTIFIER": "mptcpgd",
					"PREFIX":            "2001:db8::/64",
					"ADDRPORT":          "192.0.2.2:8080",
					"UP":                "true",
					"RATIO":             "0.25",
					"NEG":               "-7",
					"SINCE":             "2024-05-01T12:00:00.000000005Z",
					"FLAGS":             `["subflow","backup"]`,
					"LIMITS":            `{"add_addr_accepted":2,"subflows":4}`,
					"RAW":               `{"A":1}`,
					"BYTES":             "/wA=",
					"NIL_ADDR":          "<nil>",
				},
			}},
		},
		{
			name: "keys journald refuses are sanitized and fields the core sets are not overwritten",
			log: func(l *Logger) {
				l.Info("keys",
					zap.String("gw-family", "ipv4"),
					zap.String("_private", "a"),
					zap.String("9lives", "b"),
					zap.String("größe", "c"),
					zap.String("message", "d"),
					zap.Int("priority", 10),
					zap.String("", "e"),
					zap.String(strings.Repeat("k", 70), "f"))
			},
			want: []sentEntry{{
				Message:  `keys gw-family=ipv4 _private=a 9lives=b größe=c message=d priority=10 =e ` + strings.Repeat("k", 70) + `=f`,
				Priority: journal.PriInfo,
				Vars: map[string]string{
					"SYSLOG_IDENTIFIER":     "mptcpgd",
					"GW_FAMILY":             "ipv4",
					"PRIVATE":               "a",
					"FIELD_9LIVES":          "b",
					"GR__E":                 "c",
					"FIELD_MESSAGE":         "d",
					"FIELD_PRIORITY":        "10",
					"FIELD_":                "e",
					strings.Repeat("K", 64): "f",
				},
			}},
		},
		{
			name: "logger names, namespaces and repeated keys",
			log: func(l *Logger) {
				pm := l.Named("pm").Named("routes").With(zap.String(FieldIface, "eth0"))
				pm.Warn("no gateway", zap.String(FieldIface, "eth1"), zap.Namespace("peer"), zap.String(FieldAddr, "198.51.100.7"))
				l.Info("parent unchanged")
			},
			want: []sentEntry{
				{
					Message:  `pm.routes: no gateway iface=eth1 peer.addr=198.51.100.7`,
					Priority: journal.PriWarning,
					Vars: map[string]string{
						"SYSLOG_IDENTIFIER": "mptcpgd",
						"LOGGER":            "pm.routes",
						"IFACE":             "eth1",
						"PEER_ADDR":         "198.51.100.7",
					},
				},
				{
					Message:  "parent unchanged",
					Priority: journal.PriInfo,
					Vars:     map[string]string{"SYSLOG_IDENTIFIER": "mptcpgd"},
				},
			},
		},
		{
			name: "message values that need quoting",
			log: func(l *Logger) {
				l.Info("quoting", zap.String("empty", ""), zap.String("eq", "a=b"), zap.Error(errors.Join(errors.New("one"), errors.New("two"))))
			},
			want: []sentEntry{{
				Message:  `quoting empty="" eq="a=b" error="one\ntwo"`,
				Priority: journal.PriInfo,
				Vars: map[string]string{
					"SYSLOG_IDENTIFIER": "mptcpgd",
					"EMPTY":             "",
					"EQ":                "a=b",
					"ERROR":             "one\ntwo",
				},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, sent := captureLogger()
			tt.log(l)
			if diff := cmp.Diff(tt.want, *sent); diff != "" {
				t.Errorf("sent entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJournalPriority(t *testing.T) {
	tests := []struct {
		level zapcore.Level
		want  journal.Priority
	}{
		{zapcore.DebugLevel, journal.PriDebug},
		{zapcore.InfoLevel, journal.PriInfo},
		{zapcore.WarnLevel, journal.PriWarning},
		{zapcore.ErrorLevel, journal.PriErr},
		{zapcore.DPanicLevel, journal.PriCrit},
		{zapcore.PanicLevel, journal.PriCrit},
		{zapcore.FatalLevel, journal.PriCrit},
	}
	for _, tt := range tests {
		t.Run(tt.level.String(), func(t *testing.T) {
			var got journal.Priority = -1
			core := newJournalCore(zapcore.DebugLevel, "mptcpgd", func(_ string, p journal.Priority, _ map[string]string) error {
				got = p
				return nil
			})
			if err := core.Write(zapcore.Entry{Level: tt.level, Message: "m"}, nil); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("level %s sent priority %d, want %d", tt.level, got, tt.want)
			}
		})
	}
}

func TestJournalCallerAndStack(t *testing.T) {
	// The daemon's logger adds no caller; zap's, on the same core, can.
	core, sent := captureCore()
	l := zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel))
	l.Error("with caller")
	if len(*sent) != 1 {
		t.Fatalf("sent %d entries, want 1", len(*sent))
	}
	vars := (*sent)[0].Vars
	if !strings.HasSuffix(vars["CODE_FILE"], "pkg/logging/journal_test.go") {
		t.Errorf("CODE_FILE = %q, want this test file", vars["CODE_FILE"])
	}
	if _, err := strconv.Atoi(vars["CODE_LINE"]); err != nil {
		t.Errorf("CODE_LINE = %q, want a line number", vars["CODE_LINE"])
	}
	if !strings.HasSuffix(vars["CODE_FUNC"], ".TestJournalCallerAndStack") {
		t.Errorf("CODE_FUNC = %q, want this test function", vars["CODE_FUNC"])
	}
	if !strings.Contains(vars["STACKTRACE"], "TestJournalCallerAndStack") {
		t.Errorf("STACKTRACE = %q, want a stack through this test function", vars["STACKTRACE"])
	}
}

func TestJournalSendError(t *testing.T) {
	core := newJournalCore(zapcore.InfoLevel, "mptcpgd", func(string, journal.Priority, map[string]string) error {
		return errors.New("connection refused")
	})
	err := core.Write(zapcore.Entry{Level: zapcore.InfoLevel, Message: "m"}, nil)
	if err == nil || err.Error() != "send log entry to journald: connection refused" {
		t.Fatalf("Write error = %v, want it to name journald and the cause", err)
	}
}

func TestJournalLevelFilter(t *testing.T) {
	level := NewAtomicLevelAt(zapcore.WarnLevel)
	var got []string
	core := newJournalCore(level, "mptcpgd", func(msg string, _ journal.Priority, _ map[string]string) error {
		got = append(got, msg)
		return nil
	})
	l := NewLogger(core)
	l.Info("hidden")
	l.Warn("shown")
	level.SetLevel(zapcore.DebugLevel)
	l.Debug("shown after the level changed")
	want := []string{"shown", "shown after the level changed"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}
