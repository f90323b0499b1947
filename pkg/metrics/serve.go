package metrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"time"
)

// Gather renders the current metrics.
type Gather func(ctx context.Context) ([]byte, error)

// HTTP limits: a scraper sends one short GET.
const (
	httpTimeout   = 10 * time.Second
	maxHeaderSize = 8 << 10
	maxHTTPConns  = 8
)

// ServeHTTP answers `GET /metrics` on ln with what gather renders, until
// ctx is done; then it closes ln and returns nil. It is a minimal
// HTTP/1.x server, one request per connection: net/http would add
// megabytes to a daemon whose idle memory is budgeted, for a scrape
// endpoint that needs none of it.
func ServeHTTP(ctx context.Context, ln net.Listener, gather Gather) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	slots := make(chan struct{}, maxHTTPConns)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("metrics listener %s: %w", ln.Addr(), err)
			}
			// EMFILE and the like: wait a little rather than spin.
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		select {
		case slots <- struct{}{}:
			go func() {
				defer func() { <-slots }()
				serveOne(ctx, c, gather)
			}()
		default:
			c.Close()
		}
	}
}

func serveOne(ctx context.Context, c net.Conn, gather Gather) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(httpTimeout))
	r := textproto.NewReader(bufio.NewReaderSize(&limitedConn{c, maxHeaderSize}, 1024))
	line, err := r.ReadLine()
	if err != nil {
		return
	}
	method, rest, _ := strings.Cut(line, " ")
	target, proto, _ := strings.Cut(rest, " ")
	if !strings.HasPrefix(proto, "HTTP/1.") {
		respond(c, "400 Bad Request", "text/plain; charset=utf-8", []byte("bad request\n"), false)
		return
	}
	if _, err := r.ReadMIMEHeader(); err != nil {
		respond(c, "400 Bad Request", "text/plain; charset=utf-8", []byte("bad request\n"), false)
		return
	}
	path, _, _ := strings.Cut(target, "?")
	switch {
	case path != "/metrics":
		respond(c, "404 Not Found", "text/plain; charset=utf-8", []byte("mptcpgd serves /metrics only\n"), false)
	case method != "GET" && method != "HEAD":
		respond(c, "405 Method Not Allowed", "text/plain; charset=utf-8", []byte("GET /metrics\n"), false)
	default:
		body, err := gather(ctx)
		if err != nil {
			respond(c, "503 Service Unavailable", "text/plain; charset=utf-8", []byte(err.Error()+"\n"), false)
			return
		}
		respond(c, "200 OK", ContentType, body, method == "HEAD")
	}
}

func respond(c net.Conn, status, contentType string, body []byte, head bool) {
	w := bufio.NewWriter(c)
	fmt.Fprintf(w, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", status, contentType, len(body))
	if !head {
		w.Write(body)
	}
	_ = w.Flush()
}

// limitedConn reads at most n bytes: the request line and headers.
type limitedConn struct {
	c net.Conn
	n int
}

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("request header too large")
	}
	p = p[:min(len(p), l.n)]
	n, err := l.c.Read(p)
	l.n -= n
	return n, err
}
