// Package daemonmetrics defines mptcpgd's metric families and fills them:
// counters from what happens (joins from the connection view, resyncs,
// repairs and join retries from the path manager, netlink writes), gauges
// and byte counters from samples of the engine's status and of the
// kernel's socket diagnostics. docs/metrics.md describes every family.
//
// Labels stay few, so that a fleet can aggregate them: the interface name,
// an errno name, a resync reason, an operation kind; never a connection.
//
// Bytes over MPTCP subflows are sampled: each sample adds, per interface,
// what every live subflow carried since the previous sample. A subflow's
// bytes after its last sample are lost when it closes before the next one;
// the bound is what one subflow carries in one sampling interval (a
// scrape, `mptcpgd metrics`, or textfile_interval, whichever comes first).
// Watching every TCP socket's destruction on the host would close the gap
// at a cost paid by every connection, MPTCP or not.
package daemonmetrics

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/metrics"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

// Prefix starts every metric name.
const Prefix = "mptcpgd_"

// Metric names `mptcpgd top` reads.
const (
	NameEndpoints     = Prefix + "interface_endpoints"
	NameCarrier       = Prefix + "interface_carrier"
	NameGateway       = Prefix + "interface_gateway_reachable"
	NameSubflows      = Prefix + "interface_subflows"
	NameJoins         = Prefix + "interface_joins_total"
	NameJoinFailures  = Prefix + "interface_join_failures_total"
	NameJoinRetries   = Prefix + "interface_join_retries_total"
	NameSentBytes     = Prefix + "interface_subflow_sent_bytes_total"
	NameReceivedBytes = Prefix + "interface_subflow_received_bytes_total"
	NameConnections   = Prefix + "connections"
	NameMissing       = Prefix + "connections_missing_path"
)

// UnknownInterface labels subflows whose interface cannot be told.
const UnknownInterface = "unknown"

// Write kinds, the label of the netlink write latency.
const (
	WriteEndpointAdd    = "endpoint_add"
	WriteEndpointDelete = "endpoint_delete"
	WriteMPTCPOther     = "mptcp_other" // flags, limits, closing subflows
	WriteRoute          = "rtnetlink"   // routes and rules
)

// rtnetlinkOverflow is the engine's resync reason for lost rtnetlink
// notifications (pm's handleNet).
const rtnetlinkOverflow = "rtnetlink overflow"

// Metrics are the families and the state samples need. It is safe for
// concurrent use.
type Metrics struct {
	reg *metrics.Registry

	endpoints, carrier, gateway, subflows            *metrics.Gauge
	joins, joinFailures, joinRetries, sent, received *metrics.Counter
	connections, missing                             *metrics.Gauge
	repairs, resyncs, losses                         *metrics.Counter
	writes                                           *metrics.Histogram

	mu sync.Mutex
	// last are the byte counters of each live subflow at its last sample.
	last map[subflowKey]byteCounts
	// names tell interfaces by index and by address, as last sampled.
	byIndex map[int]string
	byAddr  map[netip.Addr]string
	// lookup names an interface the last sample did not know (nil: none).
	lookup func(ifindex int) string
	// viewLosses is the connection view's loss count already counted.
	viewLosses uint64
}

type subflowKey struct {
	token         uint32
	local, remote netip.AddrPort
}

type byteCounts struct{ sent, received uint64 }

// New registers the families. lookup names an interface by index when the
// last sample did not know it (a join right after an interface appeared);
// nil names none.
func New(lookup func(ifindex int) string) *Metrics {
	r := metrics.NewRegistry()
	return &Metrics{
		reg:    r,
		lookup: lookup,
		last:   map[subflowKey]byteCounts{},
		endpoints: r.Gauge(NameEndpoints,
			"MPTCP endpoints mptcpgd holds on the interface (managed interfaces only).", "interface"),
		carrier: r.Gauge(NameCarrier,
			"1 while the managed interface has carrier.", "interface"),
		gateway: r.Gauge(NameGateway,
			"0 while the gateway's neighbour entry is FAILED or INCOMPLETE (it does not answer), 1 otherwise; per managed interface and family that has a gateway.", "interface", "family"),
		subflows: r.Gauge(NameSubflows,
			"Established MPTCP subflows over the interface, both directions of connection.", "interface"),
		joins: r.Counter(NameJoins,
			"Joins (MP_JOIN subflows) this host opened over the interface that were established or failed.", "interface"),
		joinFailures: r.Counter(NameJoinFailures,
			"Joins this host opened over the interface that the kernel closed with an error before they were established, by errno.", "interface", "errno"),
		joinRetries: r.Counter(NameJoinRetries,
			"Times the interface's endpoint was re-added to retry failed joins.", "interface"),
		sent: r.Counter(NameSentBytes,
			"Bytes sent and acknowledged over MPTCP subflows on the interface, sampled from live subflows (bytes after a subflow's last sample are lost when it closes).", "interface"),
		received: r.Counter(NameReceivedBytes,
			"Bytes received over MPTCP subflows on the interface, sampled from live subflows (bytes after a subflow's last sample are lost when it closes).", "interface"),
		connections: r.Gauge(NameConnections,
			"Open MPTCP connections (not fallen back to TCP), by side: client (this host opened it) or server.", "side"),
		missing: r.Gauge(NameMissing,
			"Client connections that lack a subflow from one of mptcpgd's endpoints."),
		repairs: r.Counter(Prefix+"repairs_total",
			"Endpoints, rules and routes of mptcpgd's that someone else removed and mptcpgd put back."),
		resyncs: r.Counter(Prefix+"resyncs_total",
			"Full resyncs (dump everything, compare, fix), by reason.", "reason"),
		losses: r.Counter(Prefix+"event_losses_total",
			"Times kernel notifications were lost (socket overflow or read error), by source: mptcp (path manager events) or rtnetlink.", "source"),
		writes: r.Histogram(Prefix+"netlink_write_duration_seconds",
			"Duration of mptcpgd's netlink writes, by kind: endpoint_add, endpoint_delete (waits for an RCU grace period), mptcp_other, rtnetlink.",
			metrics.ExponentialBuckets(0.0001, 2, 13), "kind"),
	}
}

// Text is the exposition of every family.
func (m *Metrics) Text() []byte { return m.reg.Text() }

// Sample is what one sample reads.
type Sample struct {
	Status pm.Status
	// Conns are the kernel's MPTCP connections with their subflows.
	Conns []sockdiag.Connection
	// GatewayDown tells whether a gateway's neighbour entry is FAILED or
	// INCOMPLETE; nil knows of none.
	GatewayDown func(ifindex int, addr netip.Addr) bool
	// EventLosses is the connection view's count of lost MPTCP events.
	EventLosses uint64
}

// Take updates the gauges and the byte counters from s.
func (m *Metrics) Take(s Sample) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byIndex = make(map[int]string, len(s.Status.Interfaces))
	for _, st := range s.Status.Interfaces {
		m.byIndex[st.Link.Index] = st.Link.Name
	}
	m.byAddr = make(map[netip.Addr]string, len(s.Status.Addresses))
	for _, a := range s.Status.Addresses {
		m.byAddr[a.Addr.Addr] = a.IfName
	}

	m.endpoints.Reset()
	m.carrier.Reset()
	m.gateway.Reset()
	m.subflows.Reset()
	held := map[string]int{}
	for _, ep := range s.Status.Endpoints {
		if ep.Owner == pm.OwnerOurs {
			held[ep.IfName]++
		}
	}
	for _, st := range s.Status.Interfaces {
		if !st.Managed {
			continue
		}
		name := st.Link.Name
		m.endpoints.Set(float64(held[name]), name)
		m.carrier.Set(boolValue(st.Carrier), name)
		m.subflows.Set(0, name)
		for _, gw := range st.Gateways {
			if !gw.Addr.IsValid() || gw.OnLink {
				continue
			}
			down := s.GatewayDown != nil && s.GatewayDown(gw.IfIndex, gw.Addr)
			m.gateway.Set(boolValue(!down), name, family(gw.IPv6))
		}
	}

	sides := map[string]int{"client": 0, "server": 0}
	perIface := map[string]int{}
	live := make(map[subflowKey]byteCounts, len(m.last))
	for _, c := range s.Conns {
		if c.Fallback {
			continue
		}
		sides[side(c.ServerSide)]++
		for _, sf := range c.Subflows {
			name := m.name(sf.IfIndex, sf.Local.Addr().Unmap())
			if sf.State == sockdiag.StateEstablished {
				perIface[name]++
			}
			k := subflowKey{c.Token, sf.Local, sf.Remote}
			now := byteCounts{sf.BytesSent, sf.BytesReceived}
			prev := m.last[k]
			live[k] = now
			if d := delta(prev.sent, now.sent); d > 0 {
				m.sent.Add(float64(d), name)
			}
			if d := delta(prev.received, now.received); d > 0 {
				m.received.Add(float64(d), name)
			}
		}
	}
	m.last = live
	for name, n := range perIface {
		m.subflows.Set(float64(n), name)
	}
	for sd, n := range sides {
		m.connections.Set(float64(n), sd)
	}
	tokens := map[uint32]bool{}
	for _, ms := range s.Status.Missing {
		tokens[ms.Token] = true
	}
	m.missing.Set(float64(len(tokens)))
	if s.EventLosses > m.viewLosses {
		m.losses.Add(float64(s.EventLosses-m.viewLosses), "mptcp")
		m.viewLosses = s.EventLosses
	}
}

// delta is what a counter gained since prev; a counter below prev belongs
// to a new socket with the same addresses, and counts from zero.
func delta(prev, now uint64) uint64 {
	if now < prev {
		return now
	}
	return now - prev
}

// name is the interface a subflow or join runs over: the device it is
// bound to, else the one that holds its local address; m.mu is held.
func (m *Metrics) name(ifindex int, local netip.Addr) string {
	if n, ok := m.byIndex[ifindex]; ok && ifindex != 0 {
		return n
	}
	if n, ok := m.byAddr[local]; ok {
		return n
	}
	if ifindex != 0 && m.lookup != nil {
		if n := m.lookup(ifindex); n != "" {
			return n
		}
	}
	return UnknownInterface
}

// JoinEstablished counts a join (connview.JoinObserver).
func (m *Metrics) JoinEstablished(local netip.Addr, ifindex int) {
	m.mu.Lock()
	name := m.name(ifindex, local)
	m.mu.Unlock()
	m.joins.Inc(name)
}

// JoinFailed counts a failed join (connview.JoinObserver).
func (m *Metrics) JoinFailed(local netip.Addr, ifindex int, errno syscall.Errno) {
	m.mu.Lock()
	name := m.name(ifindex, local)
	m.mu.Unlock()
	m.joins.Inc(name)
	m.joinFailures.Inc(name, ErrnoLabel(errno))
}

// ErrnoLabel is an errno's symbolic name ("EHOSTUNREACH"), or "errno_N"
// for one without.
func ErrnoLabel(errno syscall.Errno) string {
	if n := unix.ErrnoName(errno); n != "" {
		return n
	}
	return fmt.Sprintf("errno_%d", int(errno))
}

// Resync counts a full resync (pm.Metrics).
func (m *Metrics) Resync(reason string) {
	m.resyncs.Inc(reasonLabel(reason))
	if reason == rtnetlinkOverflow {
		m.losses.Inc("rtnetlink")
	}
}

// reasonLabel turns a reason into a label value: "safety-net timer" is
// "safety_net_timer".
func reasonLabel(reason string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '_'
	}, reason)
}

// Repair counts a repair (pm.Metrics).
func (m *Metrics) Repair() { m.repairs.Inc() }

// JoinRetry counts an endpoint re-added to retry joins (pm.Metrics).
func (m *Metrics) JoinRetry(ifname string) { m.joinRetries.Inc(ifname) }

// Write observes a netlink write of kind that took d.
func (m *Metrics) Write(kind string, d time.Duration) { m.writes.Observe(d.Seconds(), kind) }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func family(ipv6 bool) string {
	if ipv6 {
		return "ipv6"
	}
	return "ipv4"
}

func side(server bool) string {
	if server {
		return "server"
	}
	return "client"
}
