package config

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// hostile documents that once took the parser tens of seconds or hundreds
// of megabytes, each built to about size bytes.
var hostile = []struct {
	name string
	doc  func(size int) []byte
}{
	{"dotted header", func(size int) []byte {
		return []byte("[" + strings.Repeat("a.", size/2) + "a]\nx = 1\n")
	}},
	{"dotted header of a value", func(size int) []byte {
		return []byte("[log.level." + strings.Repeat("a.", size/2) + "a]\nx = 1\n")
	}},
	{"unknown keys", func(size int) []byte {
		var b strings.Builder
		b.WriteString("[daemon]\n")
		for i := 0; b.Len() < size; i++ {
			b.WriteString("k" + strconv.Itoa(i) + " = 1\n")
		}
		return []byte(b.String())
	}},
	{"dotted key of a value", func(size int) []byte {
		return []byte("log.level." + strings.Repeat("a.", size/2) + "a = 1\n")
	}},
	{"keys in a value's inline table", func(size int) []byte {
		var b strings.Builder
		b.WriteString("[log]\nlevel = { ")
		for i := 0; b.Len() < size; i++ {
			b.WriteString("k" + strconv.Itoa(i) + " = 1, ")
		}
		b.WriteString("z = 1 }\n")
		return []byte(b.String())
	}},
	{"dotted keys of a value", func(size int) []byte {
		var b strings.Builder
		b.WriteString("[log]\n")
		for i := 0; b.Len() < size; i++ {
			b.WriteString("level.k" + strconv.Itoa(i) + " = 1\n")
		}
		return []byte(b.String())
	}},
	{"nested arrays", func(size int) []byte {
		// The parser refuses more than 10,000 levels; repeat such values.
		var b strings.Builder
		depth := min(size/2, 9000)
		for i := 0; b.Len() < size; i++ {
			b.WriteString("[[interface]]\nflags = " + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "\n")
		}
		return []byte(b.String())
	}},
	{"interface entries", func(size int) []byte {
		var b strings.Builder
		for i := 0; b.Len() < size; i++ {
			b.WriteString("[[interface]]\nmatch = \"e" + strconv.Itoa(i) + "\"\n")
		}
		return []byte(b.String())
	}},
	{"array elements", func(size int) []byte {
		return []byte("[endpoints]\ninclude = [" + strings.Repeat("\"e\", ", size/5) + "]\n")
	}},
	{"long bad value", func(size int) []byte {
		return []byte("[log]\nlevel = \"" + strings.Repeat("v", size) + "\"\n")
	}},
}

// allocated returns the bytes Parse allocates for doc.
func allocated(doc []byte) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _ = Parse("t.toml", doc)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestParseIsLinear checks, by memory rather than by time, that parsing
// grows linearly: eight times the document may cost up to sixteen times the
// memory (linear is eight, quadratic sixty-four).
func TestParseIsLinear(t *testing.T) {
	const small = 16 << 10
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			a, b := allocated(h.doc(small)), allocated(h.doc(8*small))
			t.Logf("%d KiB: %d bytes allocated; %d KiB: %d bytes", small>>10, a, 8*small>>10, b)
			if b > 16*a {
				t.Errorf("8x the document took %.1fx the memory (%d -> %d bytes): parsing is not linear", float64(b)/float64(a), a, b)
			}
		})
	}
}

// TestParseLargestHostileFiles parses each hostile document at the largest
// size a file may have; before parsing was linear, such documents took
// minutes (go test's timeout bounds this test). Errors stay short.
func TestParseLargestHostileFiles(t *testing.T) {
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			doc := h.doc(MaxSize - 64<<10)
			if _, err := Parse("t.toml", doc); err != nil && len(err.Error()) > 4<<10 {
				t.Errorf("error of %d bytes, want a short one:\n%.300s...", len(err.Error()), err)
			}
		})
	}
}

func TestParseRefusesLargeFiles(t *testing.T) {
	_, err := Parse("big.toml", make([]byte, MaxSize+1))
	if want := "big.toml: larger than 256 KiB, the most a configuration file may be"; err == nil || err.Error() != want {
		t.Errorf("Parse of %d bytes = %v, want %q", MaxSize+1, err, want)
	}
}

func TestManyUnknownKeysListedBriefly(t *testing.T) {
	_, err := Parse("t.toml", hostile[2].doc(4<<10))
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxListed+1 || !strings.HasPrefix(lines[0], "t.toml:2: daemon.k0: unknown key") ||
		!strings.HasSuffix(lines[maxListed], "more problems not listed") {
		t.Errorf("error lists %d lines, want %d unknown keys and a count of the rest:\n%s", len(lines), maxListed, err)
	}
}

// BenchmarkParseHostile parses each hostile document at the largest size
// a file may have.
func BenchmarkParseHostile(b *testing.B) {
	for _, h := range hostile {
		doc := h.doc(MaxSize - 64<<10)
		b.Run(h.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Parse("t.toml", doc)
			}
		})
	}
}
