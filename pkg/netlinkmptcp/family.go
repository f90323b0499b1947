package netlinkmptcp

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Family is an address family as the kernel numbers it.
type Family uint16

// The address families MPTCP knows.
const (
	FamilyIPv4 Family = unix.AF_INET
	FamilyIPv6 Family = unix.AF_INET6
)

// String is "ipv4" or "ipv6", "family(N)" for anything else.
func (f Family) String() string {
	switch f {
	case FamilyIPv4:
		return "ipv4"
	case FamilyIPv6:
		return "ipv6"
	}
	return fmt.Sprintf("family(%d)", uint16(f))
}

// FamilyOf is the family of a: FamilyIPv4 for an IPv4 address, FamilyIPv6
// for any IPv6 address (IPv4-mapped ones included), 0 for the zero Addr.
func FamilyOf(a netip.Addr) Family {
	switch {
	case a.Is4():
		return FamilyIPv4
	case a.Is6():
		return FamilyIPv6
	}
	return 0
}
