// Package bitnames turns bit sets into the comma-separated words `ip`
// prints ("subflow,backup", "up,running") and back, so that show's text and
// JSON say what the flags mean instead of a number.
package bitnames

import (
	"fmt"
	"strconv"
	"strings"
)

// Name is one bit's word.
type Name struct {
	Bit  uint32
	Word string
}

// Format lists the words of the bits set in v, in the order of names; bits
// without a word are shown in hex; no bits at all is none.
func Format(v uint32, names []Name) string {
	if v == 0 {
		return "none"
	}
	var out []string
	for _, n := range names {
		if v&n.Bit != 0 {
			out = append(out, n.Word)
			v &^= n.Bit
		}
	}
	if v != 0 {
		out = append(out, fmt.Sprintf("%#x", v))
	}
	return strings.Join(out, ",")
}

// Parse reads what Format writes. An unknown word is an error naming the
// known ones.
func Parse(s string, names []Name) (uint32, error) {
	var v uint32
	if s == "" || s == "none" {
		return 0, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if n, err := strconv.ParseUint(part, 0, 32); err == nil && strings.HasPrefix(part, "0x") {
			v |= uint32(n)
			continue
		}
		b, ok := lookup(part, names)
		if !ok {
			return 0, fmt.Errorf("unknown flag %q (want %s)", part, words(names))
		}
		v |= b
	}
	return v, nil
}

func lookup(word string, names []Name) (uint32, bool) {
	for _, n := range names {
		if n.Word == word {
			return n.Bit, true
		}
	}
	return 0, false
}

func words(names []Name) string {
	var w []string
	for _, n := range names {
		w = append(w, n.Word)
	}
	if len(w) < 2 {
		return strings.Join(w, "")
	}
	return strings.Join(w[:len(w)-1], ", ") + " or " + w[len(w)-1]
}
