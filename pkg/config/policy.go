package config

import (
	"fmt"
	"net/netip"
	"path"
	"strings"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// InterfacePolicy is what the configuration says about one interface.
type InterfacePolicy struct {
	// Managed says whether the interface's addresses become endpoints.
	Managed bool
	// Reason says why, for logs and `mptcpgd show`: `excluded by "veth*"`,
	// `manage = false in interface[1]`, `included by "*"`...
	Reason string
	// Entry is the [[interface]] entry that matched, counted from 1 as in
	// error messages; 0 when none did.
	Entry int
	// Flags are the endpoint flags: the entry's, else [endpoints] flags.
	Flags netlinkmptcp.Flags
	// Gateway4 and Gateway6 are the configured gateways; zero when unset.
	Gateway4, Gateway6 netip.Addr
	// Port is announced with signal endpoints; 0 means none.
	Port uint16
	// Priority ranks the interface's addresses: higher wins.
	Priority int
	// OnLink installs the configured gateways on-link.
	OnLink bool
}

// Interface says whether the interface with the given name is managed, why,
// and with which settings. The first [[interface]] entry whose match is the
// name or a glob matching it decides (explicit beats glob); otherwise the
// interface is managed when an include glob matches it and no exclude glob
// does.
func (c *Config) Interface(name string) InterfacePolicy {
	p := InterfacePolicy{Flags: c.Endpoints.Flags}
	for i, in := range c.Interfaces {
		if !nameMatches(in.Match, name) {
			continue
		}
		p.Entry = i + 1
		if in.Flags != nil {
			p.Flags = *in.Flags
		}
		p.Gateway4, p.Gateway6 = in.Gateway4, in.Gateway6
		p.Port, p.Priority, p.OnLink = in.Port, in.Priority, in.OnLink
		p.Managed = in.Manage
		if in.Manage {
			p.Reason = fmt.Sprintf("matched by interface[%d] (match = %q)", p.Entry, in.Match)
		} else {
			p.Reason = fmt.Sprintf("manage = false in interface[%d]", p.Entry)
		}
		return p
	}

	include, ok := firstMatch(c.Endpoints.Include, name)
	if !ok {
		p.Reason = "not included by include = " + globList(c.Endpoints.Include)
		return p
	}
	if exclude, ok := firstMatch(c.Endpoints.Exclude, name); ok {
		p.Reason = fmt.Sprintf("excluded by %q", exclude)
		return p
	}
	p.Managed = true
	p.Reason = fmt.Sprintf("included by %q", include)
	return p
}

// nameMatches reports whether pattern is name or a glob matching it. A
// malformed glob matches nothing; Parse rejects them.
func nameMatches(pattern, name string) bool {
	if pattern == name {
		return true
	}
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

func firstMatch(patterns []string, name string) (string, bool) {
	for _, p := range patterns {
		if nameMatches(p, name) {
			return p, true
		}
	}
	return "", false
}

// globList writes patterns as a TOML array.
func globList(patterns []string) string {
	quoted := make([]string, len(patterns))
	for i, p := range patterns {
		quoted[i] = fmt.Sprintf("%q", p)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
