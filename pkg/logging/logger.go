package logging

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap/zapcore"
)

// Logger writes structured lines to a zapcore.Core: zap's Logger cut to
// what the daemon uses. Package zap itself links net/http and with it the
// crypto packages (for its level's HTTP handler), about 1.7 MB of binary
// that every process maps, an idle daemon included.
type Logger struct {
	core   zapcore.Core
	name   string
	errOut zapcore.WriteSyncer
}

// NewLogger returns a logger that writes to core; failed writes are
// reported on standard error.
func NewLogger(core zapcore.Core) *Logger {
	return &Logger{core: core, errOut: zapcore.Lock(os.Stderr)}
}

// Nop returns a logger that writes nothing.
func Nop() *Logger { return NewLogger(zapcore.NewNopCore()) }

// Core is where the logger writes.
func (l *Logger) Core() zapcore.Core { return l.core }

// With returns a logger that adds fields to every line.
func (l *Logger) With(fields ...Field) *Logger {
	c := *l
	c.core = l.core.With(fields)
	return &c
}

// Named returns a logger whose name has name appended, dot-separated.
func (l *Logger) Named(name string) *Logger {
	c := *l
	if c.name == "" {
		c.name = name
	} else {
		c.name += "." + name
	}
	return &c
}

// Check returns the entry to write at lvl, or nil when lvl is not enabled:
// callers skip building expensive fields.
func (l *Logger) Check(lvl Level, msg string) *zapcore.CheckedEntry {
	if !l.core.Enabled(lvl) {
		return nil
	}
	ce := l.core.Check(zapcore.Entry{LoggerName: l.name, Time: time.Now(), Level: lvl, Message: msg}, nil)
	if ce != nil {
		ce.ErrorOutput = l.errOut
	}
	return ce
}

// Log writes a line at lvl.
func (l *Logger) Log(lvl Level, msg string, fields ...Field) {
	if ce := l.Check(lvl, msg); ce != nil {
		ce.Write(fields...)
	}
}

// Debug, Info, Warn and Error write a line at their level.
func (l *Logger) Debug(msg string, fields ...Field) { l.Log(DebugLevel, msg, fields...) }
func (l *Logger) Info(msg string, fields ...Field)  { l.Log(InfoLevel, msg, fields...) }
func (l *Logger) Warn(msg string, fields ...Field)  { l.Log(WarnLevel, msg, fields...) }
func (l *Logger) Error(msg string, fields ...Field) { l.Log(ErrorLevel, msg, fields...) }

// Sync flushes what the core buffers.
func (l *Logger) Sync() error { return l.core.Sync() }

// Level is a log level.
type Level = zapcore.Level

// The levels the daemon logs at.
const (
	DebugLevel = zapcore.DebugLevel
	InfoLevel  = zapcore.InfoLevel
	WarnLevel  = zapcore.WarnLevel
	ErrorLevel = zapcore.ErrorLevel
)

// AtomicLevel is a level that can change while loggers use it (on
// reload). It enables lines at or above its level.
type AtomicLevel struct{ l *atomic.Int32 }

// NewAtomicLevelAt returns an AtomicLevel set to lvl.
func NewAtomicLevelAt(lvl Level) AtomicLevel {
	a := AtomicLevel{l: new(atomic.Int32)}
	a.SetLevel(lvl)
	return a
}

// Enabled says whether lines at lvl are written (zapcore.LevelEnabler).
func (a AtomicLevel) Enabled(lvl Level) bool { return lvl >= a.Level() }

// Level returns the current level.
func (a AtomicLevel) Level() Level { return Level(a.l.Load()) }

// SetLevel changes the level.
func (a AtomicLevel) SetLevel(lvl Level) { a.l.Store(int32(lvl)) }

// SetLevelText changes the level to one named as the configuration names
// it: debug, info, warn or error (empty is info).
func (a AtomicLevel) SetLevelText(s string) error {
	lvl, err := parseLevel(s)
	if err != nil {
		return err
	}
	a.SetLevel(lvl)
	return nil
}

// Field is one key and value of a line.
type Field = zapcore.Field

// String is a string field.
func String(key, val string) Field { return Field{Key: key, Type: zapcore.StringType, String: val} }

// Stringer is a field whose value is val.String(), called only if the line
// is written.
func Stringer(key string, val fmt.Stringer) Field {
	return Field{Key: key, Type: zapcore.StringerType, Interface: val}
}

// Stringers is an array of val's String()s.
func Stringers[T fmt.Stringer](key string, val []T) Field {
	return Field{Key: key, Type: zapcore.ArrayMarshalerType, Interface: stringers[T](val)}
}

type stringers[T fmt.Stringer] []T

func (s stringers[T]) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, v := range s {
		enc.AppendString(v.String())
	}
	return nil
}

// Error is the field FieldError with err's text; nothing for a nil err.
func Error(err error) Field {
	if err == nil {
		return Field{Type: zapcore.SkipType}
	}
	return Field{Key: FieldError, Type: zapcore.ErrorType, Interface: err}
}

// Int, Int32, Uint8 and Uint32 are integer fields.
func Int(key string, val int) Field {
	return Field{Key: key, Type: zapcore.Int64Type, Integer: int64(val)}
}
func Int32(key string, val int32) Field {
	return Field{Key: key, Type: zapcore.Int32Type, Integer: int64(val)}
}
func Uint8(key string, val uint8) Field {
	return Field{Key: key, Type: zapcore.Uint8Type, Integer: int64(val)}
}
func Uint32(key string, val uint32) Field {
	return Field{Key: key, Type: zapcore.Uint32Type, Integer: int64(val)}
}

// Duration is a duration field.
func Duration(key string, val time.Duration) Field {
	return Field{Key: key, Type: zapcore.DurationType, Integer: int64(val)}
}

// Bool is a boolean field.
func Bool(key string, val bool) Field {
	var i int64
	if val {
		i = 1
	}
	return Field{Key: key, Type: zapcore.BoolType, Integer: i}
}
