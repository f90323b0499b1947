package daemonmetrics

import (
	"net/netip"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
)

// TimedMPTCP is the engine's MPTCP port with the writes timed.
type TimedMPTCP struct {
	pm.MPTCP
	M *Metrics
}

func (t TimedMPTCP) time(kind string, start time.Time) { t.M.Write(kind, time.Since(start)) }

// AddEndpoint is timed as WriteEndpointAdd.
func (t TimedMPTCP) AddEndpoint(ep netlinkmptcp.Endpoint) (netlinkmptcp.Endpoint, error) {
	defer t.time(WriteEndpointAdd, time.Now())
	return t.MPTCP.AddEndpoint(ep)
}

// DeleteEndpoint is timed as WriteEndpointDelete.
func (t TimedMPTCP) DeleteEndpoint(id uint8) error {
	defer t.time(WriteEndpointDelete, time.Now())
	return t.MPTCP.DeleteEndpoint(id)
}

// SetEndpointFlags is timed as WriteMPTCPOther.
func (t TimedMPTCP) SetEndpointFlags(id uint8, flags netlinkmptcp.Flags) error {
	defer t.time(WriteMPTCPOther, time.Now())
	return t.MPTCP.SetEndpointFlags(id, flags)
}

// SetLimits is timed as WriteMPTCPOther.
func (t TimedMPTCP) SetLimits(l netlinkmptcp.LimitsUpdate) error {
	defer t.time(WriteMPTCPOther, time.Now())
	return t.MPTCP.SetLimits(l)
}

// CloseInitialSubflows is timed as WriteMPTCPOther.
func (t TimedMPTCP) CloseInitialSubflows(addr netip.Addr) error {
	defer t.time(WriteMPTCPOther, time.Now())
	return t.MPTCP.CloseInitialSubflows(addr)
}

// TimedRouting is the engine's Routing port with every write timed as
// WriteRoute.
type TimedRouting struct {
	pm.Routing
	M *Metrics
}

func (t TimedRouting) time(start time.Time) { t.M.Write(WriteRoute, time.Since(start)) }

// AddRule is timed.
func (t TimedRouting) AddRule(r netstate.Rule) error {
	defer t.time(time.Now())
	return t.Routing.AddRule(r)
}

// DeleteRule is timed.
func (t TimedRouting) DeleteRule(r netstate.Rule) error {
	defer t.time(time.Now())
	return t.Routing.DeleteRule(r)
}

// AddRoute is timed.
func (t TimedRouting) AddRoute(r netstate.Route) error {
	defer t.time(time.Now())
	return t.Routing.AddRoute(r)
}

// ReplaceRoute is timed.
func (t TimedRouting) ReplaceRoute(r netstate.Route) error {
	defer t.time(time.Now())
	return t.Routing.ReplaceRoute(r)
}

// DeleteRoute is timed.
func (t TimedRouting) DeleteRoute(r netstate.Route) error {
	defer t.time(time.Now())
	return t.Routing.DeleteRoute(r)
}
