package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"
)

func TestNewRejectsUnknownValues(t *testing.T) {
	tests := []struct {
		opt  Options
		want string
	}{
		{Options{Level: "verbose"}, `unknown log level "verbose" (want debug, info, warn or error)`},
		{Options{Level: "INFO"}, `unknown log level "INFO" (want debug, info, warn or error)`},
		{Options{Format: "text"}, `unknown log format "text" (want auto, journal, json or console)`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, _, err := New(tt.opt)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("New(%+v) error = %v, want %q", tt.opt, err, tt.want)
			}
		})
	}
}

func TestJSONFormat(t *testing.T) {
	var buf bytes.Buffer
	l, _, err := New(Options{Format: "json", Stderr: &buf})
	if err != nil {
		t.Fatal(err)
	}
	l.Named("pm").With(zap.String(FieldIface, "eth1")).Info("endpoint added",
		zap.Stringer(FieldAddr, netip.MustParseAddr("192.0.2.2")),
		zap.Uint8(FieldEndpointID, 3),
		zap.Duration("hold_down", 1500*time.Millisecond))
	l.Error("add endpoint failed", zap.Error(errors.New("address exists")))

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
	}
	var got []map[string]any
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, line)
		}
		ts, ok := m["time"].(string)
		if _, err := time.Parse(time.RFC3339Nano, ts); !ok || err != nil {
			t.Errorf("time = %v, want an RFC 3339 timestamp", m["time"])
		}
		delete(m, "time")
		got = append(got, m)
	}
	want := []map[string]any{
		{"level": "info", "logger": "pm", "msg": "endpoint added", "iface": "eth1", "addr": "192.0.2.2", "endpoint_id": 3.0, "hold_down": "1.5s"},
		{"level": "error", "msg": "add endpoint failed", "error": "address exists"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON lines (-want +got):\n%s", diff)
	}
}

func TestConsoleFormat(t *testing.T) {
	var buf bytes.Buffer
	l, _, err := New(Options{Format: "console", Stderr: &buf})
	if err != nil {
		t.Fatal(err)
	}
	l.Named("pm").Warn("no gateway", zap.String(FieldIface, "eth1"))

	// time, level, logger, message, fields: tab-separated on one line.
	cols := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\t")
	if len(cols) != 5 {
		t.Fatalf("console line has %d columns, want 5: %q", len(cols), buf.String())
	}
	if _, err := time.Parse(time.RFC3339Nano, cols[0]); err != nil {
		t.Errorf("first column %q is not a timestamp", cols[0])
	}
	if diff := cmp.Diff([]string{"WARN", "pm", "no gateway", `{"iface": "eth1"}`}, cols[1:]); diff != "" {
		t.Errorf("console columns (-want +got):\n%s", diff)
	}
}

func TestLevelFiltering(t *testing.T) {
	tests := []struct {
		level string
		want  []string
	}{
		{"debug", []string{"debug", "info", "warn", "error"}},
		{"", []string{"info", "warn", "error"}},
		{"info", []string{"info", "warn", "error"}},
		{"warn", []string{"warn", "error"}},
		{"error", []string{"error"}},
	}
	for _, tt := range tests {
		t.Run("level="+tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			l, _, err := New(Options{Level: tt.level, Format: "json", Stderr: &buf})
			if err != nil {
				t.Fatal(err)
			}
			l.Debug("debug")
			l.Info("info")
			l.Warn("warn")
			l.Error("error")
			if diff := cmp.Diff(tt.want, messages(t, &buf)); diff != "" {
				t.Errorf("logged messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAtomicLevelChanges(t *testing.T) {
	var buf bytes.Buffer
	l, level, err := New(Options{Level: "info", Format: "json", Stderr: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if level.Level() != zapcore.InfoLevel {
		t.Fatalf("returned level is %s, want info", level.Level())
	}
	child := l.Named("pm")
	l.Debug("hidden at info")
	level.SetLevel(zapcore.DebugLevel)
	child.Debug("shown at debug")
	level.SetLevel(zapcore.ErrorLevel)
	child.Warn("hidden at error")
	l.Error("shown at error")
	want := []string{"shown at debug", "shown at error"}
	if diff := cmp.Diff(want, messages(t, &buf)); diff != "" {
		t.Errorf("logged messages (-want +got):\n%s", diff)
	}
}

// messages returns the msg of every JSON line in buf.
func messages(t *testing.T, buf *bytes.Buffer) []string {
	t.Helper()
	var msgs []string
	dec := json.NewDecoder(buf)
	for {
		var line struct{ Msg string }
		if err := dec.Decode(&line); err == io.EOF {
			return msgs
		} else if err != nil {
			t.Fatalf("decode JSON line: %v", err)
		}
		msgs = append(msgs, line.Msg)
	}
}

// The journal side of auto is in TestJournalDatagrams, which needs a
// journal socket.
func TestAutoFormat(t *testing.T) {
	t.Run("not a terminal: JSON", func(t *testing.T) {
		t.Setenv("JOURNAL_STREAM", "")
		var buf bytes.Buffer
		logAuto(t, &buf)
		if !json.Valid(buf.Bytes()) {
			t.Errorf("output is not JSON: %q", buf.String())
		}
	})
	t.Run("JOURNAL_STREAM of another file: JSON", func(t *testing.T) {
		t.Setenv("JOURNAL_STREAM", "1:1")
		var buf bytes.Buffer
		logAuto(t, &buf)
		if !json.Valid(buf.Bytes()) {
			t.Errorf("output is not JSON: %q", buf.String())
		}
	})
	t.Run("malformed JOURNAL_STREAM: JSON", func(t *testing.T) {
		t.Setenv("JOURNAL_STREAM", "not-a-stream")
		var buf bytes.Buffer
		logAuto(t, &buf)
		if !json.Valid(buf.Bytes()) {
			t.Errorf("output is not JSON: %q", buf.String())
		}
	})
	t.Run("terminal: console", func(t *testing.T) {
		t.Setenv("JOURNAL_STREAM", "")
		terminal, screen := openPTY(t)
		logAuto(t, terminal)
		buf := make([]byte, 4096)
		n, err := screen.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		// The terminal turns "\n" into "\r\n".
		if out := string(buf[:n]); !strings.Contains(out, "\tINFO\tauto\r\n") {
			t.Errorf("terminal shows %q, want a console line", out)
		}
	})
}

func logAuto(t *testing.T, w io.Writer) {
	t.Helper()
	l, _, err := New(Options{Format: "auto", Stderr: w})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("auto")
}

// openPTY returns a pseudo-terminal's terminal side and the side that reads
// what is written to it.
func openPTY(t *testing.T) (terminal, screen *os.File) {
	t.Helper()
	screen, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		skipOrFail(t, fmt.Sprintf("needs a pseudo-terminal: %v", err))
	}
	t.Cleanup(func() { screen.Close() })
	fd := int(screen.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pseudo-terminal number: %v", err)
	}
	terminal, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminal.Close() })
	return terminal, screen
}

// skipOrFail skips outside CI and fails under CI=true, where every test
// must run.
func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot run under CI=true: %s", reason)
	}
	t.Skip(reason)
}
