// Package manual is the one source of mptcpgd's manual pages, mptcpgd(8)
// and mptcpgd.toml(5), and of its bash completion: the commands and flags
// are described here (commands.go), the configuration keys are read from
// the commented reference configuration (configs/mptcpgd.toml), so that the
// page and the file cannot drift. cmd/mptcpgd-man writes them.
package manual

import (
	"fmt"
	"strings"
)

// Reference is the reference configuration as documentation.
type Reference struct {
	Intro    []string // the file's opening comment, its first line left out
	Sections []Section
}

// Section is a table of the configuration file.
type Section struct {
	Name  string
	Array bool     // [[name]] entries, given commented out in the file
	Doc   []string // comment lines before the table's entries
	Keys  []Key
}

// Key is one key with the comment above it and its line as the example.
type Key struct {
	Name    string
	Doc     []string // comment lines, "#" removed; "" separates paragraphs
	Example string   // the key's line: key = value
	// Shared: the key follows the previous one without a comment of its
	// own (gateway4, gateway6): that one's comment is its too.
	Shared bool
}

// Key finds a key of the section.
func (s Section) Key(name string) (Key, bool) {
	for _, k := range s.Keys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// ParseReference reads the reference configuration: an opening comment,
// then tables whose keys each follow their comment, and at the end the
// [[interface]] example commented out ("# key = value" lines documented by
// "# # text" lines).
func ParseReference(text string) (Reference, error) {
	var ref Reference
	var doc []string
	var sec *Section
	commented := false
	for n, line := range strings.Split(text, "\n") {
		n++
		if commented {
			rest, ok := strings.CutPrefix(line, "#")
			if !ok {
				if strings.TrimSpace(line) == "" {
					continue
				}
				return ref, fmt.Errorf("line %d: %q after the commented-out [[%s]] example", n, line, sec.Name)
			}
			rest = strings.TrimPrefix(rest, " ")
			if d, ok := commentText(rest); ok {
				doc = append(doc, d)
				continue
			}
			key, ok := keyLine(rest)
			if !ok {
				return ref, fmt.Errorf("line %d: %q in the [[%s]] example is neither a key nor its comment", n, line, sec.Name)
			}
			sec.add(key, doc, rest)
			doc = nil
			continue
		}
		switch trimmed := strings.TrimSpace(line); {
		case trimmed == "":
			if sec == nil && ref.Intro == nil && doc != nil {
				ref.Intro = doc[1:]
				doc = nil
			}
		case strings.HasPrefix(trimmed, "# [[") && strings.HasSuffix(trimmed, "]]"):
			ref.Sections = append(ref.Sections, Section{Name: strings.Trim(trimmed, "# []"), Array: true, Doc: doc})
			sec, doc, commented = &ref.Sections[len(ref.Sections)-1], nil, true
		case strings.HasPrefix(trimmed, "#"):
			d, _ := commentText(trimmed)
			doc = append(doc, d)
		case strings.HasPrefix(trimmed, "["):
			ref.Sections = append(ref.Sections, Section{Name: strings.Trim(trimmed, "[]"), Doc: doc})
			sec, doc = &ref.Sections[len(ref.Sections)-1], nil
		default:
			key, ok := keyLine(trimmed)
			if !ok || sec == nil {
				return ref, fmt.Errorf("line %d: %q is not a key of a table", n, line)
			}
			sec.add(key, doc, trimmed)
			doc = nil
		}
	}
	return ref, nil
}

// add adds a key; one without a comment shares the previous key's.
func (s *Section) add(name string, doc []string, example string) {
	k := Key{Name: name, Doc: doc, Example: example}
	if doc == nil && len(s.Keys) > 0 {
		k.Doc, k.Shared = s.Keys[len(s.Keys)-1].Doc, true
	}
	s.Keys = append(s.Keys, k)
}

// commentText is a comment line's text ("" for a bare "#"), when line is
// one.
func commentText(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, "#")
	if !ok {
		return "", false
	}
	return strings.TrimPrefix(rest, " "), true
}

// keyLine is the key of a "key = value" line.
func keyLine(line string) (string, bool) {
	key, _, ok := strings.Cut(line, " = ")
	if !ok || key == "" || strings.ContainsAny(key, " #[") {
		return "", false
	}
	return key, true
}
