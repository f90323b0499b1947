package pm

import (
	"net/netip"

	"github.com/mptcpgd/mptcpgd/pkg/rejoin"
)

// Metrics counts what the engine does, for the daemon's metrics. Its
// methods are called on the engine's goroutine and must be quick.
type Metrics interface {
	// Resync: a full resync began, for reason ("reload", "rtnetlink
	// overflow", "safety-net timer", what Resync was given...).
	Resync(reason string)
	// Repair: something of ours that someone else removed was put back.
	Repair()
	// JoinRetry: the endpoint on ifname is re-added to retry failed joins.
	JoinRetry(ifname string)
}

// noMetrics counts nothing.
type noMetrics struct{}

func (noMetrics) Resync(string)    {}
func (noMetrics) Repair()          {}
func (noMetrics) JoinRetry(string) {}

// metricsOf is o.Metrics, or one that counts nothing.
func metricsOf(o Options) Metrics {
	if o.Metrics == nil {
		return noMetrics{}
	}
	return o.Metrics
}

func (e *Engine) metrics() Metrics { return metricsOf(e.opt) }

// countJoinRetries counts the re-adds of a supervision plan by interface.
func (e *Engine) countJoinRetries(eps []rejoin.Endpoint, readd []netip.Addr) {
	for _, a := range readd {
		for _, ep := range eps {
			if ep.Addr == a {
				e.metrics().JoinRetry(ep.IfName)
			}
		}
	}
}
