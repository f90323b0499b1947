// Package logging builds the daemon's zap logger: journald's native protocol
// under systemd, a human-readable console format on a terminal, JSON lines
// otherwise.
package logging

import (
	"fmt"
	"io"
	"os"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"
)

// Field keys the daemon uses, so that the same thing carries the same name in
// every log line. In the journal a key becomes an upper-case field: "iface" is
// IFACE, "endpoint_id" is ENDPOINT_ID.
const (
	FieldIface      = "iface"       // interface name, e.g. eth1
	FieldIfindex    = "ifindex"     // interface index
	FieldAddr       = "addr"        // a local address
	FieldEndpointID = "endpoint_id" // MPTCP endpoint id
	FieldFlags      = "flags"       // MPTCP endpoint flags
	FieldTable      = "table"       // routing table number
	FieldGateway    = "gateway"     // next hop of a default route
	FieldConfig     = "config"      // path of the configuration file
	FieldError      = "error"       // the key Error uses
)

// DefaultIdentifier is the journal's SYSLOG_IDENTIFIER when Options leaves it
// empty.
const DefaultIdentifier = "mptcpgd"

// Options selects the logger's level, format and destination. The zero value
// is level info, format auto, os.Stderr.
type Options struct {
	// Level is debug, info, warn or error; empty means info.
	Level string
	// Format is auto, journal, json or console; empty means auto. Auto is
	// journal when the process's standard error is connected to the journal
	// (systemd sets JOURNAL_STREAM), console when Stderr is a terminal, and
	// JSON lines otherwise.
	Format string
	// Stderr receives console and JSON output and zap's own write errors;
	// nil means os.Stderr.
	Stderr io.Writer
	// Identifier is the journal's SYSLOG_IDENTIFIER; empty means
	// DefaultIdentifier.
	Identifier string
}

const (
	formatAuto    = "auto"
	formatJournal = "journal"
	formatJSON    = "json"
	formatConsole = "console"
)

// New returns a logger for opt and the level that controls it, which the
// caller may change at run time (for example on reload).
func New(opt Options) (*Logger, AtomicLevel, error) {
	level, err := parseLevel(opt.Level)
	if err != nil {
		return nil, AtomicLevel{}, err
	}
	stderr := opt.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	identifier := opt.Identifier
	if identifier == "" {
		identifier = DefaultIdentifier
	}
	format, err := resolveFormat(opt.Format, stderr)
	if err != nil {
		return nil, AtomicLevel{}, err
	}

	atom := NewAtomicLevelAt(level)
	out := zapcore.Lock(zapcore.AddSync(stderr))
	var core zapcore.Core
	switch format {
	case formatJournal:
		core = newJournalCore(atom, identifier, journal.Send)
	case formatJSON:
		core = zapcore.NewCore(zapcore.NewJSONEncoder(encoderConfig(zapcore.LowercaseLevelEncoder)), out, atom)
	case formatConsole:
		core = zapcore.NewCore(zapcore.NewConsoleEncoder(encoderConfig(zapcore.CapitalLevelEncoder)), out, atom)
	}
	return NewLogger(core), atom, nil
}

func parseLevel(s string) (zapcore.Level, error) {
	switch s {
	case "debug":
		return zapcore.DebugLevel, nil
	case "", "info":
		return zapcore.InfoLevel, nil
	case "warn":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
}

// resolveFormat turns auto into the format that fits where output goes.
func resolveFormat(format string, stderr io.Writer) (string, error) {
	switch format {
	case formatJournal, formatJSON, formatConsole:
		return format, nil
	case "", formatAuto:
	default:
		return "", fmt.Errorf("unknown log format %q (want auto, journal, json or console)", format)
	}
	// A malformed JOURNAL_STREAM only means that stderr is not the journal's.
	if ok, err := journal.StderrIsJournalStream(); err == nil && ok {
		return formatJournal, nil
	}
	if isTerminal(stderr) {
		return formatConsole, nil
	}
	return formatJSON, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// encoderConfig is shared by the JSON and console formats; durations are
// written like the configuration writes them ("1.5s").
func encoderConfig(level zapcore.LevelEncoder) zapcore.EncoderConfig {
	return zapcore.EncoderConfig{
		TimeKey:        "time",
		LevelKey:       "level",
		NameKey:        "logger",
		CallerKey:      "caller",
		FunctionKey:    zapcore.OmitKey,
		MessageKey:     "msg",
		StacktraceKey:  "stacktrace",
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    level,
		EncodeTime:     zapcore.RFC3339NanoTimeEncoder,
		EncodeDuration: zapcore.StringDurationEncoder,
		EncodeCaller:   zapcore.ShortCallerEncoder,
	}
}
