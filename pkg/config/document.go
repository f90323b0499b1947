package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// document records where each key of a TOML document is, so that problems
// found after decoding can name a line, and the decoder's positions a key.
// Keys are written as in error messages: "limits.subflows",
// "interface[2].gateway4".
type document struct {
	lineStarts []int                    // offset of the first byte of each line
	lines      map[string]int           // key -> line of its first appearance
	kinds      map[string]unstable.Kind // key -> kind of its first appearance
	elemLines  map[string][]int         // array key -> line of each element
	at         map[position]located
	onLine     map[int]located // the first key or value on each line
	table      string          // the table of the last header parsed
}

type position struct{ line, col int }

// located is what sits at a position: a key part or a value, the key it
// belongs to, and the kind of its value.
type located struct {
	key  string
	kind unstable.Kind
}

// index walks the document's syntax tree. On a syntax error it returns the
// document as far as it was read, and the error.
func index(data []byte) (*document, error) {
	d := &document{
		lineStarts: []int{0},
		lines:      map[string]int{},
		kinds:      map[string]unstable.Kind{},
		elemLines:  map[string][]int{},
		at:         map[position]located{},
		onLine:     map[int]located{},
	}
	for i, b := range data {
		if b == '\n' {
			d.lineStarts = append(d.lineStarts, i+1)
		}
	}

	var p unstable.Parser
	p.Reset(data)
	arrayTables := map[string]int{} // dotted name -> entries so far
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, nodes := keyParts(e)
			if e.Kind == unstable.ArrayTable {
				arrayTables[strings.Join(parts, ".")]++
			}
			d.table = tableName(parts, arrayTables)
			for i := 1; i < len(parts); i++ {
				d.implicitTable(tableName(parts[:i], arrayTables), nodes[0].Raw)
			}
			for _, n := range nodes {
				d.mark(n.Raw, d.table, e.Kind)
			}
		case unstable.KeyValue:
			d.keyValue(d.table, e)
		}
	}
	return d, p.Error()
}

// keyParts returns the parts of a header's or key-value's (dotted) key, and
// their nodes.
func keyParts(n *unstable.Node) ([]string, []*unstable.Node) {
	var parts []string
	var nodes []*unstable.Node
	keys := n.Key()
	for keys.Next() {
		parts = append(parts, string(keys.Node().Data))
		nodes = append(nodes, keys.Node())
	}
	return parts, nodes
}

// tableName names a table header's key, numbering the entries of arrays of
// tables from 1: [[interface]] is interface[N] for its Nth appearance.
func tableName(parts []string, arrayTables map[string]int) string {
	names := make([]string, len(parts))
	for i, part := range parts {
		names[i] = part
		if n := arrayTables[strings.Join(parts[:i+1], ".")]; n > 0 {
			names[i] = fmt.Sprintf("%s[%d]", part, n)
		}
	}
	return strings.Join(names, ".")
}

func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// keyValue records a key = value expression under the table prefix, and
// what inline tables and arrays in its value hold.
func (d *document) keyValue(prefix string, kv *unstable.Node) {
	value := kv.Value()
	parts, nodes := keyParts(kv)
	key := joinKey(prefix, strings.Join(parts, "."))
	for i := 1; i < len(parts); i++ {
		d.implicitTable(joinKey(prefix, strings.Join(parts[:i], ".")), nodes[0].Raw)
	}
	for _, n := range nodes {
		d.mark(n.Raw, key, value.Kind)
	}
	d.mark(value.Raw, key, value.Kind)

	switch value.Kind {
	case unstable.InlineTable:
		d.inlineTable(key, value)
	case unstable.Array:
		keyLine := d.lines[key]
		elems := value.Children()
		for i := 1; elems.Next(); i++ {
			elem := elems.Node()
			line := keyLine
			if elem.Raw.Length > 0 {
				line, _ = d.position(int(elem.Raw.Offset))
			}
			d.elemLines[key] = append(d.elemLines[key], line)
			if elem.Kind == unstable.InlineTable {
				name := fmt.Sprintf("%s[%d]", key, i)
				d.mark(elem.Raw, name, elem.Kind)
				d.inlineTable(name, elem)
				continue
			}
			d.mark(elem.Raw, key, elem.Kind)
		}
	}
}

func (d *document) inlineTable(key string, table *unstable.Node) {
	kvs := table.Children()
	for kvs.Next() {
		d.keyValue(key, kvs.Node())
	}
}

// mark records that the bytes r of the document belong to key.
func (d *document) mark(r unstable.Range, key string, kind unstable.Kind) {
	if r.Length == 0 {
		return
	}
	line, col := d.position(int(r.Offset))
	loc := located{key: key, kind: kind}
	d.at[position{line, col}] = loc
	if _, ok := d.onLine[line]; !ok {
		d.onLine[line] = loc
	}
	if _, ok := d.lines[key]; !ok {
		d.lines[key] = line
		d.kinds[key] = kind
	}
}

// implicitTable records the table that a dotted key such as a.b = 1 or
// [a.b] makes, where it first appears.
func (d *document) implicitTable(key string, r unstable.Range) {
	if _, ok := d.lines[key]; !ok {
		d.lines[key], _ = d.position(int(r.Offset))
		d.kinds[key] = unstable.Table
	}
}

// position converts a byte offset into a 1-based line and column.
func (d *document) position(offset int) (line, col int) {
	i := sort.SearchInts(d.lineStarts, offset+1) - 1
	return i + 1, offset - d.lineStarts[i] + 1
}

// locate names what is at line:col, for the decoder's errors: the key part
// or value starting there, else the first on that line, else the decoder's
// own key.
func (d *document) locate(line, col int, key []string) located {
	if loc, ok := d.at[position{line, col}]; ok {
		return loc
	}
	if loc, ok := d.onLine[line]; ok {
		return loc
	}
	return located{key: strings.Join(key, ".")}
}

// bareKeyAssignment matches a line that starts as `key =` or `a.b =`.
var bareKeyAssignment = regexp.MustCompile(`^\s*([A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*)\s*=`)

// syntaxError locates the parser's error. The key is the one the failing
// line assigns, when it starts with one, in the table the last header named.
func syntaxError(name string, data []byte, doc *document, err error) error {
	var perr *unstable.ParserError
	if !errors.As(err, &perr) {
		return fmt.Errorf("%s: %w", name, err)
	}
	e := &Error{File: name, Message: "syntax error: " + perr.Message}
	// The highlight is a subslice of data: both end at the end of the same
	// array, so the difference of their capacities is its offset.
	offset := cap(data) - cap(perr.Highlight)
	if perr.Highlight == nil || offset < 0 || offset > len(data) {
		return e
	}
	line, _ := doc.position(offset)
	e.Line = line
	end := len(data)
	if line < len(doc.lineStarts) {
		end = doc.lineStarts[line]
	}
	if m := bareKeyAssignment.FindSubmatch(data[doc.lineStarts[line-1]:end]); m != nil {
		key := strings.Join(strings.Fields(strings.ReplaceAll(string(m[1]), ".", " ")), ".")
		e.Key = joinKey(doc.table, key)
	}
	return e
}

// kindName describes a kind of TOML value, for type errors.
func kindName(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.Bool:
		return "a boolean"
	case unstable.Array:
		return "an array"
	case unstable.Table, unstable.InlineTable:
		return "a table"
	case unstable.ArrayTable:
		return "an array of tables"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "a date or time"
	default:
		return "a value"
	}
}
