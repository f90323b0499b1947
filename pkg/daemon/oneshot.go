package daemon

import (
	"errors"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
	"github.com/mptcpgd/mptcpgd/pkg/rtnl"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

// Inspect reads the kernel and explains it under cfg, for `mptcpgd show`
// when no daemon answers. It changes nothing.
func Inspect(cfg *config.Config, statePath string) (pm.Status, error) {
	k, err := netlinkmptcp.Dial(nil)
	if err != nil {
		return pm.Status{}, err
	}
	defer k.Close()
	rt, err := rtnl.Dial(rtnl.Config{Filter: routingFilter(cfg, statePath)})
	if err != nil {
		return pm.Status{}, err
	}
	defer rt.Close()
	st, err := pm.Inspect(cfg, k, rt, statefile.File{Path: statePath}, readARP)
	if err == nil && errors.Is(netlinkmptcp.CheckEnabled(), netlinkmptcp.ErrDisabled) {
		st.Disabled = netlinkmptcp.CheckEnabled().Error()
	}
	return st, err
}

// Cleanup removes what is ours, for `mptcpgd cleanup`.
func Cleanup(cfg *config.Config, statePath string) (pm.CleanupReport, error) {
	k, err := netlinkmptcp.Dial(nil)
	if err != nil {
		return pm.CleanupReport{}, err
	}
	defer k.Close()
	rt, err := rtnl.Dial(rtnl.Config{Filter: routingFilter(cfg, statePath)})
	if err != nil {
		return pm.CleanupReport{}, err
	}
	defer rt.Close()
	return pm.Cleanup(cfg, k, rt, rt, statefile.File{Path: statePath})
}

// routingFilter keeps the routes and rules that carry our protocol, and the
// protocol an earlier run recorded if it differs: what that run left is
// still ours to remove. An unreadable record is reported by whoever needs
// it; here it only means no earlier protocol is known.
func routingFilter(cfg *config.Config, statePath string) rtnl.Filter {
	f := rtnl.Filter{Protocols: []uint8{cfg.Routing.Protocol}}
	if st, err := (statefile.File{Path: statePath}).Load(); err == nil && st.Routing != nil && st.Routing.Protocol != cfg.Routing.Protocol {
		f.Protocols = append(f.Protocols, st.Routing.Protocol)
	}
	return f
}

// Adopt records the foreign endpoints on managed addresses as ours, for
// `mptcpgd adopt` when no daemon runs.
func Adopt(cfg *config.Config, statePath string) ([]netlinkmptcp.Endpoint, error) {
	k, err := netlinkmptcp.Dial(nil)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	rt, err := rtnl.Dial(rtnl.Config{Filter: routingFilter(cfg, statePath)})
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	return pm.AdoptOffline(cfg, k, rt, statefile.File{Path: statePath})
}
