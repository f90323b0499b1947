package unitwrap

import (
	"strings"
)

// assignment is one KEY=VALUE line of a unit file or drop-in.
type assignment struct {
	section, key, value string
}

// parseUnitFile reads unit-file syntax (systemd.syntax(7)): [Section]
// headers, KEY=VALUE lines with surrounding whitespace trimmed, # and ;
// comments, and lines continued by a trailing backslash, which becomes a
// space; comment lines inside a continuation are skipped. Lines systemd
// would ignore with a warning are ignored.
func parseUnitFile(text string) []assignment {
	var out []assignment
	section := ""
	var cont strings.Builder
	continuing := false
	for _, raw := range strings.Split(text, "\n") {
		line := strings.TrimRight(raw, "\r")
		trimmed := strings.TrimSpace(line)
		if continuing && (strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, ";")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont.WriteString(strings.TrimSuffix(line, "\\"))
			cont.WriteByte(' ')
			continuing = true
			continue
		}
		if continuing {
			cont.WriteString(line)
			line, continuing = cont.String(), false
			cont.Reset()
			trimmed = strings.TrimSpace(line)
		}
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, ";"):
		case strings.HasPrefix(trimmed, "[") && strings.HasSuffix(trimmed, "]"):
			section = trimmed[1 : len(trimmed)-1]
		default:
			key, value, ok := strings.Cut(trimmed, "=")
			if ok {
				out = append(out, assignment{section: section, key: strings.TrimSpace(key), value: strings.TrimSpace(value)})
			}
		}
	}
	return out
}

// wordSpans returns the [start, end) offsets of the words of a command
// line in systemd's syntax: separated by whitespace, with "double" and
// 'single' quoted parts and backslash escapes kept inside a word.
func wordSpans(s string) [][2]int {
	var spans [][2]int
	i := 0
	for i < len(s) {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			break
		}
		start := i
		var quote byte
		for i < len(s) && (quote != 0 || !isSpace(s[i])) {
			switch c := s[i]; {
			case c == '\\' && i+1 < len(s):
				i++
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
			case c == quote:
				quote = 0
			}
			i++
		}
		spans = append(spans, [2]int{start, i})
	}
	return spans
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
