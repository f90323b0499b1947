package lab

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/metrics"
)

// ScrapeMetrics GETs /metrics from a daemon's listener at 127.0.0.1:port
// inside ns, as Prometheus would, and returns the body. Anything but a 200
// with the exposition's content type is an error.
func (ns *NS) ScrapeMetrics(port int) ([]byte, error) {
	var body []byte
	err := ns.Do(func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			return err
		}
		r := textproto.NewReader(bufio.NewReader(c))
		status, err := r.ReadLine()
		if err != nil {
			return err
		}
		h, err := r.ReadMIMEHeader()
		if err != nil {
			return err
		}
		if status != "HTTP/1.1 200 OK" || h.Get("Content-Type") != metrics.ContentType {
			return fmt.Errorf("scrape answered %q, %v", status, h)
		}
		body, err = io.ReadAll(r.R)
		return err
	})
	return body, err
}
