package netlinkmptcp

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// The address nest (MPTCP_PM_ATTR_ADDR and MPTCP_PM_ATTR_ADDR_REMOTE) is the
// one structure shared by every command: endpoints, local and remote
// subflow addresses. Its PORT is in host byte order, unlike the events'.

// encodeAddr writes the family and the address of a.
func encodeAddr(ae *netlink.AttributeEncoder, a netip.Addr) {
	ae.Uint16(addrAttrFamily, uint16(FamilyOf(a)))
	if a.Is4() {
		b := a.As4()
		ae.Bytes(addrAttrAddr4, b[:])
		return
	}
	b := a.As16()
	ae.Bytes(addrAttrAddr6, b[:])
}

// endpointNest encodes e as an address nest. Zero ID, Port and IfIndex are
// left out (the kernel reads absence as zero); Flags are written when
// non-zero or when alwaysFlags asks for them, as SET_FLAGS must be able to
// clear every flag.
func endpointNest(e Endpoint, alwaysFlags bool) func(*netlink.AttributeEncoder) error {
	return func(nae *netlink.AttributeEncoder) error {
		encodeAddr(nae, e.Addr)
		if e.ID != 0 {
			nae.Uint8(addrAttrID, e.ID)
		}
		if e.Port != 0 {
			nae.Uint16(addrAttrPort, e.Port)
		}
		if e.Flags != 0 || alwaysFlags {
			nae.Uint32(addrAttrFlags, uint32(e.Flags))
		}
		if e.IfIndex != 0 {
			nae.Int32(addrAttrIfIdx, e.IfIndex)
		}
		return nil
	}
}

// addrPortNest encodes an address and its port, as the subflow commands
// want both ends of a subflow.
func addrPortNest(ap netip.AddrPort) func(*netlink.AttributeEncoder) error {
	return func(nae *netlink.AttributeEncoder) error {
		encodeAddr(nae, ap.Addr())
		if ap.Port() != 0 {
			nae.Uint16(addrAttrPort, ap.Port())
		}
		return nil
	}
}

// idNest encodes an address nest that holds only an endpoint id: how
// GET_ADDR, DEL_ADDR and SET_FLAGS address an endpoint by id.
func idNest(id uint8) func(*netlink.AttributeEncoder) error {
	return func(nae *netlink.AttributeEncoder) error {
		nae.Uint8(addrAttrID, id)
		return nil
	}
}

// parseEndpointMessages decodes the endpoints of GET_ADDR replies, one per
// message.
func parseEndpointMessages(msgs []genetlink.Message) ([]Endpoint, error) {
	eps := make([]Endpoint, 0, len(msgs))
	for _, m := range msgs {
		e, err := parseEndpointMessage(m.Data)
		if err != nil {
			return nil, err
		}
		eps = append(eps, e)
	}
	return eps, nil
}

// parseEndpointMessage decodes the attributes of one GET_ADDR reply.
func parseEndpointMessage(b []byte) (Endpoint, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return Endpoint{}, fmt.Errorf("decode endpoint: %w", err)
	}
	var (
		e     Endpoint
		found bool
	)
	for ad.Next() {
		if ad.Type() == attrAddr {
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				var err error
				e, err = parseEndpoint(nad)
				return err
			})
			found = true
		}
	}
	if err := ad.Err(); err != nil {
		return Endpoint{}, fmt.Errorf("decode endpoint: %w", err)
	}
	if !found {
		return Endpoint{}, errors.New("decode endpoint: reply has no address attribute")
	}
	return e, nil
}

// parseEndpoint decodes an address nest. The family attribute picks the
// address attribute when both are present; without one, whichever address
// is there counts.
func parseEndpoint(ad *netlink.AttributeDecoder) (Endpoint, error) {
	var (
		e            Endpoint
		family       Family
		addr4, addr6 netip.Addr
	)
	for ad.Next() {
		switch ad.Type() {
		case addrAttrFamily:
			family = Family(ad.Uint16())
		case addrAttrID:
			e.ID = ad.Uint8()
		case addrAttrAddr4:
			ad.Do(decodeAddr(&addr4, 4))
		case addrAttrAddr6:
			ad.Do(decodeAddr(&addr6, 16))
		case addrAttrPort:
			e.Port = ad.Uint16()
		case addrAttrFlags:
			e.Flags = Flags(ad.Uint32())
		case addrAttrIfIdx:
			e.IfIndex = ad.Int32()
		}
	}
	if err := ad.Err(); err != nil {
		return Endpoint{}, err
	}
	e.Addr = pickAddr(family, addr4, addr6)
	if !e.Addr.IsValid() {
		return Endpoint{}, fmt.Errorf("address nest of %s without its address", family)
	}
	return e, nil
}

// pickAddr chooses the address the family names, or the one present.
func pickAddr(family Family, addr4, addr6 netip.Addr) netip.Addr {
	switch {
	case family == FamilyIPv4 && addr4.IsValid():
		return addr4
	case family == FamilyIPv6 && addr6.IsValid():
		return addr6
	case addr4.IsValid():
		return addr4
	}
	return addr6
}

// decodeAddr returns an AttributeDecoder.Do function that reads an address
// of exactly n bytes (4 or 16) into dst.
func decodeAddr(dst *netip.Addr, n int) func([]byte) error {
	return func(b []byte) error {
		if len(b) != n {
			return fmt.Errorf("address attribute of %d bytes, want %d", len(b), n)
		}
		if n == 4 {
			*dst = netip.AddrFrom4([4]byte(b))
		} else {
			*dst = netip.AddrFrom16([16]byte(b))
		}
		return nil
	}
}
