package config

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Error is one problem in a configuration file.
type Error struct {
	// File is the name given to Parse.
	File string
	// Line is 1-based; 0 when unknown.
	Line int
	// Key names the key, e.g. "limits.subflows" or "interface[2].gateway4";
	// empty for a syntax error that names none.
	Key string
	// Message says what is wrong.
	Message string
}

// Error formats the problem as FILE:LINE: KEY: MESSAGE.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// file is the document as decoded. Tables are structs, so that the decoder
// rejects unknown keys; values stay as decoded (any), so that this package,
// not the decoder, says what each key wants. TOML uses the same structure
// to print a Config.
type file struct {
	Daemon    fileDaemon      `toml:"daemon"`
	Log       fileLog         `toml:"log"`
	Limits    fileLimits      `toml:"limits"`
	Endpoints fileEndpoints   `toml:"endpoints"`
	Routing   fileRouting     `toml:"routing"`
	Interface []fileInterface `toml:"interface,omitempty"`
}

type fileDaemon struct {
	ResyncInterval any `toml:"resync_interval,omitempty"`
	CleanupOnExit  any `toml:"cleanup_on_exit,omitempty"`
}

type fileLog struct {
	Level  any `toml:"level,omitempty"`
	Format any `toml:"format,omitempty"`
}

type fileLimits struct {
	Subflows        any `toml:"subflows,omitempty"`
	AddAddrAccepted any `toml:"add_addr_accepted,omitempty"`
}

type fileEndpoints struct {
	Flags               any `toml:"flags,omitempty"`
	Families            any `toml:"families,omitempty"`
	Include             any `toml:"include,omitempty"`
	Exclude             any `toml:"exclude,omitempty"`
	SkipLinkLocal       any `toml:"skip_link_local,omitempty"`
	SkipULA             any `toml:"skip_ula,omitempty"`
	SkipTemporary       any `toml:"skip_temporary,omitempty"`
	RequireDefaultRoute any `toml:"require_default_route,omitempty"`
}

type fileInterface struct {
	Match    any `toml:"match,omitempty"`
	Flags    any `toml:"flags,omitempty"`
	Gateway4 any `toml:"gateway4,omitempty"`
	Gateway6 any `toml:"gateway6,omitempty"`
	Port     any `toml:"port,omitempty"`
	Priority any `toml:"priority,omitempty"`
	Manage   any `toml:"manage,omitempty"`
}

type fileRouting struct {
	Enabled      any `toml:"enabled,omitempty"`
	TableBase    any `toml:"table_base,omitempty"`
	RulePriority any `toml:"rule_priority,omitempty"`
	Protocol     any `toml:"protocol,omitempty"`
}

// Parse parses and validates a configuration document; name is used in
// Config.Source and in error messages. Keys that are absent keep their
// defaults.
//
// On failure the error lists every problem found, one *Error per line in
// file order (errors.Join). A syntax error, or a value the TOML decoder
// cannot store, stops parsing and is reported alone; unknown keys are all
// reported; the checks of the values themselves run once the document has
// been decoded, and all of their problems are reported.
func Parse(name string, data []byte) (*Config, error) {
	doc, err := index(data)
	if err != nil {
		return nil, syntaxError(name, data, doc, err)
	}

	// The decoder would take a single [interface] table for a list of one.
	if kind, ok := doc.kinds["interface"]; ok && kind != unstable.ArrayTable && kind != unstable.Array {
		return nil, &Error{File: name, Line: doc.lines["interface"], Key: "interface",
			Message: "want " + tableWants["interface"] + ", got " + kindName(kind)}
	}

	var f file
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, decodeErrors(name, doc, err)
	}

	c := checker{file: name, doc: doc}
	cfg := c.config(&f)
	if len(c.errs) > 0 {
		slices.SortStableFunc(c.errs, func(a, b *Error) int { return a.Line - b.Line })
		errs := make([]error, len(c.errs))
		for i, e := range c.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	cfg.Source = name
	return cfg, nil
}

// tableWants says what each table key must hold, for the decoder's type
// errors, which only tables can cause (every value is decoded as any).
var tableWants = map[string]string{
	"daemon":    "a [daemon] table",
	"log":       "a [log] table",
	"limits":    "a [limits] table",
	"endpoints": "an [endpoints] table",
	"routing":   "a [routing] table",
	"interface": "[[interface]] tables",
}

// decodeErrors turns the decoder's errors into located Errors.
func decodeErrors(name string, doc *document, err error) error {
	var missing *toml.StrictMissingError
	if errors.As(err, &missing) {
		errs := make([]error, 0, len(missing.Errors))
		for _, de := range missing.Errors {
			line, col := de.Position()
			loc := doc.locate(line, col, de.Key())
			msg := "unknown key"
			if de.Error() == "toml: missing table" {
				msg = "unknown table"
			}
			errs = append(errs, &Error{File: name, Line: line, Key: loc.key, Message: msg})
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		loc := doc.locate(line, col, de.Key())
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		// [[daemon]] is located as daemon[1].
		table, _, _ := strings.Cut(loc.key, "[")
		if want, ok := tableWants[table]; ok && !strings.Contains(loc.key, ".") && strings.HasPrefix(msg, "cannot ") {
			loc.key = table
			msg = fmt.Sprintf("want %s, got %s", want, kindName(loc.kind))
		}
		return &Error{File: name, Line: line, Key: loc.key, Message: msg}
	}
	return fmt.Errorf("%s: %w", name, err)
}
