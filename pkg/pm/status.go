package pm

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
)

// EndpointStatus is a kernel endpoint and whose it is.
type EndpointStatus struct {
	netlinkmptcp.Endpoint
	IfName string
	Ours   bool
}

// Status is what `mptcpgd show` prints: what is managed and why, and what
// the kernel holds.
type Status struct {
	Source     string
	Interfaces []InterfaceStatus
	Addresses  []AddressStatus
	Endpoints  []EndpointStatus
	Limits     netlinkmptcp.Limits
	WantLimits netlinkmptcp.Limits
	// Rules and Routes are the ones carrying our protocol.
	Rules    []netstate.Rule
	Routes   []netstate.Route
	Warnings []string
	// Pending counts generic-netlink operations (endpoint and limit
	// writes, endpoint table reads) queued or running; Retrying names
	// writes waiting to be retried after a failure.
	Pending    int
	Retrying   []string
	LastResync time.Time
}

// BuildStatus assembles a Status from a decision and the kernel's state.
func BuildStatus(source string, d Decision, kernel []netlinkmptcp.Endpoint, limits netlinkmptcp.Limits, net netstate.State, protocol uint8) Status {
	s := Status{
		Source:     source,
		Interfaces: d.Interfaces,
		Addresses:  d.Addresses,
		Limits:     limits,
		WantLimits: d.Limits,
		Warnings:   d.Warnings,
	}
	for _, ep := range kernel {
		name := ""
		if l, ok := endpointLink(net, ep); ok {
			name = l.Name
		}
		s.Endpoints = append(s.Endpoints, EndpointStatus{Endpoint: ep, IfName: name, Ours: d.Owned[ep.ID]})
	}
	for r := range net.Rules {
		if r.Protocol == protocol {
			s.Rules = append(s.Rules, r)
		}
	}
	sortRules(s.Rules)
	for _, r := range net.Routes {
		if r.Protocol == protocol {
			s.Routes = append(s.Routes, r)
		}
	}
	sortRoutes(s.Routes)
	return s
}

// Status returns the engine's current view.
func (e *Engine) Status(ctx context.Context) (Status, error) {
	var s Status
	err := e.call(ctx, func() {
		s = BuildStatus(e.cfg.Source, e.decision, e.kernelList(), e.limits, e.net, e.cfg.Routing.Protocol)
		s.Pending = e.pending()
		s.Retrying = slices.Sorted(maps.Keys(e.retries))
		s.LastResync = e.lastResync
	})
	return s, err
}

// Inspect builds a Status from fresh dumps without a running engine, for
// `mptcpgd show` when no daemon answers. It only reads.
func Inspect(cfg *config.Config, k MPTCP, n Network, store Store, arp func(string) srcroute.ARP) (Status, error) {
	// Without the ownership record (not root, say) the rest still tells a
	// lot; only recorded-but-unmanaged endpoints show as not ours.
	own, ownErr := store.Load()
	net, _, err := n.Dump()
	if err != nil {
		return Status{}, fmt.Errorf("read links, addresses, routes and rules: %w", err)
	}
	eps, err := k.Endpoints()
	if err != nil {
		return Status{}, fmt.Errorf("read MPTCP endpoints: %w", err)
	}
	limits, err := k.Limits()
	if err != nil {
		return Status{}, fmt.Errorf("read MPTCP limits: %w", err)
	}
	d := Decide(Input{Config: cfg, Net: net, Kernel: eps, Records: own.Endpoints, Now: time.Now(), ARP: arp})
	st := BuildStatus(cfg.Source, d, eps, limits, net, cfg.Routing.Protocol)
	if ownErr != nil {
		st.Warnings = append(st.Warnings, "ownership record not read, so endpoints recorded as ours on unmanaged interfaces show as not ours: "+ownErr.Error())
	}
	return st, nil
}
