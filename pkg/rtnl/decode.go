package rtnl

import (
	"net"
	"net/netip"
	"slices"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/netstate"
)

// Filter says which routes and rules are worth keeping: default routes of any
// table (gateways, require_default_route) and whatever carries one of
// Protocols (ours, and the one an earlier run used). Everything else is
// dropped at the socket, so a host with a full BGP table costs us decoding
// time but no memory.
type Filter struct {
	Protocols []uint8
}

// decode turns one rtnetlink message into an update. ok is false for
// messages that are not about anything we keep.
func (f Filter) decode(m netlink.Message) (u netstate.Update, ok bool, err error) {
	switch m.Header.Type {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		var lm rtnetlink.LinkMessage
		if err := lm.UnmarshalBinary(m.Data); err != nil {
			return u, false, err
		}
		u.Kind, u.Deleted = netstate.LinkUpdate, m.Header.Type == unix.RTM_DELLINK
		u.Link = netstate.Link{Index: int(lm.Index), Flags: netstate.LinkFlags(lm.Flags)}
		if lm.Attributes != nil {
			u.Link.Name = lm.Attributes.Name
		}
		return u, true, nil
	case unix.RTM_NEWADDR, unix.RTM_DELADDR:
		var am rtnetlink.AddressMessage
		if err := am.UnmarshalBinary(m.Data); err != nil {
			return u, false, err
		}
		a, ok := addrFrom(am)
		u.Kind, u.Deleted, u.Addr = netstate.AddrUpdate, m.Header.Type == unix.RTM_DELADDR, a
		return u, ok, nil
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		var rm rtnetlink.RouteMessage
		if err := rm.UnmarshalBinary(m.Data); err != nil {
			return u, false, err
		}
		r, ok := routeFrom(rm)
		if !ok || !(r.IsDefault() || slices.Contains(f.Protocols, r.Protocol)) {
			return u, false, nil
		}
		u.Kind, u.Deleted, u.Route = netstate.RouteUpdate, m.Header.Type == unix.RTM_DELROUTE, r
		return u, true, nil
	case unix.RTM_NEWNEIGH, unix.RTM_DELNEIGH:
		n, ok := neighFrom(m)
		u.Kind, u.Deleted, u.Neigh = netstate.NeighUpdate, m.Header.Type == unix.RTM_DELNEIGH, n
		return u, ok, nil
	case unix.RTM_NEWRULE, unix.RTM_DELRULE:
		var rm rtnetlink.RuleMessage
		if err := rm.UnmarshalBinary(m.Data); err != nil {
			return u, false, err
		}
		r, ok := ruleFrom(rm)
		if !ok || !slices.Contains(f.Protocols, r.Protocol) {
			return u, false, nil
		}
		u.Kind, u.Deleted, u.Rule = netstate.RuleUpdate, m.Header.Type == unix.RTM_DELRULE, r
		return u, true, nil
	}
	return u, false, nil
}

func addrFrom(am rtnetlink.AddressMessage) (netstate.Addr, bool) {
	if am.Attributes == nil {
		return netstate.Addr{}, false
	}
	at := am.Attributes
	// IFA_LOCAL is the local address where a peer is configured (IPv4
	// point-to-point); IFA_ADDRESS is then the peer.
	local, peer := at.Address, at.Address
	if at.Local != nil {
		local = at.Local
	}
	addr, ok := ipFrom(local)
	if !ok {
		return netstate.Addr{}, false
	}
	peerAddr, ok := ipFrom(peer)
	if !ok {
		peerAddr = addr
	}
	flags := uint32(am.Flags)
	if at.Flags != 0 {
		flags = at.Flags
	}
	prefix, err := peerAddr.Prefix(int(am.PrefixLength))
	if err != nil {
		return netstate.Addr{}, false
	}
	return netstate.Addr{
		IfIndex: int(am.Index),
		Addr:    addr,
		Prefix:  prefix,
		Scope:   am.Scope,
		Flags:   netstate.AddrFlags(flags),
	}, true
}

func routeFrom(rm rtnetlink.RouteMessage) (netstate.Route, bool) {
	if rm.Family != unix.AF_INET && rm.Family != unix.AF_INET6 {
		return netstate.Route{}, false
	}
	at := rm.Attributes
	table := uint32(rm.Table)
	if at.Table != 0 {
		table = at.Table
	}
	var dst netip.Addr
	if at.Dst != nil {
		var ok bool
		if dst, ok = ipFrom(at.Dst); !ok {
			return netstate.Route{}, false
		}
	} else if rm.Family == unix.AF_INET {
		dst = netip.IPv4Unspecified()
	} else {
		dst = netip.IPv6Unspecified()
	}
	prefix, err := dst.Prefix(int(rm.DstLength))
	if err != nil {
		return netstate.Route{}, false
	}
	r := netstate.Route{
		Table:    table,
		Protocol: rm.Protocol,
		Type:     rm.Type,
		Scope:    rm.Scope,
		Dst:      prefix,
		Priority: at.Priority,
	}
	if len(at.Multipath) > 0 {
		for _, nh := range at.Multipath {
			gw, _ := ipFrom(nh.Gateway)
			r.NextHops = append(r.NextHops, netstate.NextHop{Gateway: gw, IfIndex: int(nh.Hop.IfIndex), OnLink: nh.Hop.Flags&unix.RTNH_F_ONLINK != 0})
		}
	} else if at.OutIface != 0 {
		gw, _ := ipFrom(at.Gateway)
		r.NextHops = []netstate.NextHop{{Gateway: gw, IfIndex: int(at.OutIface), OnLink: rm.Flags&unix.RTNH_F_ONLINK != 0}}
	}
	return r, true
}

// ruleFrom keeps only rules of the plain `from PREFIX lookup TABLE` shape:
// anything with another selector or action is not one we write.
func ruleFrom(rm rtnetlink.RuleMessage) (netstate.Rule, bool) {
	const actionToTable = 1 // FR_ACT_TO_TBL
	at := rm.Attributes
	if at == nil || rm.Action != actionToTable || rm.DstLength != 0 || rm.TOS != 0 ||
		at.Src == nil || at.Dst != nil || at.IIFName != nil || at.OIFName != nil ||
		at.FwMark != nil || at.Goto != nil || at.IPProto != nil || at.SPortRange != nil ||
		at.DPortRange != nil || at.UIDRange != nil || at.L3MDev != nil {
		return netstate.Rule{}, false
	}
	src, ok := ipFrom(*at.Src)
	if !ok {
		return netstate.Rule{}, false
	}
	prefix, err := src.Prefix(int(rm.SrcLength))
	if err != nil {
		return netstate.Rule{}, false
	}
	r := netstate.Rule{Src: prefix, Table: uint32(rm.Table)}
	if at.Table != nil {
		r.Table = *at.Table
	}
	if at.Priority != nil {
		r.Priority = *at.Priority
	}
	if at.Protocol != nil {
		r.Protocol = *at.Protocol
	}
	return r, true
}

func ipFrom(ip net.IP) (netip.Addr, bool) {
	if ip == nil {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	return a, ok
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}
