package config

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// value converts a value node into what the checks read: string, int64,
// float64, bool, dateTime, []any of the elements, or an empty
// map[string]any for a table. Nothing below an element is read: no valid
// value has it. It returns nil after a problem.
func (d *document) value(key string, line int, n *unstable.Node) any {
	switch n.Kind {
	case unstable.Array:
		elems := []any{}
		it := n.Children()
		for it.Next() {
			elem := it.Node()
			d.elemLines[key] = append(d.elemLines[key], d.lineOr(elem.Raw, line))
			switch elem.Kind {
			case unstable.Array:
				elems = append(elems, []any{})
			case unstable.InlineTable:
				elems = append(elems, map[string]any{})
			default:
				x, ok := d.scalar(key, line, elem)
				if !ok {
					return nil
				}
				elems = append(elems, x)
			}
		}
		return elems
	case unstable.InlineTable:
		return map[string]any{}
	}
	x, ok := d.scalar(key, line, n)
	if !ok {
		return nil
	}
	return x
}

// dateTime is a TOML date or time, kept as written: no key takes one.
type dateTime string

// scalar converts a string, integer, float, boolean, date or time node.
// The parser has checked its syntax.
func (d *document) scalar(key string, line int, n *unstable.Node) (any, bool) {
	text := string(n.Data)
	switch n.Kind {
	case unstable.String:
		return text, true
	case unstable.Bool:
		return text == "true", true
	case unstable.Integer:
		i, err := strconv.ParseInt(strings.ReplaceAll(text, "_", ""), 0, 64)
		if err != nil {
			d.fail(line, key, "%s does not fit in a 64-bit integer", shorten(text))
			return nil, false
		}
		return i, true
	case unstable.Float:
		f, err := strconv.ParseFloat(strings.ReplaceAll(text, "_", ""), 64)
		if err != nil {
			// Large exponents are the only floats Go refuses; inf and nan
			// (with signs) it reads.
			d.fail(line, key, "%s does not fit in a 64-bit float", shorten(text))
			return nil, false
		}
		return f, true
	default:
		return dateTime(text), true
	}
}

// note records where key first appears.
func (d *document) note(key string, line int) {
	if _, ok := d.lines[key]; !ok {
		d.lines[key] = line
	}
}

// line is the line of a node's text.
func (d *document) line(r unstable.Range) int {
	line, _ := d.position(int(r.Offset))
	return line
}

// lineOr is the line of a node's text, or def for nodes without text
// (arrays).
func (d *document) lineOr(r unstable.Range, def int) int {
	if r.Length == 0 {
		return def
	}
	return d.line(r)
}

// position converts a byte offset into a 1-based line and column.
func (d *document) position(offset int) (line, col int) {
	i := sort.SearchInts(d.lineStarts, offset+1) - 1
	return i + 1, offset - d.lineStarts[i] + 1
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
		e.Key = shorten(joinKey(doc.table, key))
	}
	return e
}

func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
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
