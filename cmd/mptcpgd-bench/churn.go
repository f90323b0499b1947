package main

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// churnLab is a client and a server joined by one veth: client eth1
// 192.0.2.2/24, server eth1 192.0.2.1/24, each the other's default
// gateway, so that a daemon on either side has its gateway.
type churnLab struct {
	client, server *lab.NS
}

const churnServer = "192.0.2.1"

func newChurnLab(s *lab.Scope) churnLab {
	l := churnLab{client: lab.New(s, "client"), server: lab.New(s, "server")}
	lab.Veth(l.client, "eth1", l.server, "eth1")
	l.client.IP("addr", "add", "192.0.2.2/24", "dev", "eth1")
	l.server.IP("addr", "add", churnServer+"/24", "dev", "eth1")
	l.client.IP("route", "add", "default", "via", churnServer, "dev", "eth1", "proto", "static")
	l.server.IP("route", "add", "default", "via", "192.0.2.2", "dev", "eth1", "proto", "static")
	// Room for tens of thousands of connections in a few seconds.
	l.client.Sysctl("net.ipv4.ip_local_port_range", "10000 65000")
	return l
}

type churnResult struct {
	n, failed int
	took      time.Duration
	// notMPTCP counts connections that fell back to TCP.
	notMPTCP int
	firstErr error
}

func (r churnResult) rate() float64 { return float64(r.n) / r.took.Seconds() }

// churn opens n short MPTCP connections from the client to the server on
// workers goroutines, each with its thread in the client namespace: the
// client connects, the server accepts and closes at once, the client reads
// the end of the stream and closes.
func churn(s *lab.Scope, l churnLab, n, workers int) churnResult {
	ln, err := l.server.ListenMPTCP("tcp4", churnServer+":0")
	if err != nil {
		s.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	var accepting sync.WaitGroup
	for range workers {
		accepting.Add(1)
		go func() {
			defer accepting.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	var next, failed, notMPTCP atomic.Int64
	var errOnce sync.Once
	var firstErr error
	var dialing sync.WaitGroup
	start := time.Now()
	for range workers {
		dialing.Add(1)
		go func() {
			defer dialing.Done()
			_ = l.client.Do(func() error {
				var d net.Dialer
				d.SetMultipathTCP(true)
				d.Timeout = 5 * time.Second
				buf := make([]byte, 64)
				for next.Add(1) <= int64(n) {
					if err := dialOnce(s.Context(), &d, addr, buf, &notMPTCP); err != nil {
						failed.Add(1)
						errOnce.Do(func() { firstErr = err })
					}
				}
				return nil
			})
		}()
	}
	dialing.Wait()
	took := time.Since(start)
	ln.Close()
	accepting.Wait()
	return churnResult{n: n, failed: int(failed.Load()), took: took, notMPTCP: int(notMPTCP.Load()), firstErr: firstErr}
}

// dialOnce makes one connection and waits for the server's close.
func dialOnce(ctx context.Context, d *net.Dialer, addr string, buf []byte, notMPTCP *atomic.Int64) error {
	c, err := d.DialContext(ctx, "tcp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if ok, _ := c.(*net.TCPConn).MultipathTCP(); !ok {
		notMPTCP.Add(1)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := c.Read(buf); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
