package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The test stream: the 8-byte word at every offset o (o a multiple of 8)
// is big-endian o XOR streamMask, so that any stretch of received data
// says which stream offset it came from, which a checksum cannot. The mask
// makes zero-filled data decode to an offset far outside any stream.
const streamMask uint64 = 0x6d70746370676421

// Bounds of the kernel's known misdelivery (docs/architecture.md, "The
// kernel's data defect"): every byte arrives and the length is exact, but
// runs of a few KiB carry data from a nearby offset before the stream is
// right again. Anything beyond these bounds is a failure.
const (
	// MisdeliveryMaxBytes is the most wrong bytes, over all runs, that
	// still count as the kernel's defect.
	MisdeliveryMaxBytes = 64 << 10
	// MisdeliveryMaxDistance is how far from its place a run's data may
	// come from and still count as "nearby".
	MisdeliveryMaxDistance = 1 << 20
)

// streamChunk is the size of WriteStream's writes.
const streamChunk = 32 << 10

// maxReportedRuns bounds StreamReport.Runs; the rest are only counted.
const maxReportedRuns = 64

// streamByte is the byte at stream offset s.
func streamByte(s int64) byte {
	w := uint64(s&^7) ^ streamMask
	return byte(w >> (56 - 8*(s&7)))
}

// fillStream writes the stream's bytes from offset off into buf.
func fillStream(buf []byte, off int64) {
	i := 0
	for ; i < len(buf) && (off+int64(i))%8 != 0; i++ {
		buf[i] = streamByte(off + int64(i))
	}
	for ; i+8 <= len(buf); i += 8 {
		binary.BigEndian.PutUint64(buf[i:], uint64(off+int64(i))^streamMask)
	}
	for ; i < len(buf); i++ {
		buf[i] = streamByte(off + int64(i))
	}
}

// WriteStream writes the first n bytes of the test stream to w, in chunks
// of 32 KiB.
func WriteStream(w io.Writer, n int64) error {
	buf := make([]byte, streamChunk)
	for off := int64(0); off < n; {
		chunk := buf[:min(int64(len(buf)), n-off)]
		fillStream(chunk, off)
		k, err := w.Write(chunk)
		off += int64(k)
		if err != nil {
			return fmt.Errorf("write test stream at offset %d of %d: %w", off, n, err)
		}
	}
	return nil
}

// StreamClass is what VerifyStream found.
type StreamClass int

const (
	// StreamOK: every byte arrived, in order, and nothing else.
	StreamOK StreamClass = iota
	// StreamKernelMisdelivery: the kernel's known defect. The length is
	// exact, at most MisdeliveryMaxBytes are wrong, every wrong run carries
	// stream data from at most MisdeliveryMaxDistance away, and the stream
	// is right again after the last run. Not a failure, but never hidden:
	// CheckStream logs and counts it.
	StreamKernelMisdelivery
	// StreamMissing: fewer bytes than were sent.
	StreamMissing
	// StreamExtra: more bytes than were sent.
	StreamExtra
	// StreamReordered: the length is exact and every wrong run carries
	// stream data, but beyond the misdelivery's bounds: too many bytes,
	// from too far away, or a run that lasts to the end of the stream.
	StreamReordered
	// StreamCorrupt: the length is exact, but some data is from no offset
	// of the stream.
	StreamCorrupt
	// StreamReset: reading failed before EOF (a reset connection).
	StreamReset
)

func (c StreamClass) String() string {
	switch c {
	case StreamOK:
		return "ok"
	case StreamKernelMisdelivery:
		return "kernel misdelivery"
	case StreamMissing:
		return "missing bytes"
	case StreamExtra:
		return "extra bytes"
	case StreamReordered:
		return "reordered"
	case StreamCorrupt:
		return "corrupt"
	case StreamReset:
		return "reset"
	}
	return fmt.Sprintf("class%d", int(c))
}

// Run is a stretch of received data that differs from the stream, with
// where its data came from. Runs are found word by word (8 bytes), so their
// edges are rounded to words.
type Run struct {
	// Offset and Length place the run in the received data.
	Offset, Length int64
	// Source is the stream offset the run's data came from, or -1 when the
	// data matches no offset of the stream.
	Source int64
}

// Shift is how far from its place the run's data came (Source - Offset);
// meaningless when Source is -1.
func (r Run) Shift() int64 { return r.Source - r.Offset }

func (r Run) String() string {
	if r.Source < 0 {
		return fmt.Sprintf("[%d,+%d) from nowhere in the stream", r.Offset, r.Length)
	}
	return fmt.Sprintf("[%d,+%d) from %d (%+d)", r.Offset, r.Length, r.Source, r.Shift())
}

// StreamReport is VerifyStream's verdict.
type StreamReport struct {
	Class StreamClass
	// Want is the length sent, Received the length that arrived.
	Want, Received int64
	// At is the stream offset where the received data first went wrong
	// (for Reset: where reading failed); -1 when OK.
	At int64
	// Runs are the wrong stretches, in order, at most 64 of them;
	// MoreRuns counts those left out, WrongBytes is the length of all.
	Runs       []Run
	MoreRuns   int
	WrongBytes int64
	// Err is the read error of a Reset.
	Err error
}

// Failed says whether the report is a test failure: everything but OK and
// the kernel's known misdelivery.
func (r StreamReport) Failed() bool {
	return r.Class != StreamOK && r.Class != StreamKernelMisdelivery
}

func (r StreamReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: received %d of %d bytes", r.Class, r.Received, r.Want)
	switch r.Class {
	case StreamMissing:
		fmt.Fprintf(&b, " (%d missing)", r.Want-r.Received)
	case StreamExtra:
		fmt.Fprintf(&b, " (%d extra)", r.Received-r.Want)
	}
	if r.Class != StreamOK {
		fmt.Fprintf(&b, ", wrong from offset %d", r.At)
	}
	if r.Err != nil {
		fmt.Fprintf(&b, " (%v)", r.Err)
	}
	if len(r.Runs) > 0 {
		fmt.Fprintf(&b, "; %d wrong bytes in %d runs:", r.WrongBytes, len(r.Runs)+r.MoreRuns)
		for i, run := range r.Runs {
			if i == 5 {
				fmt.Fprintf(&b, " ... (%d more)", len(r.Runs)+r.MoreRuns-i)
				break
			}
			b.WriteString(" " + run.String())
		}
	}
	return b.String()
}

// VerifyStream reads r until EOF and checks it against the first n bytes
// of the test stream that WriteStream writes.
func VerifyStream(r io.Reader, n int64) StreamReport {
	v := verifier{n: n}
	buf := make([]byte, 256<<10)
	start, end := 0, 0
	var readErr error
	for {
		if len(buf)-end < 32<<10 {
			end = copy(buf, buf[start:end])
			start = 0
		}
		k, err := r.Read(buf[end:])
		end += k
		start += v.process(buf[start:end], false)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	v.process(buf[start:end], true)
	return v.report(readErr)
}

// verifier compares received words with the stream and collects the runs
// that differ.
type verifier struct {
	n        int64
	pos      int64 // stream offset of the next word to check
	cur      *Run  // the run being extended
	runs     []Run
	more     int
	wrong    int64
	window   [16]byte
	tailOpen bool // a run was still open at the end of the data
}

// process checks the whole words of data (which starts at v.pos), keeping
// back the last one until 8 more bytes follow it, since finding where a
// wrong word came from may need them. With final set it checks everything.
// It returns how many bytes it consumed.
func (v *verifier) process(data []byte, final bool) int {
	i := 0
	for {
		rest := len(data) - i
		if rest == 0 || (!final && rest < 16) {
			break
		}
		w := data[i : i+min(8, rest)]
		la := data[i+len(w) : i+min(16, rest)]
		v.word(w, la)
		i += len(w)
	}
	if final {
		v.tailOpen = v.cur != nil
		v.closeRun()
	}
	return i
}

// word checks the word w at v.pos; la is what follows it.
func (v *verifier) word(w, la []byte) {
	p := v.pos
	v.pos += int64(len(w))
	if v.correct(p, w) {
		v.closeRun()
		return
	}
	if v.cur != nil && v.cur.Source >= 0 && v.matchesShift(p, w, v.cur.Shift()) {
		v.cur.Length += int64(len(w))
		return
	}
	d, found := v.findShift(p, w, la)
	if v.cur != nil && v.cur.Source < 0 && !found {
		v.cur.Length += int64(len(w))
		return
	}
	v.closeRun()
	src := int64(-1)
	if found {
		src = p + d
	}
	v.cur = &Run{Offset: p, Length: int64(len(w)), Source: src}
}

// correct says whether w is the stream's data at offset p.
func (v *verifier) correct(p int64, w []byte) bool {
	if len(w) == 8 && p+8 <= v.n {
		return binary.BigEndian.Uint64(w) == uint64(p)^streamMask
	}
	for i, b := range w {
		if x := p + int64(i); x >= v.n || b != streamByte(x) {
			return false
		}
	}
	return true
}

// matchesShift says whether every byte of w at offset p is the stream's
// byte from d further on, or its own (the edges of a run whose shift is not
// a multiple of 8 share a word with correct data).
func (v *verifier) matchesShift(p int64, w []byte, d int64) bool {
	for i, b := range w {
		x := p + int64(i)
		fromShift := x+d >= 0 && x+d < v.n && b == streamByte(x+d)
		own := x < v.n && b == streamByte(x)
		if !fromShift && !own {
			return false
		}
	}
	return true
}

// findShift looks for the stream offset that wrong word w at p came from,
// by decoding every 8-byte window that starts in it, and returns the shift.
func (v *verifier) findShift(p int64, w, la []byte) (int64, bool) {
	win := v.window[:copy(v.window[:], w)]
	win = win[:len(win)+copy(v.window[len(win):], la)]
	for k := 0; k < 8 && k+8 <= len(win); k++ {
		s := int64(binary.BigEndian.Uint64(win[k:]) ^ streamMask)
		if s < 0 || s%8 != 0 || s >= v.n {
			continue
		}
		d := s - (p + int64(k))
		if d != 0 && v.matchesShift(p, w, d) {
			return d, true
		}
	}
	return 0, false
}

func (v *verifier) closeRun() {
	if v.cur == nil {
		return
	}
	v.wrong += v.cur.Length
	if len(v.runs) < maxReportedRuns {
		v.runs = append(v.runs, *v.cur)
	} else {
		v.more++
	}
	v.cur = nil
}

// report classifies what the verifier saw; readErr is a read's error other
// than EOF.
func (v *verifier) report(readErr error) StreamReport {
	r := StreamReport{Want: v.n, Received: v.pos, At: -1, Runs: v.runs, MoreRuns: v.more, WrongBytes: v.wrong}
	first := int64(-1)
	if len(v.runs) > 0 {
		first = v.runs[0].Offset
	}
	orElse := func(a, b int64) int64 {
		if a >= 0 {
			return a
		}
		return b
	}
	switch {
	case readErr != nil:
		r.Class, r.At, r.Err = StreamReset, v.pos, readErr
	case v.pos < v.n:
		r.Class, r.At = StreamMissing, orElse(first, v.pos)
	case v.pos > v.n:
		r.Class, r.At = StreamExtra, orElse(first, v.n)
	case first < 0:
		r.Class = StreamOK
	case v.misdelivery():
		r.Class, r.At = StreamKernelMisdelivery, first
	case v.allFromStream():
		r.Class, r.At = StreamReordered, first
	default:
		r.Class, r.At = StreamCorrupt, first
	}
	return r
}

// misdelivery says whether the runs (of a stream of exact length) are
// within the kernel defect's bounds.
func (v *verifier) misdelivery() bool {
	if v.wrong > MisdeliveryMaxBytes || v.tailOpen || v.more > 0 {
		return false
	}
	for _, run := range v.runs {
		if run.Source < 0 || run.Shift() > MisdeliveryMaxDistance || run.Shift() < -MisdeliveryMaxDistance {
			return false
		}
	}
	return true
}

func (v *verifier) allFromStream() bool {
	if v.more > 0 {
		return false
	}
	for _, run := range v.runs {
		if run.Source < 0 {
			return false
		}
	}
	return true
}

// misdeliveries counts the kernel misdeliveries CheckStream has seen in
// this test binary.
var misdeliveries atomic.Int64

// Misdeliveries is how many kernel misdeliveries CheckStream has logged in
// this test binary so far, for a summary at the end of a run.
func Misdeliveries() int64 { return misdeliveries.Load() }

// caughtCorruptions counts the subflows that CaughtByChecksum has logged.
var caughtCorruptions atomic.Int64

// CaughtByChecksum tells whether a subflow a transfer lost is the kernel's
// known defect: the receiver's DSS checksum caught corrupted data
// (MPTcpExtDataCsumErr rose from before to after, the receiver's counters)
// and, as RFC 8684 section 3.7 has it on a connection with a join, reset
// the subflow that carried them. The stream stays right; the connection
// has one subflow fewer, or joins again. If so the loss is logged
// distinctly and counted, and it returns true; else it returns false, and
// the loss is the test's failure.
func CaughtByChecksum(tb TB, before, after map[string]uint64, subflow string) bool {
	tb.Helper()
	n := CounterDelta(before, after, "MPTcpExtDataCsumErr")
	if n == 0 {
		return false
	}
	total := caughtCorruptions.Add(1)
	tb.Logf("KNOWN KERNEL DEFECT (docs/architecture.md, not a test failure): the peer's DSS checksum caught corrupted data (MPTcpExtDataCsumErr +%d) and reset subflow %s; subflows lost so in this run: %d",
		n, subflow, total)
	return true
}

// RunTests runs a test binary's tests (call it from TestMain) and then
// reports how often the kernel's known defect showed up: each such
// transfer passed but was logged. It returns the exit code.
func RunTests(m *testing.M) int {
	code := m.Run()
	if n := Misdeliveries(); n > 0 {
		fmt.Printf("KNOWN KERNEL DEFECT: %d transfer(s) with a bounded misdelivery in this run (see the logged reports)\n", n)
	}
	if n := caughtCorruptions.Load(); n > 0 {
		fmt.Printf("KNOWN KERNEL DEFECT: %d subflow(s) reset after a DSS checksum caught corrupted data in this run (see the logged reports)\n", n)
	}
	return code
}

// CheckStream applies the rule for stream integrity (docs/architecture.md, "The kernel's data defect"): a failure
// (missing, extra, reordered, corrupt, reset) fails tb with the report; the
// kernel's known misdelivery passes but is logged distinctly, with the
// MPTcpExtDataCsumErr counter of every namespace in nss (the DSS checksum
// catches most of these), and counted in Misdeliveries.
func CheckStream(tb TB, r StreamReport, nss ...*NS) {
	tb.Helper()
	if r.Class == StreamOK {
		return
	}
	var csum []string
	for _, ns := range nss {
		c, err := ns.Nstat()
		if err != nil {
			csum = append(csum, fmt.Sprintf("%s=? (%v)", ns.Name, err))
			continue
		}
		csum = append(csum, fmt.Sprintf("%s=%d", ns.Name, c["MPTcpExtDataCsumErr"]))
	}
	counters := strings.Join(csum, " ")
	if r.Failed() {
		tb.Errorf("stream integrity: %v; MPTcpExtDataCsumErr %s", r, counters)
		return
	}
	total := misdeliveries.Add(1)
	tb.Logf("KNOWN KERNEL DEFECT (docs/architecture.md, not a test failure): %v; MPTcpExtDataCsumErr %s; misdeliveries in this run: %d",
		r, counters, total)
}

// StallMeter wraps a receiver and remembers the longest gap between two
// reads that returned data: the longest an application waited for data.
type StallMeter struct {
	R io.Reader

	mu      sync.Mutex
	last    time.Time
	longest time.Duration
	read    int64
}

func (m *StallMeter) Read(b []byte) (int, error) {
	n, err := m.R.Read(b)
	if n > 0 {
		now := time.Now()
		m.mu.Lock()
		if !m.last.IsZero() && now.Sub(m.last) > m.longest {
			m.longest = now.Sub(m.last)
		}
		m.last = now
		m.read += int64(n)
		m.mu.Unlock()
	}
	return n, err
}

// Longest is the longest gap seen so far.
func (m *StallMeter) Longest() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.longest
}

// Progress is how many bytes were read so far and when the last of them
// came (zero before the first).
func (m *StallMeter) Progress() (read int64, last time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.read, m.last
}
