package daemon

import (
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
	rt, err := rtnl.Dial(rtnl.Config{Filter: rtnl.Filter{Protocol: cfg.Routing.Protocol}})
	if err != nil {
		return pm.Status{}, err
	}
	defer rt.Close()
	return pm.Inspect(cfg, k, rt, statefile.File{Path: statePath}, readARP)
}

// Cleanup removes what is ours, for `mptcpgd cleanup`.
func Cleanup(cfg *config.Config, statePath string) (pm.CleanupReport, error) {
	k, err := netlinkmptcp.Dial(nil)
	if err != nil {
		return pm.CleanupReport{}, err
	}
	defer k.Close()
	rt, err := rtnl.Dial(rtnl.Config{Filter: rtnl.Filter{Protocol: cfg.Routing.Protocol}})
	if err != nil {
		return pm.CleanupReport{}, err
	}
	defer rt.Close()
	return pm.Cleanup(cfg, k, rt, rt, statefile.File{Path: statePath})
}
