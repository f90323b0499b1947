package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Transfer is one MPTCP connection from the client's first uplink to the
// server, carrying the test stream (WriteStream), checked at the receiver
// (VerifyStream) which also times the gaps between its reads.
type Transfer struct {
	// Conn is the client's end.
	Conn *net.TCPConn
	// Start is when the connection was dialled.
	Start time.Time
	// StallLimit is how long the receiver may read nothing before Wait
	// fails the transfer (DefaultStallLimit unless changed).
	StallLimit time.Duration

	top      *Topology
	size     int64
	before   []uint64
	meter    StallMeter
	done     chan TransferResult
	wrote    chan error
	received chan struct{}
}

// TransferResult is what a transfer showed.
type TransferResult struct {
	Report StreamReport
	// WriteErr is the sender's error, if any.
	WriteErr error
	// Took runs from the dial to the last byte read.
	Took time.Duration
	// Stall is the longest gap between two reads that returned data.
	Stall time.Duration
	// Goodput is application data in Mbit/s.
	Goodput float64
	// Sent is what each client uplink (Uplinks order) transmitted.
	Sent []uint64
}

// StartTransfer listens on the server (a wildcard listener, as servers
// have: joins to announced addresses must find it), dials dst from the
// client's first uplink address in dst's family, and starts sending size
// bytes. The connection must be MPTCP.
func StartTransfer(tb TB, top *Topology, dst netip.Addr, size int64) *Transfer {
	tb.Helper()
	return StartTransferTo(tb, top, dst, 0, size)
}

// StartTransferTo is StartTransfer to a given server port (0: any free
// one), for tests whose middleboxes match it.
func StartTransferTo(tb TB, top *Topology, dst netip.Addr, port uint16, size int64) *Transfer {
	tb.Helper()
	fam := V4
	if dst.Is6() {
		fam = V6
	}
	t := &Transfer{StallLimit: DefaultStallLimit, top: top, size: size, done: make(chan TransferResult, 1), wrote: make(chan error, 1), received: make(chan struct{})}
	t.before = t.uplinkTx(tb)
	ln, err := top.Server.ListenMPTCP(fam.Network(), fmt.Sprintf(":%d", port))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			t.done <- TransferResult{Report: StreamReport{Class: StreamReset, Err: err}}
			return
		}
		defer conn.Close()
		t.meter.R = conn
		rep := VerifyStream(&t.meter, size)
		took := time.Since(t.Start)
		close(t.received)
		t.done <- TransferResult{Report: rep, Took: took, Stall: t.meter.Longest(), Goodput: float64(size*8) / took.Seconds() / 1e6}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	port = ln.Addr().(*net.TCPAddr).AddrPort().Port()
	t.Start = time.Now()
	conn, err := top.Client.DialMPTCP(ctx, fam.Network(), netip.AddrPortFrom(dst, port).String(), top.Uplinks[0].Addr(fam))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	if ok, _ := conn.MultipathTCP(); !ok {
		tb.Fatal("the transfer's connection is not MPTCP")
	}
	t.Conn = conn
	go func() {
		err := WriteStream(conn, size)
		conn.CloseWrite()
		t.wrote <- err
	}()
	return t
}

// Received is closed once the receiver has read the whole stream.
func (t *Transfer) Received() <-chan struct{} { return t.received }

// Wait waits for the transfer to end and returns what it showed; checking
// the report (CheckStream) is the caller's.
func (t *Transfer) Wait(tb TB) TransferResult {
	tb.Helper()
	var (
		writeErr error
		res      TransferResult
	)
	wrote, done := t.wrote, t.done
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for wrote != nil || done != nil {
		select {
		case writeErr = <-wrote:
			wrote = nil
		case res = <-done:
			done = nil
		case now := <-check.C:
			read, last := t.meter.Progress()
			if last.IsZero() {
				last = t.Start
			}
			if now.Sub(last) > t.StallLimit {
				// Say what the kernel shows before the sockets go.
				diag := t.Diagnose()
				t.Conn.Close()
				tb.Fatalf("the transfer is stuck: nothing received for %v, after %d of %d bytes\n%s",
					now.Sub(last).Round(time.Second), read, t.size, diag)
			}
		}
	}
	// The transfer is over: close the client's socket as a program would,
	// so that the kernel ends the connection (a socket left open keeps it,
	// and its subflows, in every path manager's view until the scope ends).
	t.Conn.Close()
	res.WriteErr = writeErr
	for i, tx := range t.uplinkTx(tb) {
		if i < len(t.before) {
			tx -= t.before[i]
		}
		res.Sent = append(res.Sent, tx)
	}
	return res
}

// DefaultStallLimit is how long a transfer may receive nothing before Wait
// fails it by default: far longer than any outage a test makes (the other
// path carries the data meanwhile), so that a connection stuck for good
// fails its own test with what the kernel shows instead of running into
// the package timeout.
const DefaultStallLimit = time.Minute

// Diagnose is what a test that waited in vain for a transfer shows: the
// client's and the server's MPTCP sockets with their subflows, the client's
// endpoints and neighbours, as ss and ip show them, and both ends' MP_JOIN
// counters (the namespaces are the test's own, so they count its joins).
func (t *Transfer) Diagnose() string {
	var b strings.Builder
	for _, c := range []struct {
		ns   *NS
		name string
		args []string
	}{
		{t.top.Client, "ss", []string{"-tMni"}},
		{t.top.Client, "ip", []string{"mptcp", "endpoint", "show"}},
		{t.top.Client, "ip", []string{"neigh", "show"}},
		{t.top.Server, "ss", []string{"-tMni"}},
	} {
		out, err := c.ns.Exec(c.name, c.args...)
		fmt.Fprintf(&b, "%s: %s %s:\n", c.ns.Name, c.name, strings.Join(c.args, " "))
		for line := range strings.Lines(out) {
			// ss pads its lines to the terminal's width.
			fmt.Fprintln(&b, strings.TrimRight(line, " \n"))
		}
		if err != nil {
			fmt.Fprintf(&b, "(%v)\n", err)
		}
	}
	for _, ns := range []*NS{t.top.Client, t.top.Server} {
		counters, err := ns.Nstat()
		if err != nil {
			fmt.Fprintf(&b, "%s: (%v)\n", ns.Name, err)
			continue
		}
		var joins []string
		for name, v := range counters {
			if strings.HasPrefix(name, "MPTcpExt") && strings.Contains(name, "Join") && v > 0 {
				joins = append(joins, fmt.Sprintf("%s %d", name, v))
			}
		}
		slices.Sort(joins)
		fmt.Fprintf(&b, "%s: MP_JOIN counters: %s\n", ns.Name, strings.Join(joins, ", "))
	}
	return b.String()
}

func (t *Transfer) uplinkTx(tb TB) []uint64 {
	var out []uint64
	for _, u := range t.top.Uplinks {
		_, tx, err := t.top.Client.LinkStats(u.Dev)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, tx)
	}
	return out
}

// Share is uplink i's part of what the uplinks sent.
func (r TransferResult) Share(i int) float64 {
	var total uint64
	for _, v := range r.Sent {
		total += v
	}
	if total == 0 {
		return 0
	}
	return float64(r.Sent[i]) / float64(total)
}
