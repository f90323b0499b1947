package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// stream is the first n bytes of the test stream.
func stream(n int64) []byte {
	b := make([]byte, n)
	fillStream(b, 0)
	return b
}

// misdeliver overwrites [at, at+n) of b with the stream's data from src.
func misdeliver(b []byte, at, n, src int64) []byte {
	copy(b[at:at+n], stream(src + n)[src:])
	return b
}

func TestVerifyStream(t *testing.T) {
	const n = 4 << 20
	const ki = 1 << 10
	cases := []struct {
		name      string
		data      func() []byte
		readErr   error
		want      StreamClass
		failed    bool
		at        int64
		runs      []Run // checked when not nil
		wrongMore int64 // WrongBytes checked when > 0
	}{
		{
			name: "intact",
			data: func() []byte { return stream(n) },
			want: StreamOK, at: -1, runs: []Run{},
		},
		{
			name: "misdelivered 4 KiB run from 16 KiB further on",
			data: func() []byte { return misdeliver(stream(n), 1<<20, 4*ki, 1<<20+16*ki) },
			want: StreamKernelMisdelivery, at: 1 << 20,
			runs: []Run{{Offset: 1 << 20, Length: 4 * ki, Source: 1<<20 + 16*ki}},
		},
		{
			name: "misdelivered 4 KiB run from 16 KiB before",
			data: func() []byte { return misdeliver(stream(n), 1<<20, 4*ki, 1<<20-16*ki) },
			want: StreamKernelMisdelivery, at: 1 << 20,
			runs: []Run{{Offset: 1 << 20, Length: 4 * ki, Source: 1<<20 - 16*ki}},
		},
		{
			name: "misdelivered run with a shift that is not a multiple of 8",
			data: func() []byte { return misdeliver(stream(n), 2<<20, 3000, 2<<20+1001) },
			want: StreamKernelMisdelivery, at: 2 << 20,
			runs: []Run{{Offset: 2 << 20, Length: 3000, Source: 2<<20 + 1001}},
		},
		{
			name: "two misdelivered runs within 64 KiB in all",
			data: func() []byte {
				b := misdeliver(stream(n), 1<<20, 30*ki, 1<<20+40*ki)
				return misdeliver(b, 3<<20, 30*ki, 3<<20-8*ki)
			},
			want: StreamKernelMisdelivery, at: 1 << 20, wrongMore: 60 * ki,
		},
		{
			name: "misdelivered run of 96 KiB is beyond the defect's bounds",
			data: func() []byte { return misdeliver(stream(n), 1<<20, 96*ki, 1<<20+16*ki) },
			want: StreamReordered, failed: true, at: 1 << 20,
			runs: []Run{{Offset: 1 << 20, Length: 96 * ki, Source: 1<<20 + 16*ki}},
		},
		{
			name: "run from 2 MiB away is not nearby",
			data: func() []byte { return misdeliver(stream(n), 1<<20, 4*ki, 3<<20) },
			want: StreamReordered, failed: true, at: 1 << 20,
		},
		{
			name: "misdelivered run at the very end: the stream is never right again",
			data: func() []byte { return misdeliver(stream(n), n-4*ki, 4*ki, n-20*ki) },
			want: StreamReordered, failed: true, at: n - 4*ki,
		},
		{
			name: "dropped chunk",
			data: func() []byte {
				b := stream(n)
				return append(b[:1<<20:1<<20], b[1<<20+32*ki:]...)
			},
			want: StreamMissing, failed: true, at: 1 << 20,
			runs: []Run{{Offset: 1 << 20, Length: n - 32*ki - 1<<20, Source: 1<<20 + 32*ki}},
		},
		{
			name: "truncated",
			data: func() []byte { return stream(n)[:n-100] },
			want: StreamMissing, failed: true, at: n - 100, runs: []Run{},
		},
		{
			name: "duplicated chunk",
			data: func() []byte {
				b := stream(n)
				out := append([]byte{}, b[:1<<20+32*ki]...)
				out = append(out, b[1<<20:1<<20+32*ki]...)
				return append(out, b[1<<20+32*ki:]...)
			},
			want: StreamExtra, failed: true, at: 1<<20 + 32*ki,
			runs: []Run{{Offset: 1<<20 + 32*ki, Length: n - 1<<20, Source: 1 << 20}},
		},
		{
			name: "garbage after the end",
			data: func() []byte { return append(stream(n), make([]byte, 100)...) },
			want: StreamExtra, failed: true, at: n,
			runs: []Run{{Offset: n, Length: 100, Source: -1}},
		},
		{
			name: "swapped pair of chunks far apart",
			data: func() []byte {
				b := stream(n)
				a, c := int64(256*ki), int64(3<<20)
				copy(b[a:a+32*ki], stream(c + 32*ki)[c:])
				copy(b[c:c+32*ki], stream(a + 32*ki)[a:])
				return b
			},
			want: StreamReordered, failed: true, at: 256 * ki,
			runs: []Run{
				{Offset: 256 * ki, Length: 32 * ki, Source: 3 << 20},
				{Offset: 3 << 20, Length: 32 * ki, Source: 256 * ki},
			},
		},
		{
			name: "adjacent chunks swapped nearby are within the defect's bounds",
			data: func() []byte {
				b := stream(n)
				a := int64(1 << 20)
				copy(b[a:a+4*ki], stream(a + 8*ki)[a+4*ki:])
				copy(b[a+4*ki:a+8*ki], stream(a + 4*ki)[a:])
				return b
			},
			want: StreamKernelMisdelivery, at: 1 << 20,
			runs: []Run{
				{Offset: 1 << 20, Length: 4 * ki, Source: 1<<20 + 4*ki},
				{Offset: 1<<20 + 4*ki, Length: 4 * ki, Source: 1 << 20},
			},
		},
		{
			name: "zeroed bytes match no offset",
			data: func() []byte {
				b := stream(n)
				clear(b[1<<20+3 : 1<<20+200])
				return b
			},
			want: StreamCorrupt, failed: true, at: 1 << 20,
			runs: []Run{{Offset: 1 << 20, Length: 200, Source: -1}},
		},
		{
			name:    "reset",
			data:    func() []byte { return stream(n)[:1<<20] },
			readErr: errors.New("connection reset by peer"),
			want:    StreamReset, failed: true, at: 1 << 20,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(tc.data())
			if tc.readErr != nil {
				r = io.MultiReader(r, iotest.ErrReader(tc.readErr))
			}
			// Odd read sizes put words across read boundaries.
			rep := VerifyStream(&oddReader{r: r}, n)
			if rep.Class != tc.want || rep.Failed() != tc.failed || rep.At != tc.at {
				t.Fatalf("VerifyStream = %v\nwant class %v, failed %t, at %d", rep, tc.want, tc.failed, tc.at)
			}
			if tc.runs != nil && !equalRuns(rep.Runs, tc.runs) {
				t.Errorf("runs = %v, want %v", rep.Runs, tc.runs)
			}
			if tc.wrongMore > 0 && rep.WrongBytes != tc.wrongMore {
				t.Errorf("wrong bytes = %d, want %d (%v)", rep.WrongBytes, tc.wrongMore, rep)
			}
			if tc.readErr != nil && !errors.Is(rep.Err, tc.readErr) {
				t.Errorf("Err = %v, want %v", rep.Err, tc.readErr)
			}
		})
	}
}

func equalRuns(a, b []Run) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// oddReader returns reads of varying, odd sizes.
type oddReader struct {
	r io.Reader
	i int
}

func (o *oddReader) Read(p []byte) (int, error) {
	sizes := []int{1, 7, 13, 4093, 65537, 100003}
	o.i++
	return o.r.Read(p[:min(len(p), sizes[o.i%len(sizes)])])
}

func TestWriteStreamRoundTrip(t *testing.T) {
	for _, n := range []int64{0, 5, 8, 1<<20 + 3} {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(WriteStream(pw, n)) }()
		if rep := VerifyStream(pr, n); rep.Class != StreamOK || rep.Received != n {
			t.Errorf("n=%d: %v", n, rep)
		}
	}
}

func TestWriteStreamReportsWriteError(t *testing.T) {
	err := WriteStream(&failingWriter{left: 40000}, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "offset 40000") {
		t.Fatalf("WriteStream into a writer that fails after 40000 bytes = %v, want an error at offset 40000", err)
	}
}

// failingWriter accepts left bytes, then fails.
type failingWriter struct{ left int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.left {
		n := f.left
		f.left = 0
		return n, errors.New("broken pipe")
	}
	f.left -= len(p)
	return len(p), nil
}

// recordingTB records what CheckStream reports.
type recordingTB struct {
	testing.TB
	errors, logs []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func TestCheckStream(t *testing.T) {
	const n = 1 << 20
	misdelivered := VerifyStream(bytes.NewReader(misdeliver(stream(n), 64<<10, 4<<10, 80<<10)), n)
	missing := VerifyStream(bytes.NewReader(stream(n)[:n-8]), n)
	ok := VerifyStream(bytes.NewReader(stream(n)), n)

	before := Misdeliveries()
	var rec recordingTB
	CheckStream(&rec, ok)
	if len(rec.errors)+len(rec.logs) != 0 || Misdeliveries() != before {
		t.Errorf("CheckStream(ok) reported %q %q", rec.errors, rec.logs)
	}
	CheckStream(&rec, misdelivered)
	if len(rec.errors) != 0 || len(rec.logs) != 1 || !strings.Contains(rec.logs[0], "KNOWN KERNEL DEFECT") || Misdeliveries() != before+1 {
		t.Errorf("CheckStream(misdelivery): errors %q, logs %q, count %d -> %d; want one distinct log and one more counted", rec.errors, rec.logs, before, Misdeliveries())
	}
	CheckStream(&rec, missing)
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "missing") || Misdeliveries() != before+1 {
		t.Errorf("CheckStream(missing): errors %q; want one failure", rec.errors)
	}
}

func TestCaughtByChecksumOnlyWhenTheCounterRose(t *testing.T) {
	before := caughtCorruptions.Load()
	var rec recordingTB
	quiet := map[string]uint64{"MPTcpExtDataCsumErr": 2, "MPTcpExtMPRstRx": 1}
	if CaughtByChecksum(&rec, quiet, map[string]uint64{"MPTcpExtDataCsumErr": 2, "MPTcpExtMPRstRx": 5}, "a") {
		t.Error("a loss without a checksum error was taken for the kernel's defect")
	}
	if !CaughtByChecksum(&rec, quiet, map[string]uint64{"MPTcpExtDataCsumErr": 3}, "192.0.2.2:5->203.0.113.2:80") {
		t.Error("a loss with a checksum error was not taken for the kernel's defect")
	}
	if len(rec.errors) != 0 || len(rec.logs) != 1 || caughtCorruptions.Load() != before+1 ||
		!strings.Contains(rec.logs[0], "KNOWN KERNEL DEFECT") || !strings.Contains(rec.logs[0], "MPTcpExtDataCsumErr +1") ||
		!strings.Contains(rec.logs[0], "192.0.2.2:5->203.0.113.2:80") {
		t.Errorf("errors %q, logs %q, count %d -> %d; want one distinct log of the second loss naming the subflow and the counter, counted",
			rec.errors, rec.logs, before, caughtCorruptions.Load())
	}
}
