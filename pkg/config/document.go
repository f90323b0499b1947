package config

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// document is a configuration file read into the shape of file, with the
// line of every key, so that problems found later can name it. Keys are
// written as in error messages: "limits.subflows", "interface[2].gateway4".
//
// It is read from the parser's syntax tree in one pass, in time and memory
// linear in the file's size: only the schema's keys (at most two levels
// deep) are ever named, and what lies below a value is never walked, since
// a table or a nested array is never a valid value. (go-toml's decoder
// checks duplicate keys with a linear search per key, and its strict mode
// locates each unknown key from the start of the file: both quadratic.)
type document struct {
	lineStarts []int            // offset of the first byte of each line
	lines      map[string]int   // key -> line of its first appearance
	elemLines  map[string][]int // array key -> line of each element
	table      string           // the table of the last header read
	file       file

	tables  map[string]definition // schema table -> how it was defined
	entries int                   // [[interface]] entries so far
	inline  bool                  // interface = [...] was given
	errs    []*Error
}

// definition says how and where a table was defined, which decides
// whether it may be defined again.
type definition struct {
	how  int
	line int
}

const (
	byHeader   = iota + 1 // [daemon]
	byInline              // daemon = { ... }
	byDotted              // daemon.cleanup_on_exit = true
	byImplicit            // [daemon.x]: daemon exists, undefined
)

// scope is where key-values land: a table of the schema, or nowhere (below
// an unknown table, or below a value that a header made a table).
type scope struct {
	name string         // "daemon", "interface[2]"; "" at the root
	keys map[string]int // key -> field of fields; nil at the root
	into reflect.Value  // the table's struct
	skip bool
}

// tableSchema is one table of file: its field, and its keys' fields.
type tableSchema struct {
	field int
	keys  map[string]int
}

// schema maps file's tables and keys, from their toml tags.
var schema = func() map[string]tableSchema {
	tags := func(t reflect.Type) map[string]int {
		m := map[string]int{}
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
			m[name] = i
		}
		return m
	}
	ft := reflect.TypeFor[file]()
	s := map[string]tableSchema{}
	for name, i := range tags(ft) {
		t := ft.Field(i).Type
		if t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		s[name] = tableSchema{field: i, keys: tags(t)}
	}
	return s
}()

// arrayTable is the one table given as [[interface]] entries.
const arrayTable = "interface"

// read reads a document. A syntax error is returned alone, with the
// document as far as it was read; problems of structure (unknown keys,
// keys given twice, a table where a value belongs) are collected in errs.
func read(data []byte) (*document, error) {
	d := &document{
		lineStarts: []int{0},
		lines:      map[string]int{},
		elemLines:  map[string][]int{},
		tables:     map[string]definition{},
	}
	for i, b := range data {
		if b == '\n' {
			d.lineStarts = append(d.lineStarts, i+1)
		}
	}
	var cur scope // the root
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			cur = d.header(e)
		case unstable.KeyValue:
			d.keyValue(cur, e)
		}
	}
	return d, p.Error()
}

// fail records a problem of the document's structure.
func (d *document) fail(line int, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{Line: line, Key: key, Message: fmt.Sprintf(format, args...)})
}

// header reads a [table] or [[table]] header and returns the scope of the
// key-values that follow it.
func (d *document) header(e *unstable.Node) scope {
	it := e.Key()
	it.Next()
	first := it.Node()
	line := d.line(first.Raw)
	name := string(first.Data)
	d.table = shorten(name)
	ts, known := schema[name]
	if !known {
		d.fail(line, shorten(name), "unknown table")
		return scope{skip: true}
	}
	last := !it.Next()
	array := e.Kind == unstable.ArrayTable
	var s scope
	switch {
	case name == arrayTable && array && last:
		if d.inline {
			d.fail(line, name, "already given as an array on line %d", d.lines[name])
			return scope{skip: true}
		}
		d.note(name, line)
		d.entries++
		s = d.entry(d.entries, line)
	case name == arrayTable && (last || d.entries == 0):
		// [interface], or [interface.x] before any [[interface]].
		d.note(name, line)
		d.fail(line, name, "want [[interface]] tables, got a table")
		return scope{skip: true}
	case name == arrayTable:
		// [interface.x] belongs to the last entry.
		s = d.entry(d.entries, line)
	case array && last:
		d.note(name, line)
		d.fail(line, name, "want %s, got an array of tables", tableWants[name])
		return scope{skip: true}
	default:
		how := byImplicit
		if last {
			how = byHeader
		}
		if !d.define(name, how, line) {
			return scope{skip: true}
		}
		s = d.tableScope(name, ts)
	}
	d.table = s.name
	if last {
		return s
	}
	part := it.Node()
	deeper := it.Next()
	return d.subTable(s, part, array && !deeper)
}

// subTable handles a header that names a key of a table: [log.level],
// [[endpoints.flags]], [interface.match.x]. The key's value becomes a
// table (or an array of them), which the checks refuse with the key's
// own message; what follows the header is not read.
func (d *document) subTable(s scope, part *unstable.Node, array bool) scope {
	key := string(part.Data)
	line := d.line(part.Raw)
	field, ok := s.keys[key]
	if !ok {
		d.fail(line, s.name+"."+shorten(key), "unknown table")
		return scope{skip: true}
	}
	full := s.name + "." + key
	d.table = full
	v := s.into.Field(field)
	switch v.Interface().(type) {
	case nil:
		d.note(full, line)
		if array {
			v.Set(reflect.ValueOf([]any{map[string]any{}}))
		} else {
			v.Set(reflect.ValueOf(map[string]any{}))
		}
	case map[string]any, []any:
		// More of a table, or of an array of tables, already begun.
	default:
		d.fail(line, full, "already given on line %d", d.lines[full])
	}
	return scope{name: full, skip: true}
}

// entry starts or continues the n-th [[interface]] entry.
func (d *document) entry(n, line int) scope {
	entries := reflect.ValueOf(&d.file).Elem().Field(schema[arrayTable].field)
	for entries.Len() < n {
		entries.Set(reflect.Append(entries, reflect.Zero(entries.Type().Elem())))
	}
	name := fmt.Sprintf("%s[%d]", arrayTable, n)
	d.note(name, line)
	return scope{name: name, keys: schema[arrayTable].keys, into: entries.Index(n - 1)}
}

func (d *document) tableScope(name string, ts tableSchema) scope {
	return scope{name: name, keys: ts.keys, into: reflect.ValueOf(&d.file).Elem().Field(ts.field)}
}

// define records a definition of a schema table and reports whether TOML
// allows it: a table is defined once, by a header, an inline table or
// dotted keys (any number of them); headers of its sub-tables may come
// before or after, except with an inline table, which is complete.
func (d *document) define(name string, how, line int) bool {
	prev, seen := d.tables[name]
	ok := !seen ||
		how == byImplicit && prev.how != byInline ||
		prev.how == byImplicit && how != byInline ||
		how == byDotted && prev.how == byDotted
	if !ok {
		d.fail(line, name, "table already defined on line %d", prev.line)
		return false
	}
	d.note(name, line)
	if !seen || prev.how == byImplicit {
		d.tables[name] = definition{how: how, line: line}
	}
	return true
}

// keyValue reads key = value in scope s.
func (d *document) keyValue(s scope, kv *unstable.Node) {
	if s.skip {
		return
	}
	// Only the first two parts of a dotted key can name something of
	// the schema; whatever follows makes the value a table.
	parts := kv.Key()
	parts.Next()
	first := parts.Node()
	var second *unstable.Node
	more := false
	if parts.Next() {
		second = parts.Node()
		more = parts.Next()
	}
	value := kv.Value()
	if s.keys != nil {
		if second != nil {
			value = nil
		}
		d.keyValueIn(s, first, value)
		return
	}

	// The root holds tables only.
	name := string(first.Data)
	line := d.line(first.Raw)
	ts, known := schema[name]
	switch {
	case !known && second != nil:
		d.fail(line, shorten(name), "unknown table")
	case !known:
		d.fail(line, shorten(name), "unknown key")
	case name == arrayTable && second == nil:
		d.inlineEntries(value, line)
	case name == arrayTable:
		d.note(name, line)
		d.fail(line, name, "want [[interface]] tables, got a table")
	case second != nil:
		if d.define(name, byDotted, line) {
			if more {
				value = nil
			}
			d.keyValueIn(d.tableScope(name, ts), second, value)
		}
	case value.Kind != unstable.InlineTable:
		d.note(name, line)
		d.fail(line, name, "want %s, got %s", tableWants[name], kindName(value.Kind))
	default:
		if d.define(name, byInline, line) {
			d.inlineTable(d.tableScope(name, ts), value)
		}
	}
}

// keyValueIn stores value at the key part names in table s; a nil value
// means the key is dotted (log.level.x = 1), which makes it a table.
func (d *document) keyValueIn(s scope, part *unstable.Node, value *unstable.Node) {
	key := string(part.Data)
	line := d.line(part.Raw)
	field, ok := s.keys[key]
	if !ok {
		d.fail(line, s.name+"."+shorten(key), "unknown key")
		return
	}
	full := s.name + "." + key
	v := s.into.Field(field)
	if value == nil {
		d.note(full, line)
		switch v.Interface().(type) {
		case nil:
			v.Set(reflect.ValueOf(map[string]any{}))
		case map[string]any:
		default:
			d.fail(line, full, "already given on line %d", d.lines[full])
		}
		return
	}
	if !v.IsNil() {
		d.fail(line, full, "already given on line %d", d.lines[full])
		return
	}
	d.note(full, line)
	if x := d.value(full, line, value); x != nil {
		v.Set(reflect.ValueOf(x))
	}
}

// inlineTable reads the key-values of an inline table into s.
func (d *document) inlineTable(s scope, t *unstable.Node) {
	kvs := t.Children()
	for kvs.Next() {
		d.keyValue(s, kvs.Node())
	}
}

// inlineEntries reads interface = [{...}, ...].
func (d *document) inlineEntries(value *unstable.Node, line int) {
	const name = arrayTable
	if d.entries > 0 {
		d.fail(line, name, "already given as [[interface]] tables on line %d", d.lines[name])
		return
	}
	d.note(name, line)
	if value.Kind != unstable.Array {
		d.fail(line, name, "want [[interface]] tables, got %s", kindName(value.Kind))
		return
	}
	d.inline = true
	elems := value.Children()
	for n := 1; elems.Next(); n++ {
		elem := elems.Node()
		if elem.Kind != unstable.InlineTable {
			d.fail(line, name, "want [[interface]] tables, got %s", kindName(elem.Kind))
			return
		}
		d.inlineTable(d.entry(n, d.lineOr(elem.Raw, line)), elem)
	}
}
