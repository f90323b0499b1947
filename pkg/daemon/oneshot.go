package daemon

import (
	"errors"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
	"github.com/mptcpgd/mptcpgd/pkg/rtnl"
	"github.com/mptcpgd/mptcpgd/pkg/statefile"
)

// withKernel runs f with the MPTCP and routing connections a one-shot
// command needs, closed after it.
func withKernel(cfg *config.Config, statePath string, f func(k *netlinkmptcp.Client, rt *rtnl.Conn) error) error {
	k, err := netlinkmptcp.Dial(nil)
	if err != nil {
		return err
	}
	defer k.Close()
	rt, err := rtnl.Dial(rtnl.Config{Filter: routingFilter(cfg, statePath)})
	if err != nil {
		return err
	}
	defer rt.Close()
	return f(k, rt)
}

// Inspect reads the kernel and explains it under cfg, for `mptcpgd show`
// when no daemon answers. It changes nothing.
func Inspect(cfg *config.Config, statePath string) (st pm.Status, err error) {
	err = withKernel(cfg, statePath, func(k *netlinkmptcp.Client, rt *rtnl.Conn) error {
		st, err = pm.Inspect(cfg, k, rt, statefile.File{Path: statePath}, readARP)
		return err
	})
	if err == nil && errors.Is(netlinkmptcp.CheckEnabled(), netlinkmptcp.ErrDisabled) {
		st.Disabled = netlinkmptcp.CheckEnabled().Error()
	}
	return st, err
}

// Cleanup removes what is ours, for `mptcpgd cleanup`.
func Cleanup(cfg *config.Config, statePath string) (r pm.CleanupReport, err error) {
	err = withKernel(cfg, statePath, func(k *netlinkmptcp.Client, rt *rtnl.Conn) error {
		r, err = pm.Cleanup(cfg, k, rt, rt, statefile.File{Path: statePath})
		return err
	})
	return r, err
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
func Adopt(cfg *config.Config, statePath string) (eps []netlinkmptcp.Endpoint, err error) {
	err = withKernel(cfg, statePath, func(k *netlinkmptcp.Client, rt *rtnl.Conn) error {
		eps, err = pm.AdoptOffline(cfg, k, rt, statefile.File{Path: statePath})
		return err
	})
	return eps, err
}
