package config

import (
	"fmt"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// Env is what this host and its kernel say about a configuration: checks
// that parsing alone cannot make. Start-up, reload and `mptcpgd check` all
// validate through Validate with the Env of the host they run on.
type Env struct {
	// CheckFlags refuses endpoint flags the running kernel does not know
	// (newer kernels drop unknown bits silently); nil skips the check.
	CheckFlags func(netlinkmptcp.Flags) error
	// Protocols are the route protocol names iproute2 knows here
	// (RouteProtocols); nil skips the check.
	Protocols map[uint8]string
}

// Validate checks the configuration against env. Its errors are located
// like Parse's: file, line and key.
func (c *Config) Validate(env Env) error {
	ck := checker{file: c.Source, doc: &document{lines: c.lines}}
	if name, ok := env.Protocols[c.Routing.Protocol]; ok && name != OurProtocolName {
		ck.fail("routing.protocol", "%d is %q in iproute2's rt_protos here: routes and rules tagged with it belong to that program, not to us (name a number no program uses, such as the default 177)",
			c.Routing.Protocol, name)
	}
	if env.CheckFlags != nil {
		if err := env.CheckFlags(c.Endpoints.Flags); err != nil {
			ck.fail("endpoints.flags", "%v", err)
		}
		for i, in := range c.Interfaces {
			if in.Flags == nil {
				continue
			}
			if err := env.CheckFlags(*in.Flags); err != nil {
				ck.fail(fmt.Sprintf("interface[%d].flags", i+1), "%v", err)
			}
		}
	}
	if len(ck.errs) > 0 {
		return joinErrors(c.Source, ck.errs)
	}
	return nil
}
