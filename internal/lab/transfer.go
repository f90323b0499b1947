package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
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
	t := &Transfer{top: top, size: size, done: make(chan TransferResult, 1), wrote: make(chan error, 1), received: make(chan struct{})}
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
	writeErr := <-t.wrote
	res := <-t.done
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
