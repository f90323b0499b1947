package netlinkmptcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// Events are decoded in place, without allocating: on a busy server every
// connection brings several, and the path manager reads them all.

const (
	nlmsgHeaderLen = 16 // struct nlmsghdr
	genlHeaderLen  = 4  // struct genlmsghdr
	nlaHeaderLen   = 4  // struct nlattr
	nlaTypeMask    = 0x3fff
)

func align4(n int) int { return (n + 3) &^ 3 }

// decodeDatagram appends the family's events in one datagram to evs.
// Other message types (errors, done) are skipped.
func decodeDatagram(b []byte, family uint16, evs []Event) ([]Event, error) {
	for len(b) > 0 {
		if len(b) < nlmsgHeaderLen {
			return evs, fmt.Errorf("netlink message of %d bytes, shorter than its header", len(b))
		}
		n := int(binary.NativeEndian.Uint32(b[0:4]))
		if n < nlmsgHeaderLen || n > len(b) {
			return evs, fmt.Errorf("netlink message length %d out of the datagram's %d bytes", n, len(b))
		}
		if binary.NativeEndian.Uint16(b[4:6]) == family {
			if n < nlmsgHeaderLen+genlHeaderLen {
				return evs, errors.New("generic netlink message shorter than its header")
			}
			evs = append(evs, Event{})
			if err := decodeEvent(b[nlmsgHeaderLen], b[nlmsgHeaderLen+genlHeaderLen:n], &evs[len(evs)-1]); err != nil {
				return evs[:len(evs)-1], err
			}
		}
		b = b[min(align4(n), len(b)):]
	}
	return evs, nil
}

// decodeEvent decodes an event's attributes into e. Unknown attributes are
// skipped; one of the wrong size is an error.
func decodeEvent(cmd uint8, attrs []byte, e *Event) error {
	*e = Event{Type: EventType(cmd)}
	var (
		saddr4, saddr6, daddr4, daddr6 netip.Addr
		sport, dport                   uint16
		serverSide                     bool
	)
	for len(attrs) > 0 {
		if len(attrs) < nlaHeaderLen {
			return fmt.Errorf("decode %s event: attribute header of %d bytes", e.Type, len(attrs))
		}
		n := int(binary.NativeEndian.Uint16(attrs[0:2]))
		if n < nlaHeaderLen || n > len(attrs) {
			return fmt.Errorf("decode %s event: attribute length %d out of %d bytes", e.Type, n, len(attrs))
		}
		typ := binary.NativeEndian.Uint16(attrs[2:4]) & nlaTypeMask
		v := attrs[nlaHeaderLen:n]
		var err error
		switch typ {
		case evAttrToken:
			e.Token, err = attrU32(v)
		case evAttrFamily:
			var f uint16
			f, err = attrU16(v)
			e.Family = Family(f)
		case evAttrLocID:
			e.LocalID, err = attrU8(v)
		case evAttrRemID:
			e.RemoteID, err = attrU8(v)
		case evAttrSaddr4:
			saddr4, err = addrOf(v, 4)
		case evAttrSaddr6:
			saddr6, err = addrOf(v, 16)
		case evAttrDaddr4:
			daddr4, err = addrOf(v, 4)
		case evAttrDaddr6:
			daddr6, err = addrOf(v, 16)
		case evAttrSport:
			sport, err = portOf(v)
		case evAttrDport:
			dport, err = portOf(v)
		case evAttrBackup:
			var b uint8
			b, err = attrU8(v)
			e.Backup = b != 0
		case evAttrError:
			var b uint8
			b, err = attrU8(v)
			e.Error = syscall.Errno(b)
		case evAttrFlags:
			var f uint16
			f, err = attrU16(v)
			e.Flags = EventFlags(f)
		case evAttrTimeout:
			e.Timeout, err = attrU32(v)
		case evAttrIfIdx:
			var i uint32
			i, err = attrU32(v)
			e.IfIndex = int32(i)
		case evAttrResetReason:
			e.ResetReason, err = attrU32(v)
		case evAttrResetFlags:
			e.ResetFlags, err = attrU32(v)
		case evAttrServerSide:
			var b uint8
			b, err = attrU8(v)
			serverSide = b != 0
		}
		if err != nil {
			return fmt.Errorf("decode %s event: attribute %d: %w", e.Type, typ, err)
		}
		attrs = attrs[min(align4(n), len(attrs)):]
	}
	if e.Family == 0 {
		switch {
		case saddr4.IsValid() || daddr4.IsValid():
			e.Family = FamilyIPv4
		case saddr6.IsValid() || daddr6.IsValid():
			e.Family = FamilyIPv6
		}
	}
	if local := pickAddr(e.Family, saddr4, saddr6); local.IsValid() || sport != 0 {
		e.Local = netip.AddrPortFrom(local, sport)
	}
	if remote := pickAddr(e.Family, daddr4, daddr6); remote.IsValid() || dport != 0 {
		e.Remote = netip.AddrPortFrom(remote, dport)
	}
	e.ServerSide = serverSide || e.Flags&EventFlagServerSide != 0
	return nil
}

// errSize is the error of an attribute whose payload has the wrong size;
// a constant, so decoding allocates nothing on the good path.
var errSize = errors.New("payload of the wrong size")

func attrU8(v []byte) (uint8, error) {
	if len(v) != 1 {
		return 0, errSize
	}
	return v[0], nil
}

func attrU16(v []byte) (uint16, error) {
	if len(v) != 2 {
		return 0, errSize
	}
	return binary.NativeEndian.Uint16(v), nil
}

func attrU32(v []byte) (uint32, error) {
	if len(v) != 4 {
		return 0, errSize
	}
	return binary.NativeEndian.Uint32(v), nil
}

// portOf reads an event port: network byte order, unlike the commands'
// host-order PORT.
func portOf(v []byte) (uint16, error) {
	if len(v) != 2 {
		return 0, errSize
	}
	return binary.BigEndian.Uint16(v), nil
}

func addrOf(v []byte, n int) (netip.Addr, error) {
	if len(v) != n {
		return netip.Addr{}, errSize
	}
	if n == 4 {
		return netip.AddrFrom4([4]byte(v)), nil
	}
	return netip.AddrFrom16([16]byte(v)), nil
}
