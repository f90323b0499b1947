package config

import (
	"fmt"
	"net/netip"
	"strings"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// configurableFlags are the flag names a configuration may use, in the order
// TOML prints them.
var configurableFlags = []string{"signal", "subflow", "backup", "fullmesh", "laminar"}

// TOML prints the configuration as a TOML document with every key, which
// Parse turns back into the same Config (Source aside). It is what
// `mptcpgd check` shows as the effective configuration.
func (c *Config) TOML() string {
	f := file{
		Daemon: fileDaemon{
			ResyncInterval: c.Daemon.ResyncInterval.String(),
			CleanupOnExit:  c.Daemon.CleanupOnExit,
		},
		Log: fileLog{Level: c.Log.Level, Format: c.Log.Format},
		Limits: fileLimits{
			Subflows:        int64(c.Limits.Subflows),
			AddAddrAccepted: int64(c.Limits.AddAddrAccepted),
		},
		Endpoints: fileEndpoints{
			Flags:               flagNames(c.Endpoints.Flags),
			Families:            familyNames(c.Endpoints.IPv4, c.Endpoints.IPv6),
			Include:             nonNil(c.Endpoints.Include),
			Exclude:             nonNil(c.Endpoints.Exclude),
			SkipLinkLocal:       c.Endpoints.SkipLinkLocal,
			SkipULA:             c.Endpoints.SkipULA,
			SkipTemporary:       c.Endpoints.SkipTemporary,
			RequireDefaultRoute: c.Endpoints.RequireDefaultRoute,
		},
		Routing: fileRouting{
			Enabled:      c.Routing.Enabled,
			TableBase:    int64(c.Routing.TableBase),
			RulePriority: int64(c.Routing.RulePriority),
			Protocol:     int64(c.Routing.Protocol),
		},
		Rejoin: fileRejoin{
			GatewayTimeout: c.Rejoin.GatewayTimeout.String(),
			JoinTimeout:    c.Rejoin.JoinTimeout.String(),
			RetryMax:       c.Rejoin.RetryMax.String(),
		},
		NM: fileNM{MPTCPDevices: c.NetworkManager.MPTCPDevices},
		Metrics: fileMetrics{
			Textfile:         c.Metrics.Textfile,
			TextfileInterval: c.Metrics.TextfileInterval.String(),
			Listen:           "",
		},
	}
	if c.Metrics.Listen.IsValid() {
		f.Metrics.Listen = c.Metrics.Listen.String()
	}
	if c.Limits.SubflowsAuto {
		f.Limits.Subflows = "auto"
	}
	for _, in := range c.Interfaces {
		fi := fileInterface{
			Match:    in.Match,
			Gateway4: addrString(in.Gateway4),
			Gateway6: addrString(in.Gateway6),
			Port:     int64(in.Port),
			Priority: int64(in.Priority),
			Manage:   in.Manage,
			OnLink:   in.OnLink,
		}
		if in.Flags != nil {
			fi.Flags = flagNames(*in.Flags)
		}
		f.Interface = append(f.Interface, fi)
	}

	out, err := toml.Marshal(f)
	if err != nil {
		// Every value above is a string, integer, boolean or array of
		// strings, which always marshal.
		panic(fmt.Sprintf("marshal configuration: %v", err))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# mptcpgd configuration in effect, from %s\n\n", c.Source)
	b.Write(out)
	return b.String()
}

func flagNames(flags netlinkmptcp.Flags) []string {
	names := []string{}
	for _, name := range configurableFlags {
		if flag, err := netlinkmptcp.ParseFlag(name); err == nil && flags&flag != 0 {
			names = append(names, name)
		}
	}
	return names
}

func familyNames(ipv4, ipv6 bool) []string {
	names := []string{}
	if ipv4 {
		names = append(names, "ipv4")
	}
	if ipv6 {
		names = append(names, "ipv6")
	}
	return names
}

// nonNil makes a nil list print as an empty array rather than vanish, which
// would bring back its default on parsing.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// addrString is the address as TOML holds it; an unset address is left out.
func addrString(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a.String()
}
