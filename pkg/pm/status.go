package pm

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/rejoin"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

// Owner says whose a kernel endpoint is.
type Owner string

// Owners.
const (
	// OwnerOurs: the ownership record says we created or adopted it.
	OwnerOurs Owner = "ours"
	// OwnerAdopt: not recorded, but exactly what we would create for a
	// managed address: the daemon adopts it as it is.
	OwnerAdopt Owner = "adopt"
	// OwnerKernel: IMPLICIT, made by the kernel for a peer's join.
	OwnerKernel Owner = "kernel"
	// OwnerForeign: someone else's; never deleted or changed.
	OwnerForeign Owner = "foreign"
)

// EndpointStatus is a kernel endpoint and whose it is.
type EndpointStatus struct {
	netlinkmptcp.Endpoint
	IfName string `json:"ifname"`
	Owner  Owner  `json:"owner"`
	// Takeable: a foreign endpoint on an address mptcpgd would manage;
	// `mptcpgd adopt` takes it over.
	Takeable bool `json:"takeable,omitempty"`
}

// Status is what `mptcpgd show` prints: what is managed and why, and what
// the kernel holds.
type Status struct {
	Source     string              `json:"source"`
	Interfaces []InterfaceStatus   `json:"interfaces"`
	Addresses  []AddressStatus     `json:"addresses"`
	Endpoints  []EndpointStatus    `json:"endpoints"`
	Limits     netlinkmptcp.Limits `json:"limits"`
	WantLimits netlinkmptcp.Limits `json:"want_limits"`
	// Rules and Routes are the ones that are ours.
	Rules    []netstate.Rule  `json:"rules"`
	Routes   []netstate.Route `json:"routes"`
	Warnings []Warning        `json:"warnings,omitempty"`
	// Pending counts generic-netlink operations (endpoint and limit
	// writes, endpoint table reads) queued or running; Retrying names
	// writes waiting to be retried after a failure.
	Pending  int      `json:"pending,omitempty"`
	Retrying []string `json:"retrying,omitempty"`
	// Disabled says why MPTCP is off in the namespace, "" while it is on.
	Disabled string `json:"disabled,omitempty"`
	// Missing are the client connections that lack a subflow from one of
	// our endpoints, and why (join supervision).
	Missing []rejoin.Missing `json:"missing,omitempty"`
	// HeldOff names repairs held off because someone keeps undoing them.
	HeldOff    []string  `json:"held_off,omitempty"`
	LastResync time.Time `json:"last_resync"`
}

// BuildStatus assembles a Status from a decision and the kernel's state.
func BuildStatus(source string, d Decision, kernel []netlinkmptcp.Endpoint, limits netlinkmptcp.Limits, net netstate.State, ours RoutingOwner) Status {
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
		owner := OwnerForeign
		switch {
		case d.Adopted[ep.ID]:
			owner = OwnerAdopt
		case d.Owned[ep.ID]:
			owner = OwnerOurs
		case ep.Flags&netlinkmptcp.FlagImplicit != 0:
			owner = OwnerKernel
		}
		s.Endpoints = append(s.Endpoints, EndpointStatus{Endpoint: ep, IfName: name, Owner: owner,
			Takeable: slices.ContainsFunc(d.Takeable, func(t netlinkmptcp.Endpoint) bool { return t.ID == ep.ID })})
	}
	for r := range net.Rules {
		if ours.OwnsRule(r) {
			s.Rules = append(s.Rules, r)
		}
	}
	sortRules(s.Rules)
	for _, r := range net.Routes {
		if ours.OwnsRoute(r) {
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
		s = BuildStatus(e.cfg.Source, e.decision, e.kernelList(), e.limits, e.net, e.owners)
		// The engine records what its decision adopts in the same pass.
		for i := range s.Endpoints {
			if s.Endpoints[i].Owner == OwnerAdopt {
				s.Endpoints[i].Owner = OwnerOurs
			}
		}
		s.Pending = e.pending.count()
		s.Retrying = e.retry.names()
		s.HeldOff = e.repairs.heldOff(e.clock.Now())
		s.Disabled = e.disabled
		s.Missing = e.missing
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
	st := BuildStatus(cfg.Source, d, eps, limits, net, ownersOf(cfg, own.Routing))
	if ownErr != nil {
		st.Warnings = append(st.Warnings, Warning{Kind: WarnNoRecord,
			Message: "ownership record not read, so only endpoints that match exactly what mptcpgd would create show as ours: " + ownErr.Error()})
	}
	return st, nil
}

// logOverCap says, once per change of what is left out, that the kernel's
// endpoint limit leaves candidates out: how many, from where, and the fix.
func (e *Engine) logOverCap(d Decision) {
	s := overCapSummary(d.OverCap)
	if s == e.overCap {
		return
	}
	e.overCap = s
	if s == "" {
		e.log.Info("every candidate address has an endpoint again")
		return
	}
	e.log.Warn("more candidate addresses than the kernel's endpoint limit: leaving some out; set priority in an [[interface]] entry to choose which",
		logging.Int("left_out", len(d.OverCap)), logging.String("from", s), logging.Int("limit", netlinkmptcp.MaxEndpoints), logging.Int("not_ours", len(d.Foreign)))
}

// overCapSummary names what the limit leaves out in a short line, however
// many addresses that is: per interface the address, or how many, for the
// first few interfaces.
func overCapSummary(left []Endpoint) string {
	const shown = 3
	var names []string
	count := map[string]int{}
	first := map[string]netip.Addr{}
	for _, ep := range left {
		if count[ep.IfName] == 0 {
			names = append(names, ep.IfName)
			first[ep.IfName] = ep.Addr
		}
		count[ep.IfName]++
	}
	var parts []string
	for i, n := range names {
		if i == shown {
			parts = append(parts, fmt.Sprintf("%d more interfaces", len(names)-shown))
			break
		}
		if count[n] == 1 {
			parts = append(parts, n+" "+first[n].String())
		} else {
			parts = append(parts, fmt.Sprintf("%s %d addresses", n, count[n]))
		}
	}
	return strings.Join(parts, ", ")
}

func (e *Engine) checkReady() {
	if e.isReady || e.pending.count() > 0 {
		return
	}
	e.isReady = true
	close(e.ready)
	e.log.Info("ready", logging.Int("endpoints", len(e.decision.Endpoints)), logging.Stringer("limits", e.limits))
}

func (e *Engine) updateSummary() {
	managed := 0
	for _, st := range e.decision.Interfaces {
		if st.Managed && st.Withdrawn == "" {
			managed++
		}
	}
	s := fmt.Sprintf("%d interfaces managed, %d endpoints, %d rules", managed, len(e.decision.Endpoints), len(e.decision.Routing.Rules))
	if e.disabled != "" {
		s = "MPTCP disabled (net.mptcp.enabled=0); " + s
	}
	if n := missingConns(e.missing); n > 0 {
		s += fmt.Sprintf(", %d connections missing a path", n)
	}
	if s != e.summary {
		e.summary = s
		if e.opt.OnSummary != nil {
			e.opt.OnSummary(s)
		}
	}
}

// Adopt takes over the foreign endpoints that hold addresses we would
// manage (after a lost state file, say): they are recorded as ours, and
// then converged to the configuration like any endpoint of ours. It
// returns what it took.
func (e *Engine) Adopt(ctx context.Context) ([]netlinkmptcp.Endpoint, error) {
	var took []netlinkmptcp.Endpoint
	err := e.call(ctx, func() {
		took = slices.Clone(e.decision.Takeable)
		for _, ep := range took {
			e.own.record(ep)
			e.log.Info("endpoint adopted on request", logging.Stringer(logging.FieldAddr, ep.Addr), logging.Uint8(logging.FieldEndpointID, ep.ID),
				logging.Stringer(logging.FieldFlags, ep.Flags))
		}
		e.reconcile()
	})
	return took, err
}

// AdoptOffline is Adopt without a running daemon: it records the takeable
// endpoints in the state file, for the daemon to converge when it starts.
func AdoptOffline(cfg *config.Config, k MPTCP, n Network, store Store) ([]netlinkmptcp.Endpoint, error) {
	own, err := store.Load()
	if err != nil {
		return nil, err
	}
	net, _, err := n.Dump()
	if err != nil {
		return nil, fmt.Errorf("read links, addresses, routes and rules: %w", err)
	}
	eps, err := k.Endpoints()
	if err != nil {
		return nil, fmt.Errorf("read MPTCP endpoints: %w", err)
	}
	d := Decide(Input{Config: cfg, Net: net, Kernel: eps, Records: own.Endpoints, Now: time.Now()})
	for _, ep := range d.Takeable {
		own.Endpoints = append(own.Endpoints, statefile.Endpoint{ID: ep.ID, Addr: ep.Addr, Port: ep.Port})
	}
	if len(d.Takeable) == 0 {
		return nil, nil
	}
	return d.Takeable, store.Save(own)
}

// missingConns counts the connections that lack a path.
func missingConns(ms []rejoin.Missing) int {
	tokens := map[uint32]bool{}
	for _, m := range ms {
		tokens[m.Token] = true
	}
	return len(tokens)
}
