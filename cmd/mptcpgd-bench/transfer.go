package main

import (
	"net"
	"net/netip"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

// transfer is one lab.Transfer of the bench, from the client's eth1
// address to the server, with helpers that watch its subflows and uplinks.
type transfer struct {
	*lab.Transfer
	top *lab.Topology
}

// startTransfer opens the connection and starts sending size bytes.
func startTransfer(s *lab.Scope, top *lab.Topology, size int64) *transfer {
	return &transfer{Transfer: lab.StartTransfer(s, top, top.ServerAddr(lab.V4), size), top: top}
}

// subflowFrom tells whether the connection has an established subflow
// from local address a right now, as socket diagnostics report it (a
// subflow on a dead link lingers until TCP gives up, so its state counts).
func (t *transfer) subflowFrom(a netip.Addr) bool {
	conns, err := sockdiag.ListMPTCP(&sockdiag.Config{NetNS: t.top.Client.FD()})
	if err != nil {
		return false
	}
	port := t.Conn.LocalAddr().(*net.TCPAddr).AddrPort().Port()
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
		case <-t.Received():
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

// wait waits for the transfer to end and checks the stream: a damaged one
// stops the measurement; the kernel's known misdelivery is logged.
func (t *transfer) wait(s *lab.Scope) lab.TransferResult {
	res := t.Wait(s)
	if res.WriteErr != nil {
		s.Fatalf("sending: %v", res.WriteErr)
	}
	if res.Report.Failed() {
		s.Fatalf("stream integrity: %v", res.Report)
	}
	if res.Report.Class == lab.StreamKernelMisdelivery {
		s.Logf("KNOWN KERNEL DEFECT (docs/architecture.md): %v", res.Report)
	}
	return res
}
