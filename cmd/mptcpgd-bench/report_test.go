package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSamplePercentiles(t *testing.T) {
	var s sample
	for i := 1; i <= 200; i++ {
		s = append(s, time.Duration(201-i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{
		{50, 100 * time.Millisecond},
		{99, 198 * time.Millisecond},
		{100, 200 * time.Millisecond},
		{0, time.Millisecond},
	} {
		if got := s.pct(c.p); got != c.want {
			t.Errorf("p%v of 1..200 ms = %v, want %v", c.p, got, c.want)
		}
	}
	if got := (sample{}).pct(50); got != 0 {
		t.Errorf("p50 of no samples = %v, want 0", got)
	}
}

func TestWriteDocKeepsTheIntroduction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := writeDoc(path, "first run\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "# Benchmarks") || !strings.HasSuffix(string(b), docMarker+"\n\nfirst run\n") {
		t.Fatalf("a new document has the default introduction, the marker and the body; got:\n%s", b)
	}
	edited := "# My own words\n\nkept\n\n" + docMarker + "\n\nold results\n"
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeDoc(path, "new results\n"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	want := "# My own words\n\nkept\n\n" + docMarker + "\n\nnew results\n"
	if string(b) != want {
		t.Errorf("rewritten document:\n%s\nwant:\n%s", b, want)
	}
}

func TestAtFloor(t *testing.T) {
	for _, c := range []struct {
		v, floor time.Duration
		want     bool
	}{
		{13 * time.Millisecond, 13 * time.Millisecond, true},
		{15 * time.Millisecond, 13 * time.Millisecond, true},  // within 15% + 1 ms
		{17 * time.Millisecond, 13 * time.Millisecond, false}, // beyond
		{100 * time.Millisecond, 95 * time.Millisecond, true},
	} {
		if got := atFloor(c.v, c.floor); got != c.want {
			t.Errorf("atFloor(%v, %v) = %t, want %t", c.v, c.floor, got, c.want)
		}
	}
}
