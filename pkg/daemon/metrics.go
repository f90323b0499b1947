package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/connview"
	"github.com/mptcpgd/mptcpgd/pkg/daemonmetrics"
	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/metrics"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
	"github.com/mptcpgd/mptcpgd/pkg/rtnl"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

// metricsHub owns the daemon's metrics: it counts what the engine, the
// connection view and the netlink writes report, and renders a fresh
// sample on demand (`mptcpgd metrics`, a scrape, the textfile).
type metricsHub struct {
	m    *daemonmetrics.Metrics
	cfg  config.Metrics
	log  *logging.Logger
	view *connview.View
	rt   *rtnl.Conn
	// engine is set once the engine exists; it answers the status.
	engine *pm.Engine
	// mu serialises samples: byte deltas must be taken in order.
	mu sync.Mutex
}

func newMetricsHub(cfg config.Metrics, view *connview.View, rt *rtnl.Conn, log *logging.Logger) *metricsHub {
	h := &metricsHub{m: daemonmetrics.New(interfaceName), cfg: cfg, log: log, view: view, rt: rt}
	view.ObserveJoins(h.m)
	return h
}

// interfaceName names an interface by index from the kernel, "" if none.
func interfaceName(ifindex int) string {
	if ifi, err := net.InterfaceByIndex(ifindex); err == nil {
		return ifi.Name
	}
	return ""
}

// gather samples now and renders every metric.
func (h *metricsHub) gather(ctx context.Context) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, err := h.engine.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("metrics: read the path manager's status: %w", err)
	}
	conns, err := sockdiag.ListMPTCP(nil)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	h.m.Take(daemonmetrics.Sample{Status: st, Conns: conns, GatewayDown: h.gatewayDown, EventLosses: h.view.Snapshot().Losses})
	return h.m.Text(), nil
}

// gatewayDown tells whether the gateway's neighbour entry says it does
// not answer; an entry that cannot be read says nothing.
func (h *metricsHub) gatewayDown(ifindex int, addr netip.Addr) bool {
	st, ok, err := h.rt.Neighbour(ifindex, addr)
	return err == nil && ok && st&(netstate.NeighFailed|netstate.NeighIncomplete) != 0
}

// tasks are the configured outputs: the textfile writer and the HTTP
// listener. The listener is opened here, so that a refused address stops
// the start.
func (h *metricsHub) tasks() ([]task, error) {
	var out []task
	if h.cfg.Textfile != "" {
		out = append(out, task{"metrics textfile", h.writeTextfile})
	}
	if h.cfg.Listen.IsValid() {
		ln, err := net.Listen("tcp", h.cfg.Listen.String())
		if err != nil {
			return nil, fmt.Errorf("metrics.listen %s: %w (under systemd the unit denies IP unless the drop-in metrics-http.conf is installed)", h.cfg.Listen, err)
		}
		out = append(out, task{"metrics listener", func(ctx context.Context) error {
			return metrics.ServeHTTP(ctx, ln, h.gather)
		}})
	}
	return out, nil
}

// writeTextfile brings the textfile up to date every TextfileInterval,
// rewriting it only when a metric changed. A failure is logged once per
// change of its cause, and retried at the next interval.
func (h *metricsHub) writeTextfile(ctx context.Context) error {
	var last []byte
	failing := ""
	tick := time.NewTicker(h.cfg.TextfileInterval)
	defer tick.Stop()
	for {
		text, err := h.gather(ctx)
		if err == nil && !bytes.Equal(text, last) {
			if err = metrics.WriteTextfile(h.cfg.Textfile, text); err == nil {
				last = text
			}
		}
		switch {
		case err != nil && ctx.Err() == nil && err.Error() != failing:
			failing = err.Error()
			h.log.Warn("metrics textfile not written", logging.Error(err))
		case err == nil && failing != "":
			failing = ""
			h.log.Info("metrics textfile written again", logging.String("path", h.cfg.Textfile))
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
	}
}
