package netlinkmptcp

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/mptcpgd/mptcpgd/internal/bitnames"
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

var flagNames = []bitnames.Name{
	{Bit: uint32(FlagSignal), Word: "signal"},
	{Bit: uint32(FlagSubflow), Word: "subflow"},
	{Bit: uint32(FlagBackup), Word: "backup"},
	{Bit: uint32(FlagFullmesh), Word: "fullmesh"},
	{Bit: uint32(FlagImplicit), Word: "implicit"},
	{Bit: uint32(FlagLaminar), Word: "laminar"},
}

// String lists the flags by name as `ip mptcp` does, comma-separated
// ("subflow,backup"); bits without a name are shown in hex. No flags at all
// is "none".
func (f Flags) String() string { return bitnames.Format(uint32(f), flagNames) }

// MarshalText is String, so JSON says "subflow,backup".
func (f Flags) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (f *Flags) UnmarshalText(b []byte) error {
	v, err := ParseFlags(string(b))
	*f = v
	return err
}

// ParseFlag returns the flag with the given name ("signal", "subflow", ...).
func ParseFlag(name string) (Flags, error) {
	for _, n := range flagNames {
		if n.Word == name {
			return Flags(n.Bit), nil
		}
	}
	return 0, fmt.Errorf("unknown endpoint flag %q (want signal, subflow, backup, fullmesh, implicit or laminar)", name)
}

// ParseFlags parses the String form: names separated by commas. "none" and
// "" are no flags.
func ParseFlags(s string) (Flags, error) {
	v, err := bitnames.Parse(s, flagNames)
	return Flags(v), err
}

// Endpoint is one entry of the kernel's endpoint table (an "MPTCP address").
type Endpoint struct {
	// ID is the kernel's endpoint id, 1..255. Zero in a request lets the
	// kernel choose.
	ID uint8 `json:"id"`
	// Addr is the local address, IPv4 or IPv6.
	Addr netip.Addr `json:"addr"`
	// Port is announced with signal endpoints; 0 means none.
	Port uint16 `json:"port,omitempty"`
	// Flags are the endpoint's flags.
	Flags Flags `json:"flags"`
	// IfIndex binds subflows from the endpoint to a device; 0 means unbound.
	IfIndex int32 `json:"ifindex,omitempty"`
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
	Subflows uint32 `json:"subflows"`
	// AddAddrAccepted is the most ADD_ADDR announcements accepted per
	// connection.
	AddAddrAccepted uint32 `json:"add_addr_accepted"`
}

// String is "subflows N add_addr_accepted M".
func (l Limits) String() string {
	return fmt.Sprintf("subflows %d add_addr_accepted %d", l.Subflows, l.AddAddrAccepted)
}
