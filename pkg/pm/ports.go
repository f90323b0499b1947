package pm

import (
	"context"
	"net/netip"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

// The ports: what the engine needs of the kernel and the disk, declared
// here where they are used. The daemon plugs in netlinkmptcp, rtnl and
// statefile; tests plug in fakes.

// MPTCP is the kernel's endpoint table and limits (netlinkmptcp.Client).
type MPTCP interface {
	Endpoints() ([]netlinkmptcp.Endpoint, error)
	AddEndpoint(netlinkmptcp.Endpoint) (netlinkmptcp.Endpoint, error)
	DeleteEndpoint(id uint8) error
	SetEndpointFlags(id uint8, flags netlinkmptcp.Flags) error
	Limits() (netlinkmptcp.Limits, error)
	SetLimits(netlinkmptcp.LimitsUpdate) error
	CloseInitialSubflows(addr netip.Addr) error
}

// Routing writes our rules and routes (rtnl.Conn).
type Routing interface {
	AddRule(netstate.Rule) error
	DeleteRule(netstate.Rule) error
	AddRoute(netstate.Route) error
	ReplaceRoute(netstate.Route) error
	DeleteRoute(netstate.Route) error
}

// Network dumps the observed network (rtnl.Conn).
type Network interface {
	Dump() (netstate.State, int, error)
}

// Watcher delivers the network's changes (rtnl.Watcher).
type Watcher interface {
	Receive(ctx context.Context) ([]netstate.Update, int, error)
}

// Store keeps the ownership record (statefile.File).
type Store interface {
	Load() (statefile.State, error)
	Save(statefile.State) error
}

// endpointQueue runs the generic-netlink operations off the engine's
// goroutine and sends each back with its result (worker).
type endpointQueue interface {
	enqueue(*op)
	// cancel withdraws a queued operation that has not started; false
	// means it runs or ran, and its result will arrive.
	cancel(seq uint64) bool
}
