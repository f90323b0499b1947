package logging

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap/zapcore"
)

// Journal fields the core sets itself. A zap field that would land on one of
// them is renamed with fieldPrefix, so it cannot replace the message or the
// priority.
const (
	journalMessage    = "MESSAGE"
	journalPriority   = "PRIORITY"
	journalIdentifier = "SYSLOG_IDENTIFIER"
	journalLogger     = "LOGGER"
	journalCodeFile   = "CODE_FILE"
	journalCodeLine   = "CODE_LINE"
	journalCodeFunc   = "CODE_FUNC"
	journalStack      = "STACKTRACE"

	fieldPrefix = "FIELD_"
	// maxFieldName is journald's limit on a field name's length.
	maxFieldName = 64
)

// sendFunc is journal.Send's signature.
type sendFunc func(message string, priority journal.Priority, vars map[string]string) error

// journalCore sends each entry to journald as one native-protocol datagram:
// the message, its priority, the identifier, and every zap field as a field of
// its own. The message also carries the fields as key=value pairs, because
// journalctl shows only the message unless asked for more.
type journalCore struct {
	zapcore.LevelEnabler
	identifier string
	context    fieldEncoder // fields added with With
	send       sendFunc
}

func newJournalCore(level zapcore.LevelEnabler, identifier string, send sendFunc) *journalCore {
	return &journalCore{LevelEnabler: level, identifier: identifier, send: send}
}

func (c *journalCore) With(fields []zapcore.Field) zapcore.Core {
	clone := *c
	clone.context = c.context.clone()
	for _, f := range fields {
		f.AddTo(&clone.context)
	}
	return &clone
}

func (c *journalCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c *journalCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	enc := c.context.clone()
	for _, f := range fields {
		f.AddTo(&enc)
	}

	vars := make(map[string]string, len(enc.fields)+6)
	var msg strings.Builder
	if ent.LoggerName != "" {
		vars[journalLogger] = ent.LoggerName
		msg.WriteString(ent.LoggerName)
		msg.WriteString(": ")
	}
	msg.WriteString(ent.Message)
	for _, f := range enc.fields {
		vars[f.name] = f.value
		msg.WriteString(" ")
		msg.WriteString(f.key)
		msg.WriteString("=")
		msg.WriteString(quoteValue(f.value))
	}
	vars[journalIdentifier] = c.identifier
	if ent.Caller.Defined {
		vars[journalCodeFile] = ent.Caller.File
		vars[journalCodeLine] = strconv.Itoa(ent.Caller.Line)
		vars[journalCodeFunc] = ent.Caller.Function
	}
	if ent.Stack != "" {
		vars[journalStack] = ent.Stack
	}
	if err := c.send(msg.String(), priority(ent.Level), vars); err != nil {
		return fmt.Errorf("send log entry to journald: %w", err)
	}
	return nil
}

func (c *journalCore) Sync() error { return nil }

// priority maps zap levels to syslog priorities. Fatal and panic stay at
// critical: journald broadcasts emergencies to every terminal.
func priority(l zapcore.Level) journal.Priority {
	switch {
	case l <= zapcore.DebugLevel:
		return journal.PriDebug
	case l == zapcore.InfoLevel:
		return journal.PriInfo
	case l == zapcore.WarnLevel:
		return journal.PriWarning
	case l == zapcore.ErrorLevel:
		return journal.PriErr
	default:
		return journal.PriCrit
	}
}

// fieldName turns a zap key into a journald field name: upper case, only
// A-Z, 0-9 and '_', not starting with '_' (journald keeps those for itself) or
// a digit, at most 64 characters, and never one of the fields the core sets.
func fieldName(key string) string {
	name := strings.TrimLeft(strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		default:
			return '_'
		}
	}, key), "_")
	switch {
	case name == "", name[0] >= '0' && name[0] <= '9':
		name = fieldPrefix + name
	case name == journalMessage, name == journalPriority, name == journalIdentifier,
		name == journalLogger, name == journalCodeFile, name == journalCodeLine,
		name == journalCodeFunc, name == journalStack:
		name = fieldPrefix + name
	}
	if len(name) > maxFieldName {
		name = name[:maxFieldName]
	}
	return name
}

// quoteValue writes a value into the message as logfmt does: bare when it is
// one printable word, Go-quoted otherwise.
func quoteValue(v string) string {
	needsQuotes := v == "" || strings.IndexFunc(v, func(r rune) bool {
		return r <= ' ' || r == '=' || r == '"' || !unicode.IsPrint(r)
	}) >= 0
	if needsQuotes {
		return strconv.Quote(v)
	}
	return v
}

// journalField is one zap field rendered for the journal.
type journalField struct {
	key   string // the zap key, with enclosing namespaces joined by '.'
	name  string // the journald field name
	value string
}

// fieldEncoder renders zap fields as text, keyed by journald field name. A
// repeated name keeps its first position and its last value. Namespaces
// become prefixes: field "b" in namespace "a" is A_B.
type fieldEncoder struct {
	fields     []journalField
	namespaces []string
}

var _ zapcore.ObjectEncoder = (*fieldEncoder)(nil)

func (e fieldEncoder) clone() fieldEncoder {
	return fieldEncoder{
		fields:     append([]journalField(nil), e.fields...),
		namespaces: append([]string(nil), e.namespaces...),
	}
}

func (e *fieldEncoder) add(key, value string) {
	if len(e.namespaces) > 0 {
		key = strings.Join(e.namespaces, ".") + "." + key
	}
	f := journalField{key: key, name: fieldName(key), value: value}
	for i := range e.fields {
		if e.fields[i].name == f.name {
			e.fields[i] = f
			return
		}
	}
	e.fields = append(e.fields, f)
}

// addJSON renders nested objects and arrays as JSON text.
func (e *fieldEncoder) addJSON(key string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		e.add(key, fmt.Sprint(v))
		return
	}
	e.add(key, string(b))
}

func (e *fieldEncoder) AddArray(key string, v zapcore.ArrayMarshaler) error {
	m := zapcore.NewMapObjectEncoder()
	err := m.AddArray(key, v)
	e.addJSON(key, m.Fields[key])
	return err
}

func (e *fieldEncoder) AddObject(key string, v zapcore.ObjectMarshaler) error {
	m := zapcore.NewMapObjectEncoder()
	err := v.MarshalLogObject(m)
	e.addJSON(key, m.Fields)
	return err
}

func (e *fieldEncoder) AddBinary(key string, v []byte) {
	e.add(key, base64.StdEncoding.EncodeToString(v))
}
func (e *fieldEncoder) AddByteString(key string, v []byte) { e.add(key, string(v)) }
func (e *fieldEncoder) AddBool(key string, v bool)         { e.add(key, strconv.FormatBool(v)) }
func (e *fieldEncoder) AddComplex128(key string, v complex128) {
	e.add(key, strconv.FormatComplex(v, 'g', -1, 128))
}
func (e *fieldEncoder) AddComplex64(key string, v complex64) {
	e.add(key, strconv.FormatComplex(complex128(v), 'g', -1, 64))
}
func (e *fieldEncoder) AddDuration(key string, v time.Duration) { e.add(key, v.String()) }
func (e *fieldEncoder) AddFloat64(key string, v float64) {
	e.add(key, strconv.FormatFloat(v, 'g', -1, 64))
}
func (e *fieldEncoder) AddFloat32(key string, v float32) {
	e.add(key, strconv.FormatFloat(float64(v), 'g', -1, 32))
}
func (e *fieldEncoder) AddInt(key string, v int)         { e.AddInt64(key, int64(v)) }
func (e *fieldEncoder) AddInt64(key string, v int64)     { e.add(key, strconv.FormatInt(v, 10)) }
func (e *fieldEncoder) AddInt32(key string, v int32)     { e.AddInt64(key, int64(v)) }
func (e *fieldEncoder) AddInt16(key string, v int16)     { e.AddInt64(key, int64(v)) }
func (e *fieldEncoder) AddInt8(key string, v int8)       { e.AddInt64(key, int64(v)) }
func (e *fieldEncoder) AddString(key, v string)          { e.add(key, v) }
func (e *fieldEncoder) AddTime(key string, v time.Time)  { e.add(key, v.Format(time.RFC3339Nano)) }
func (e *fieldEncoder) AddUint(key string, v uint)       { e.AddUint64(key, uint64(v)) }
func (e *fieldEncoder) AddUint64(key string, v uint64)   { e.add(key, strconv.FormatUint(v, 10)) }
func (e *fieldEncoder) AddUint32(key string, v uint32)   { e.AddUint64(key, uint64(v)) }
func (e *fieldEncoder) AddUint16(key string, v uint16)   { e.AddUint64(key, uint64(v)) }
func (e *fieldEncoder) AddUint8(key string, v uint8)     { e.AddUint64(key, uint64(v)) }
func (e *fieldEncoder) AddUintptr(key string, v uintptr) { e.AddUint64(key, uint64(v)) }
func (e *fieldEncoder) OpenNamespace(key string)         { e.namespaces = append(e.namespaces, key) }

// AddReflected takes what zap.Any could not type: a Stringer (netip.Addr,
// netip.Prefix) is written as its String (fmt copes with nil receivers),
// anything else as JSON.
func (e *fieldEncoder) AddReflected(key string, v any) error {
	if _, ok := v.(fmt.Stringer); ok {
		e.add(key, fmt.Sprint(v))
		return nil
	}
	e.addJSON(key, v)
	return nil
}
