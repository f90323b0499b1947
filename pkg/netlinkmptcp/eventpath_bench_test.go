package netlinkmptcp_test

import (
	"context"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/connview"
	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

// BenchmarkEventPath is the daemon's event path without a kernel: datagrams
// laid out as the kernel's events are read by Events.Run and applied to the
// connection view by connview.Follow, on one P as in the daemon. One
// operation is one client connection: ESTABLISHED, a join's
// SUB_ESTABLISHED and CLOSED, plus the CLOSED of a connection this host
// accepted (the events the kernel's filter lets through on a busy host).
// The time includes writing the datagrams into the socket.
func BenchmarkEventPath(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ev, send := netlinkmptcp.SocketpairEvents(b)
	const conns = 64
	local, remote := netip.MustParseAddrPort("192.0.2.2:40000"), netip.MustParseAddrPort("192.0.2.1:8080")
	join := netip.MustParseAddrPort("198.51.100.2:40001")
	var dgrams [][]byte
	for i := range uint32(conns) {
		tok := 0x1000 + i
		dgrams = append(dgrams,
			netlinkmptcp.EncodeEvent(b, netlinkmptcp.Event{Type: netlinkmptcp.EventEstablished, Token: tok, Local: local, Remote: remote}),
			netlinkmptcp.EncodeEvent(b, netlinkmptcp.Event{Type: netlinkmptcp.EventSubEstablished, Token: tok, Local: join, Remote: remote, LocalID: 1}),
			netlinkmptcp.EncodeEvent(b, netlinkmptcp.Event{Type: netlinkmptcp.EventClosed, Token: tok}),
			netlinkmptcp.EncodeEvent(b, netlinkmptcp.Event{Type: netlinkmptcp.EventClosed, Token: 0x9000 + i}))
	}
	perConn := len(dgrams) / conns

	src := &countingSource{ev: ev, reached: make(chan struct{}, 1)}
	v := connview.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		connview.Follow(ctx, src, func() ([]sockdiag.Connection, error) { return nil, nil }, v, logging.Nop())
	}()
	defer func() { cancel(); <-done }()

	var sent int64
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += conns {
		n := min(conns, b.N-i)
		for _, d := range dgrams[:n*perConn] {
			send(d)
		}
		sent += int64(n * perConn)
		// Wait blocked, not spinning: on one P a spinning goroutine
		// would keep the reader from the network poller.
		src.want.Store(sent)
		for src.n.Load() < sent {
			<-src.reached
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(sent), "ns/event")
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "events/s")
	if s := v.Snapshot(); len(s.Connections) != 0 || s.Losses != 0 {
		b.Errorf("after the run: %d connections in the view, %d losses; want none", len(s.Connections), s.Losses)
	}
}

// countingSource counts the events its handler was given and says when
// the count reaches want.
type countingSource struct {
	ev      *netlinkmptcp.Events
	n, want atomic.Int64
	reached chan struct{}
}

func (s *countingSource) Run(ctx context.Context, h netlinkmptcp.EventHandler) error {
	return s.ev.Run(ctx, countingHandler{h, s})
}

type countingHandler struct {
	netlinkmptcp.EventHandler
	s *countingSource
}

func (c countingHandler) Events(evs []netlinkmptcp.Event) {
	c.EventHandler.Events(evs)
	if n := c.s.n.Add(int64(len(evs))); n == c.s.want.Load() {
		select {
		case c.s.reached <- struct{}{}:
		default:
		}
	}
}
