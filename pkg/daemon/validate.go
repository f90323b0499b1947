package daemon

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/mptcpgd/mptcpgd/pkg/config"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/rtnl"
)

// Validate checks a parsed configuration against this host, exactly as
// start-up, reload and `mptcpgd check` do: the endpoint flags against the
// running kernel, the route protocol against iproute2's names. It returns
// the refusal, and warnings: checks it could not make (and why), and what it
// can foresee going wrong (a configured gateway outside its interface's
// prefixes, which the kernel will refuse).
func Validate(cfg *config.Config) (warnings []string, err error) {
	var env config.Env
	if f, ferr := netlinkmptcp.KernelFeatures(); ferr != nil {
		warnings = append(warnings, fmt.Sprintf("could not check the endpoint flags against the running kernel: %v", ferr))
	} else {
		env.CheckFlags = f.CheckFlags
	}
	if env.Protocols, err = config.RouteProtocols(config.ProtocolFiles); err != nil {
		warnings = append(warnings, fmt.Sprintf("could not check routing.protocol against iproute2's names: %v", err))
		env.Protocols = nil
	}
	if err := cfg.Validate(env); err != nil {
		return warnings, err
	}
	return append(warnings, gatewayWarnings(cfg)...), nil
}

// gatewayWarnings foresees configured gateways the kernel will refuse:
// outside every prefix of the interfaces their entry matches now, on an
// interface without host addresses and without onlink = true.
func gatewayWarnings(cfg *config.Config) []string {
	c, err := rtnl.Dial(rtnl.Config{})
	if err != nil {
		return []string{fmt.Sprintf("could not check the configured gateways against the interfaces: %v", err)}
	}
	defer c.Close()
	net, _, err := c.Dump()
	if err != nil {
		return []string{fmt.Sprintf("could not check the configured gateways against the interfaces: %v", err)}
	}
	var out []string
	for _, link := range net.SortedLinks() {
		pol := cfg.Interface(link.Name)
		if pol.Entry == 0 || pol.OnLink {
			continue
		}
		for _, g := range []struct {
			key  string
			addr netip.Addr
		}{{"gateway4", pol.Gateway4}, {"gateway6", pol.Gateway6}} {
			key, gw := g.key, g.addr
			if w := outsidePrefixes(net, link, gw); gw.IsValid() && w != "" {
				out = append(out, fmt.Sprintf("interface[%d].%s %s is outside %s's prefixes (%s): the kernel refuses such a route and %s's endpoints would wait for it; set onlink = true in that entry if the provider routes the gateway on-link",
					pol.Entry, key, gw, link.Name, w, link.Name))
			}
		}
	}
	return out
}

// outsidePrefixes lists link's prefixes of gw's family when none holds gw
// and none is a host prefix (which gets the gateway on-link anyway); ""
// otherwise, or when the link has no address of that family yet.
func outsidePrefixes(net netstate.State, link netstate.Link, gw netip.Addr) string {
	var prefixes []string
	for k, a := range net.Addrs {
		if k.IfIndex != link.Index || a.Addr.Is6() != gw.Is6() || a.Addr.IsLinkLocalUnicast() {
			continue
		}
		p := a.Prefix.Masked()
		if p.Contains(gw) || p.Bits() == p.Addr().BitLen() {
			return ""
		}
		prefixes = append(prefixes, netip.PrefixFrom(a.Addr, a.Prefix.Bits()).String())
	}
	return strings.Join(prefixes, ", ")
}
