package main

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

// transfer is one MPTCP connection from the client's eth1 address to the
// server, sending the lab's self-describing test stream, with the receiver
// checking every byte and timing the gaps between its reads.
type transfer struct {
	top   *lab.Topology
	conn  *net.TCPConn
	size  int64
	start time.Time
	done  chan transferResult
	wrote chan error
	txAt0 []uint64
	meter *lab.StallMeter
	// received is closed when the receiver has read the whole stream.
	received chan struct{}
}

type transferResult struct {
	report lab.StreamReport
	took   time.Duration
	// stall is the longest gap between two reads that returned data.
	stall time.Duration
	// goodput is Mbit/s of application data.
	goodput float64
	// sent is what each client uplink transmitted during the transfer.
	sent []uint64
}

// startTransfer opens the connection and starts sending size bytes.
func startTransfer(s *lab.Scope, top *lab.Topology, size int64) *transfer {
	t := &transfer{top: top, size: size, done: make(chan transferResult, 1), wrote: make(chan error, 1), received: make(chan struct{})}
	for _, u := range top.Uplinks {
		_, tx, err := top.Client.LinkStats(u.Dev)
		if err != nil {
			s.Fatal(err)
		}
		t.txAt0 = append(t.txAt0, tx)
	}
	ln, err := top.Server.ListenMPTCP("tcp4", ":0")
	if err != nil {
		s.Fatal(err)
	}
	s.Cleanup(func() { ln.Close() })
	t.meter = &lab.StallMeter{}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			t.done <- transferResult{report: lab.StreamReport{Class: lab.StreamReset, Err: err}}
			return
		}
		defer conn.Close()
		t.meter.R = conn
		rep := lab.VerifyStream(t.meter, size)
		took := time.Since(t.start)
		close(t.received)
		t.done <- transferResult{report: rep, took: took, stall: t.meter.Longest(), goodput: float64(size*8) / took.Seconds() / 1e6}
	}()
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	ctx, cancel := context.WithTimeout(s.Context(), 2*time.Minute)
	s.Cleanup(cancel)
	t.start = time.Now()
	conn, err := top.Client.DialMPTCP(ctx, "tcp4", netip.AddrPortFrom(top.ServerAddr(lab.V4), port).String(), top.Uplinks[0].Addr4)
	if err != nil {
		s.Fatal(err)
	}
	s.Cleanup(func() { conn.Close() })
	if ok, _ := conn.MultipathTCP(); !ok {
		s.Fatal("the transfer's connection fell back to TCP")
	}
	t.conn = conn
	go func() {
		err := lab.WriteStream(conn, size)
		conn.CloseWrite()
		t.wrote <- err
	}()
	return t
}

// subflowFrom tells whether the connection has an established subflow
// from local address a right now, as socket diagnostics report it (a
// subflow on a dead link lingers until TCP gives up, so its state counts).
func (t *transfer) subflowFrom(a netip.Addr) bool {
	conns, err := withNS(t.top.Client, func(fd int) ([]sockdiag.Connection, error) {
		return sockdiag.ListMPTCP(&sockdiag.Config{NetNS: fd})
	})
	if err != nil {
		return false
	}
	port := t.conn.LocalAddr().(*net.TCPAddr).AddrPort().Port()
	for _, c := range conns {
		if c.Local.Port() != port {
			continue
		}
		for _, sf := range c.Subflows {
			if sf.State == sockdiag.StateEstablished && sf.Local.Addr() == a {
				return true
			}
		}
	}
	return false
}

// waitSubflow waits up to timeout for an established subflow from a and
// returns how long that took, or false.
func (t *transfer) waitSubflow(a netip.Addr, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < timeout {
		if t.subflowFrom(a) {
			return time.Since(start), true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, false
}

// carries waits up to timeout, from since, for uplink i to transmit more
// than a trickle (64 KiB within 20 ms: data, not ACKs or ARP), and returns
// how long after since the first such 20 ms began. It gives up when the
// transfer has ended.
func (t *transfer) carries(i int, since time.Time, timeout time.Duration) (time.Duration, bool) {
	const window, enough, every = 20 * time.Millisecond, 64 << 10, 5 * time.Millisecond
	type point struct {
		at time.Time
		tx uint64
	}
	var points []point
	for time.Since(since) < timeout {
		select {
		case <-t.received:
			return 0, false
		default:
		}
		_, tx, err := t.top.Client.LinkStats(t.top.Uplinks[i].Dev)
		if err != nil {
			return 0, false
		}
		now := point{time.Now(), tx}
		points = append(points, now)
		for _, p := range points {
			if now.at.Sub(p.at) <= window && now.tx-p.tx >= enough {
				return max(0, p.at.Sub(since)), true
			}
		}
		time.Sleep(every)
	}
	return 0, false
}

// wait waits for the transfer to end and checks the stream.
func (t *transfer) wait(s *lab.Scope) transferResult {
	if err := <-t.wrote; err != nil {
		s.Fatalf("sending: %v", err)
	}
	res := <-t.done
	if res.report.Failed() {
		s.Fatalf("stream integrity: %v", res.report)
	}
	if res.report.Class == lab.StreamKernelMisdelivery {
		s.Logf("KNOWN KERNEL DEFECT (design.md): %v", res.report)
	}
	for i, u := range t.top.Uplinks {
		_, tx, err := t.top.Client.LinkStats(u.Dev)
		if err != nil {
			s.Fatal(err)
		}
		res.sent = append(res.sent, tx-t.txAt0[i])
	}
	return res
}

// share is uplink i's part of what the uplinks sent.
func share(sent []uint64, i int) float64 {
	var total uint64
	for _, v := range sent {
		total += v
	}
	if total == 0 {
		return 0
	}
	return float64(sent[i]) / float64(total)
}
