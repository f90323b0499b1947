package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/nlerr"
)

// Neighbour reads the state of addr's neighbour entry on ifindex; ok is
// false when there is none.
func (c *Conn) Neighbour(ifindex int, addr netip.Addr) (state netstate.NeighState, ok bool, err error) {
	op := fmt.Sprintf("read neighbour %s on ifindex %d", addr, ifindex)
	msgs, err := c.c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETNEIGH, Flags: netlink.Request},
		Data:   neighMessage(ifindex, addr, 0, 0),
	})
	if err != nil {
		e := nlerr.New(op, err)
		if errors.Is(e, nlerr.ErrNotFound) {
			return 0, false, nil
		}
		return 0, false, e
	}
	for _, m := range msgs {
		if n, ok := neighFrom(m); ok && n.Addr == addr {
			return n.State, true, nil
		}
	}
	return 0, false, nlerr.New(op, errors.New("no neighbour in the reply"))
}

// Resolve starts resolving addr on ifindex now, as traffic to it would
// (NTF_USE), creating the entry if there is none: a FAILED entry left by an
// outage becomes INCOMPLETE and is probed again. It needs CAP_NET_ADMIN and
// no raw socket.
func (c *Conn) Resolve(ifindex int, addr netip.Addr) error {
	_, err := c.c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_NEWNEIGH, Flags: netlink.Request | netlink.Acknowledge | netlink.Create},
		Data:   neighMessage(ifindex, addr, 0, unix.NTF_USE),
	})
	if err != nil {
		return nlerr.New(fmt.Sprintf("resolve neighbour %s on ifindex %d", addr, ifindex), err)
	}
	return nil
}

// Reprobe restarts the resolution of addr on ifindex with a probe now. An
// unresolved entry (INCOMPLETE: its probes may have gone out while the
// link was down) is first set to NONE, which ends its round of probes and
// keeps the packets waiting on it (FAILED would drop them and fail their
// sockets); then it is resolved as Resolve does. Use it only on an entry
// known to be unresolved: a resolved one would be sent back to resolution
// too, and an administrator's permanent one cleared.
func (c *Conn) Reprobe(ifindex int, addr netip.Addr) error {
	_, err := c.c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_NEWNEIGH, Flags: netlink.Request | netlink.Acknowledge},
		Data:   neighMessage(ifindex, addr, unix.NUD_NONE, 0),
	})
	if err != nil {
		if e := nlerr.New(fmt.Sprintf("restart resolving neighbour %s on ifindex %d", addr, ifindex), err); !errors.Is(e, nlerr.ErrNotFound) {
			return e
		}
	}
	return c.Resolve(ifindex, addr)
}

// neighMessage encodes an ndmsg with the destination attribute alone: the
// kernel's strict checks refuse any other attribute in a get request, and
// an empty link-layer address in a new one.
func neighMessage(ifindex int, addr netip.Addr, state uint16, flags uint8) []byte {
	b := make([]byte, unix.SizeofNdMsg)
	b[0] = family(addr)
	binary.NativeEndian.PutUint32(b[4:8], uint32(ifindex))
	binary.NativeEndian.PutUint16(b[8:10], state)
	b[10] = flags
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(unix.NDA_DST, addr.AsSlice())
	attrs, _ := ae.Encode()
	return append(b, attrs...)
}

// neighFrom decodes a neighbour message; ok is false for one that names no
// IP destination.
func neighFrom(m netlink.Message) (netstate.Neigh, bool) {
	var nm rtnetlink.NeighMessage
	if err := nm.UnmarshalBinary(m.Data); err != nil || nm.Attributes == nil {
		return netstate.Neigh{}, false
	}
	if nm.Family != unix.AF_INET && nm.Family != unix.AF_INET6 {
		return netstate.Neigh{}, false
	}
	a, ok := ipFrom(nm.Attributes.Address)
	if !ok {
		return netstate.Neigh{}, false
	}
	return netstate.Neigh{IfIndex: int(nm.Index), Addr: a.Unmap(), State: netstate.NeighState(nm.State)}, true
}
