package pm

import (
	"context"
	"maps"

	"github.com/mptcpgd/mptcpgd/pkg/config"
)

// LeaveTo sets the interfaces on which another program (NetworkManager)
// manages MPTCP endpoints itself, each with why; the configuration
// ([networkmanager] mptcp_devices) says whether they are left to it.
func (e *Engine) LeaveTo(ctx context.Context, left map[string]string) error {
	return e.call(ctx, func() {
		if maps.Equal(e.left, left) {
			return
		}
		e.left = left
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
