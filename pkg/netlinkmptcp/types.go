package netlinkmptcp

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
)

// Flags are an endpoint's MPTCP_PM_ADDR_FLAG_* bits.
type Flags uint32

// Endpoint flags, as the kernel numbers them.
const (
	FlagSignal   Flags = 0x01 // announce the address to peers (ADD_ADDR)
	FlagSubflow  Flags = 0x02 // open subflows from the address
	FlagBackup   Flags = 0x04 // subflows from the address are backups
	FlagFullmesh Flags = 0x08 // one subflow to every known peer address (5.15)
	FlagImplicit Flags = 0x10 // made by the kernel for a peer's join (5.18)
	FlagLaminar  Flags = 0x20 // 6.18
)

var flagNames = []struct {
	flag Flags
	name string
}{
	{FlagSignal, "signal"},
	{FlagSubflow, "subflow"},
	{FlagBackup, "backup"},
	{FlagFullmesh, "fullmesh"},
	{FlagImplicit, "implicit"},
	{FlagLaminar, "laminar"},
}

// String lists the flags by name, comma-separated ("subflow,backup"); bits
// without a name are shown in hex. No flags at all is "none".
func (f Flags) String() string {
	if f == 0 {
		return "none"
	}
	var names []string
	for _, fn := range flagNames {
		if f&fn.flag != 0 {
			names = append(names, fn.name)
			f &^= fn.flag
		}
	}
	if f != 0 {
		names = append(names, fmt.Sprintf("%#x", uint32(f)))
	}
	return strings.Join(names, ",")
}

// Count is the number of bits set.
func (f Flags) Count() int { return bits.OnesCount32(uint32(f)) }

// ParseFlag returns the flag with the given name ("signal", "subflow", ...).
func ParseFlag(name string) (Flags, error) {
	for _, fn := range flagNames {
		if fn.name == name {
			return fn.flag, nil
		}
	}
	return 0, fmt.Errorf("unknown endpoint flag %q (want signal, subflow, backup, fullmesh, implicit or laminar)", name)
}

// ParseFlags parses the String form: names separated by commas. "none" and
// "" are no flags.
func ParseFlags(s string) (Flags, error) {
	var f Flags
	if s == "" || s == "none" {
		return 0, nil
	}
	for name := range strings.SplitSeq(s, ",") {
		flag, err := ParseFlag(strings.TrimSpace(name))
		if err != nil {
			return 0, err
		}
		f |= flag
	}
	return f, nil
}

// Endpoint is one entry of the kernel's endpoint table (an "MPTCP address").
type Endpoint struct {
	// ID is the kernel's endpoint id, 1..255. Zero in a request lets the
	// kernel choose.
	ID uint8
	// Addr is the local address, IPv4 or IPv6.
	Addr netip.Addr
	// Port is announced with signal endpoints; 0 means none.
	Port uint16
	// Flags are the endpoint's flags.
	Flags Flags
	// IfIndex binds subflows from the endpoint to a device; 0 means unbound.
	IfIndex int32
}

// String formats the endpoint as `ip mptcp endpoint show` would.
func (e Endpoint) String() string {
	var b strings.Builder
	b.WriteString(e.Addr.String())
	if e.Port != 0 {
		fmt.Fprintf(&b, " port %d", e.Port)
	}
	if e.ID != 0 {
		fmt.Fprintf(&b, " id %d", e.ID)
	}
	fmt.Fprintf(&b, " %s", e.Flags)
	if e.IfIndex != 0 {
		fmt.Fprintf(&b, " ifindex %d", e.IfIndex)
	}
	return b.String()
}

// MaxEndpoints is the kernel's limit on endpoints per network namespace
// (MPTCP_PM_ADDR_MAX), implicit ones included.
const MaxEndpoints = 8

// MaxLimit is the largest value either limit accepts (MPTCP_PM_ADDR_MAX).
const MaxLimit = 8

// Limits are the per-namespace limits the kernel path manager applies to
// each connection.
type Limits struct {
	// Subflows is the most additional subflows per connection.
	Subflows uint32
	// AddAddrAccepted is the most ADD_ADDR announcements accepted per
	// connection.
	AddAddrAccepted uint32
}

// String is "subflows N add_addr_accepted M".
func (l Limits) String() string {
	return fmt.Sprintf("subflows %d add_addr_accepted %d", l.Subflows, l.AddAddrAccepted)
}
