package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
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

// file is the document as read. Values stay as TOML gave them (any), so
// that this package says what each key wants; each table's keys are its
// fields' toml tags, which are also what TOML prints.
type file struct {
	Daemon    fileDaemon      `toml:"daemon"`
	Log       fileLog         `toml:"log"`
	Limits    fileLimits      `toml:"limits"`
	Endpoints fileEndpoints   `toml:"endpoints"`
	Routing   fileRouting     `toml:"routing"`
	Rejoin    fileRejoin      `toml:"rejoin"`
	NM        fileNM          `toml:"networkmanager"`
	Metrics   fileMetrics     `toml:"metrics"`
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
	OnLink   any `toml:"onlink,omitempty"`
}

type fileRejoin struct {
	GatewayTimeout any `toml:"gateway_timeout,omitempty"`
	JoinTimeout    any `toml:"join_timeout,omitempty"`
	RetryMax       any `toml:"retry_max,omitempty"`
}

type fileNM struct {
	MPTCPDevices any `toml:"mptcp_devices,omitempty"`
}

type fileMetrics struct {
	Textfile         any `toml:"textfile"`
	TextfileInterval any `toml:"textfile_interval,omitempty"`
	Listen           any `toml:"listen"`
}

type fileRouting struct {
	Enabled      any `toml:"enabled,omitempty"`
	TableBase    any `toml:"table_base,omitempty"`
	RulePriority any `toml:"rule_priority,omitempty"`
	Protocol     any `toml:"protocol,omitempty"`
}

// MaxSize bounds a configuration file: the reference file, every key
// commented, is under 8 KiB.
const MaxSize = 256 << 10

// utf8BOM starts files that some editors save.
const utf8BOM = "\xef\xbb\xbf"

// Parse parses and validates a configuration document; name is used in
// Config.Source and in error messages. Keys that are absent keep their
// defaults. Time and memory are linear in the document's size, which is at
// most MaxSize.
//
// On failure the error lists the problems found, one *Error per line in
// file order (errors.Join), the first 20 of them and a count of the rest. A
// syntax error stops parsing and is reported alone; problems of structure
// (unknown keys, keys given twice, values that must be tables) come next;
// the checks of the values themselves run once the structure is sound.
func Parse(name string, data []byte) (*Config, error) {
	if len(data) > MaxSize {
		return nil, tooLarge(name)
	}
	// A byte order mark is not TOML, but harmless: its length does not
	// move any line.
	data = bytes.TrimPrefix(data, []byte(utf8BOM))
	doc, err := read(data)
	if err != nil {
		return nil, syntaxError(name, data, doc, err)
	}
	if len(doc.errs) > 0 {
		for _, e := range doc.errs {
			e.File = name
		}
		return nil, joinErrors(name, doc.errs)
	}

	c := checker{file: name, doc: doc}
	cfg := c.config(&doc.file)
	if len(c.errs) > 0 {
		return nil, joinErrors(name, c.errs)
	}
	cfg.Source = name
	cfg.lines = doc.lines
	return cfg, nil
}

// maxListed bounds how many problems an error lists.
const maxListed = 20

// joinErrors joins the first maxListed of errs in file order, and counts
// the rest.
func joinErrors(name string, errs []*Error) error {
	slices.SortStableFunc(errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	out := make([]error, 0, maxListed+1)
	for _, e := range errs[:min(len(errs), maxListed)] {
		out = append(out, e)
	}
	if rest := len(errs) - maxListed; rest > 0 {
		out = append(out, &Error{File: name, Message: fmt.Sprintf("%d more problems not listed", rest)})
	}
	return errors.Join(out...)
}

func tooLarge(name string) error {
	return &Error{File: name, Message: fmt.Sprintf("larger than %d KiB, the most a configuration file may be", MaxSize>>10)}
}

// tableWants says what each table key must hold.
var tableWants = map[string]string{
	"daemon":         "a [daemon] table",
	"log":            "a [log] table",
	"limits":         "a [limits] table",
	"endpoints":      "an [endpoints] table",
	"routing":        "a [routing] table",
	"rejoin":         "a [rejoin] table",
	"networkmanager": "a [networkmanager] table",
	"interface":      "[[interface]] tables",
}

// maxShown bounds how much of a value or key an error message repeats.
const maxShown = 64

// shorten cuts s to maxShown bytes (on a character boundary), marking the
// cut with an ellipsis and the length, so that an error never echoes a
// megabyte.
func shorten(s string) string {
	if len(s) <= maxShown {
		return s
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
}

// quote quotes s for an error message, shortened like shorten.
func quote(s string) string {
	if len(s) <= maxShown {
		return strconv.Quote(s)
	}
	short := shorten(s)
	head, tail, _ := strings.Cut(short, "…")
	return strconv.Quote(head) + "…" + tail
}
