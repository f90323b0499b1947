package pm

import (
	"context"
	"maps"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/config"
)

// LeaveTo sets the interfaces on which another program (NetworkManager)
// manages MPTCP endpoints itself, each with why, as read by a look at it
// that began at asOf (zero when it does not run); the configuration
// ([networkmanager] mptcp_devices) says whether they are left to it.
func (e *Engine) LeaveTo(ctx context.Context, left map[string]string, asOf time.Time) error {
	return e.call(ctx, func() {
		waited := e.decision.WaitingForNetworkManager
		same := maps.Equal(e.left, left) && e.leftAsOf.IsZero() == asOf.IsZero()
		e.left, e.leftAsOf = left, asOf
		if same && !waited {
			return
		}
		e.reconcile()
	})
}

// interfacePolicy is the configuration's policy for an interface, unless
// the interface is left to the program that manages MPTCP on it.
func (in Input) interfacePolicy(name string) config.InterfacePolicy {
	pol := in.Config.Interface(name)
	if why, ok := in.Left[name]; ok && pol.Managed && in.Config.LeaveToNetworkManager() {
		pol.Managed, pol.Reason = false, why
	}
	return pol
}
