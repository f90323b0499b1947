package nmpolicy

import (
	"bufio"
	"path"
	"strconv"
	"strings"
)

// ConfFile is one NetworkManager configuration file: its path and text.
type ConfFile struct {
	Path string
	Text string
}

// confKey is the key NetworkManager.conf's connection sections set the
// default with; D-Bus does not expose these defaults.
const confKey = "connection.mptcp-flags"

// ConfDefault returns the connection.mptcp-flags default that
// NetworkManager.conf's files give the device iface, and the file that set
// it; 0 when none does. files are in the order NetworkManager reads them
// (NetworkManager.conf, then the conf.d files by name): a later file's
// sections come first, and within a file the sections named "connection*"
// in order of appearance, plain [connection] last. A section with
// match-device applies only when one of its interface-name: specs (or "*")
// matches; other device specs are not evaluated and do not match. The value
// is a number, decimal or 0x hexadecimal, as NetworkManager reads it; an
// unreadable one is skipped, as NetworkManager does.
func ConfDefault(files []ConfFile, iface string) (Flags, string) {
	for i := len(files) - 1; i >= 0; i-- {
		for _, s := range confSections(files[i].Text) {
			v, ok := s.keys[confKey]
			if !ok || !s.matches(iface) {
				continue
			}
			n, err := strconv.ParseInt(strings.TrimSpace(v), 0, 64)
			if err != nil || n < 0 {
				continue
			}
			if n == 0 {
				// NetworkManager's fallback: 0 in the file means unset.
				return 0, ""
			}
			return Flags(n), files[i].Path
		}
	}
	return 0, ""
}

type confSection struct {
	name string
	keys map[string]string
}

// confSections parses a key file's "connection*" sections, plain
// [connection] moved last.
func confSections(text string) []confSection {
	var out []confSection
	var cur *confSection
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			name := line[1 : len(line)-1]
			cur = nil
			if strings.HasPrefix(name, "connection") {
				out = append(out, confSection{name: name, keys: map[string]string{}})
				cur = &out[len(out)-1]
			}
		case cur != nil:
			if k, v, ok := strings.Cut(line, "="); ok {
				cur.keys[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	var ordered []confSection
	var plain []confSection
	for _, s := range out {
		if s.name == "connection" {
			plain = append(plain, s)
		} else {
			ordered = append(ordered, s)
		}
	}
	return append(ordered, plain...)
}

func (s confSection) matches(iface string) bool {
	specs, ok := s.keys["match-device"]
	if !ok {
		return true
	}
	for _, spec := range strings.FieldsFunc(specs, func(r rune) bool { return r == ',' || r == ';' }) {
		spec = strings.TrimSpace(spec)
		if spec == "*" {
			return true
		}
		pattern, ok := strings.CutPrefix(spec, "interface-name:")
		if !ok {
			continue
		}
		if exact, ok := strings.CutPrefix(pattern, "="); ok {
			if exact == iface {
				return true
			}
			continue
		}
		pattern = strings.TrimPrefix(pattern, "~")
		if m, err := path.Match(pattern, iface); err == nil && m {
			return true
		}
	}
	return false
}
