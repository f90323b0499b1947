package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/control"
	"github.com/mptcpgd/mptcpgd/pkg/metrics"
	"github.com/mptcpgd/mptcpgd/pkg/show"
	"github.com/mptcpgd/mptcpgd/pkg/top"
)

// queryTimeout bounds one question to the daemon.
const queryTimeout = 10 * time.Second

// metricsText asks the daemon for its metrics in the Prometheus text format.
func metricsText(ctx context.Context, socket string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var text string
	if err := control.Query(ctx, socket, control.Metrics, &text); err != nil {
		return nil, err
	}
	return []byte(text), nil
}

// printMetrics prints the daemon's metrics.
func printMetrics(o options, stdout io.Writer) error {
	text, err := metricsText(context.Background(), o.socket)
	if err != nil {
		return err
	}
	_, err = stdout.Write(text)
	return err
}

// topCmd runs the live view until q, Ctrl-C or --count refreshes.
func topCmd(o options, stdout io.Writer, stdin *os.File) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return top.Run(ctx, top.Options{
		Out: stdout, In: stdin, Interval: time.Second, Count: o.count,
		Query: func(ctx context.Context) (top.Sample, error) {
			text, err := metricsText(ctx, o.socket)
			if err != nil {
				return top.Sample{}, err
			}
			fams, err := metrics.Parse(text)
			if err != nil {
				return top.Sample{}, fmt.Errorf("the daemon's metrics: %w", err)
			}
			qctx, cancel := context.WithTimeout(ctx, queryTimeout)
			defer cancel()
			var rep show.Report
			if err := control.Query(qctx, o.socket, control.Status, &rep); err != nil {
				return top.Sample{}, err
			}
			return top.Sample{At: time.Now(), Status: rep.Status, Metrics: fams}, nil
		},
	})
}
