package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The kernel's socket-diagnostics numbers (include/uapi/linux/inet_diag.h
// and mptcp.h) that golang.org/x/sys/unix does not define.
const (
	// reqAttrProtocol (INET_DIAG_REQ_PROTOCOL) carries the protocol as a
	// u32 after the request, for protocols that do not fit its u8 field:
	// IPPROTO_MPTCP is 262.
	reqAttrProtocol = 3

	// Attributes of a reply (INET_DIAG_*).
	diagAttrInfo    = 2  // INET_DIAG_INFO: struct mptcp_info, or tcp_info for TCP
	diagAttrULPInfo = 19 // INET_DIAG_ULP_INFO: nested INET_ULP_INFO_*

	// Attributes inside INET_DIAG_ULP_INFO (INET_ULP_INFO_*).
	ulpInfoName  = 1 // the ULP's name, "mptcp" for MPTCP subflows
	ulpInfoMPTCP = 3 // nested MPTCP_SUBFLOW_ATTR_*

	// Attributes inside INET_ULP_INFO_MPTCP (MPTCP_SUBFLOW_ATTR_*).
	subflowAttrTokenLoc = 2  // u32: the connection's token on this host
	subflowAttrFlags    = 8  // u32: MPTCP_SUBFLOW_FLAG_*
	subflowAttrIDRem    = 9  // u8: the peer's address id
	subflowAttrIDLoc    = 10 // u8: the local address id

	// MPTCP_SUBFLOW_FLAG_* bits.
	subflowFlagMCapRem   = 1 << 0 // MP_CAPABLE came from the peer: the initial subflow
	subflowFlagMCapLoc   = 1 << 1 // this host sent MP_CAPABLE first: it opened the connection
	subflowFlagBackupRem = 1 << 4 // the peer asked for this subflow to be a backup
	subflowFlagBackupLoc = 1 << 5 // this host asked for this subflow to be a backup
	subflowFlagsInitial  = subflowFlagMCapRem | subflowFlagMCapLoc
	subflowFlagsBackup   = subflowFlagBackupRem | subflowFlagBackupLoc
)

// mptcpULPName is the upper-layer protocol of MPTCP subflows.
const mptcpULPName = "mptcp"

// infoExt is the idiag_ext bit that asks for INET_DIAG_INFO.
const infoExt uint8 = 1 << (diagAttrInfo - 1)

// Sizes of the fixed structures.
const (
	reqSize = 56 // struct inet_diag_req_v2
	msgSize = 72 // struct inet_diag_msg
)

// Offsets in struct mptcp_info. The kernel appends fields over time; a
// shorter struct from an older kernel lacks the later ones.
const (
	infoSubflows        = 0  // u8 mptcpi_subflows: subflows besides the initial one
	infoAddAddrSignal   = 1  // u8 mptcpi_add_addr_signal
	infoAddAddrAccepted = 2  // u8 mptcpi_add_addr_accepted
	infoSubflowsMax     = 3  // u8 mptcpi_subflows_max
	infoFlags           = 8  // u32 mptcpi_flags
	infoToken           = 12 // u32 mptcpi_token
	infoLocalAddrUsed   = 40 // u8 mptcpi_local_addr_used
	infoBytesSent       = 56 // u64 mptcpi_bytes_sent (Linux 6.5+)
	infoBytesReceived   = 64 // u64 mptcpi_bytes_received (Linux 6.5+)
	infoMinSize         = 16 // up to and including the token

	infoFlagFallback = 1 << 0 // MPTCP_INFO_FLAG_FALLBACK
)

// Offsets in struct tcp_info (Linux 4.1+ has both; a shorter struct has
// neither).
const (
	tcpInfoBytesAcked    = 120 // u64 tcpi_bytes_acked
	tcpInfoBytesReceived = 128 // u64 tcpi_bytes_received
)

// State masks for idiag_states: bit n asks for sockets in state n.
const (
	allStates uint32 = 1<<(StateNewSynRecv+1) - 2 // states 1..12
	// connStates: MPTCP sockets in every state but LISTEN.
	connStates = allStates &^ (1 << StateListen)
	// subflowStates: TCP sockets that can be MPTCP subflows. TIME-WAIT and
	// NEW-SYN-RECV sockets are minisockets without ULP information.
	subflowStates = connStates &^ (1<<StateTimeWait | 1<<StateNewSynRecv)
)

// request is one SOCK_DIAG_BY_FAMILY dump request.
type request struct {
	family   uint8
	protocol uint32
	states   uint32
}

// mptcpRequest asks for the MPTCP connections of one family.
func mptcpRequest(family uint8) request {
	return request{family: family, protocol: unix.IPPROTO_MPTCP, states: connStates}
}

// subflowRequest asks for the TCP sockets of one family that may be subflows.
func subflowRequest(family uint8) request {
	return request{family: family, protocol: unix.IPPROTO_TCP, states: subflowStates}
}

// encode lays out struct inet_diag_req_v2 (the socket id left zero: a dump
// matches every socket) and, for a protocol above 255, the
// INET_DIAG_REQ_PROTOCOL attribute; the u8 field then says TCP, as the
// kernel's own MPTCP selftest does, and the kernel reads the attribute.
// Both ask for INET_DIAG_INFO: it carries struct mptcp_info for MPTCP
// sockets, and for TCP sockets it is what makes the kernel add the ULP
// information that names a subflow's connection.
func (r request) encode() []byte {
	b := make([]byte, reqSize, reqSize+8)
	b[0] = r.family
	b[2] = infoExt
	binary.NativeEndian.PutUint32(b[4:], r.states)
	if r.protocol <= 0xff {
		b[1] = uint8(r.protocol)
		return b
	}
	b[1] = unix.IPPROTO_TCP
	var attr [8]byte
	binary.NativeEndian.PutUint16(attr[0:], 8)
	binary.NativeEndian.PutUint16(attr[2:], reqAttrProtocol)
	binary.NativeEndian.PutUint32(attr[4:], r.protocol)
	return append(b, attr[:]...)
}

// message is struct inet_diag_msg: the part of a reply every socket has.
type message struct {
	state         State
	local, remote netip.AddrPort
	ifIndex       uint32
	inode         uint32
}

// parseMessage reads the fixed part of a reply and returns the attributes
// that follow it.
func parseMessage(b []byte) (message, []byte, error) {
	if len(b) < msgSize {
		return message{}, nil, fmt.Errorf("socket diagnostics message of %d bytes, want at least %d", len(b), msgSize)
	}
	family := b[0]
	m := message{state: State(b[1])}
	sport := binary.BigEndian.Uint16(b[4:])
	dport := binary.BigEndian.Uint16(b[6:])
	src, dst := b[8:24], b[24:40]
	switch family {
	case unix.AF_INET:
		m.local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(src[:4])), sport)
		m.remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(dst[:4])), dport)
	case unix.AF_INET6:
		// An IPv6 socket talking to an IPv4 peer reports IPv4-mapped
		// addresses; they are the IPv4 addresses the events and users see.
		m.local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(src)).Unmap(), sport)
		m.remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(dst)).Unmap(), dport)
	default:
		return message{}, nil, fmt.Errorf("socket diagnostics message of address family %d, want AF_INET or AF_INET6", family)
	}
	m.ifIndex = binary.NativeEndian.Uint32(b[40:])
	m.inode = binary.NativeEndian.Uint32(b[68:])
	return m, b[msgSize:], nil
}

// parseConnection decodes one reply of an MPTCP dump.
func parseConnection(b []byte) (Connection, error) {
	m, attrs, err := parseMessage(b)
	if err != nil {
		return Connection{}, err
	}
	c := Connection{Local: m.local, Remote: m.remote, State: m.state}
	ad, err := netlink.NewAttributeDecoder(attrs)
	if err != nil {
		return Connection{}, fmt.Errorf("decode MPTCP socket %s: %w", m.local, err)
	}
	var info []byte
	for ad.Next() {
		if ad.Type() == diagAttrInfo {
			info = ad.Bytes()
		}
	}
	if err := ad.Err(); err != nil {
		return Connection{}, fmt.Errorf("decode MPTCP socket %s: %w", m.local, err)
	}
	if len(info) < infoMinSize {
		return Connection{}, fmt.Errorf("MPTCP socket %s: MPTCP info of %d bytes, want at least %d", m.local, len(info), infoMinSize)
	}
	// Fields past the end of an older kernel's struct read as zero.
	full := make([]byte, max(len(info), infoBytesReceived+8))
	copy(full, info)
	ne := binary.NativeEndian
	c.Token = ne.Uint32(full[infoToken:])
	c.JoinedSubflows = int(full[infoSubflows])
	c.MaxSubflows = int(full[infoSubflowsMax])
	c.AddAddrSignal = int(full[infoAddAddrSignal])
	c.AddAddrAccepted = int(full[infoAddAddrAccepted])
	c.LocalAddrUsed = int(full[infoLocalAddrUsed])
	c.Fallback = ne.Uint32(full[infoFlags:])&infoFlagFallback != 0
	if c.ByteCounters = len(info) >= infoBytesReceived+8; c.ByteCounters {
		c.BytesSent = ne.Uint64(full[infoBytesSent:])
		c.BytesReceived = ne.Uint64(full[infoBytesReceived:])
	}
	return c, nil
}

// subflowInfo is what INET_ULP_INFO_MPTCP says about a subflow.
type subflowInfo struct {
	ulpName           string
	hasMPTCP          bool
	token             uint32
	flags             uint32
	localID, remoteID uint8
}

// subflowRecord is a subflow as the TCP dump shows it, before it is matched
// to its connection.
type subflowRecord struct {
	token uint32
	flags uint32
	Subflow
}

// parseSubflow decodes one reply of a TCP dump. ok is false for a TCP
// socket that is not an MPTCP subflow: no "mptcp" ULP, or no MPTCP
// information (before Linux 6.14 the kernel gives it only to callers with
// CAP_NET_ADMIN), or no token yet.
func parseSubflow(b []byte) (rec subflowRecord, ok bool, err error) {
	m, attrs, err := parseMessage(b)
	if err != nil {
		return subflowRecord{}, false, err
	}
	ad, err := netlink.NewAttributeDecoder(attrs)
	if err != nil {
		return subflowRecord{}, false, fmt.Errorf("decode TCP socket %s: %w", m.local, err)
	}
	var si subflowInfo
	var sent, received uint64
	for ad.Next() {
		switch ad.Type() {
		case diagAttrULPInfo:
			ad.Nested(si.decodeULP)
		case diagAttrInfo:
			if info := ad.Bytes(); len(info) >= tcpInfoBytesReceived+8 {
				sent = binary.NativeEndian.Uint64(info[tcpInfoBytesAcked:])
				received = binary.NativeEndian.Uint64(info[tcpInfoBytesReceived:])
			}
		}
	}
	if err := ad.Err(); err != nil {
		return subflowRecord{}, false, fmt.Errorf("decode TCP socket %s: %w", m.local, err)
	}
	if si.ulpName != mptcpULPName || !si.hasMPTCP || si.token == 0 {
		return subflowRecord{}, false, nil
	}
	return subflowRecord{
		token: si.token,
		flags: si.flags,
		Subflow: Subflow{
			Local:         m.local,
			Remote:        m.remote,
			State:         m.state,
			LocalID:       si.localID,
			RemoteID:      si.remoteID,
			Initial:       si.flags&subflowFlagsInitial != 0,
			Backup:        si.flags&subflowFlagsBackup != 0,
			IfIndex:       int(m.ifIndex),
			BytesSent:     sent,
			BytesReceived: received,
		},
	}, true, nil
}

// decodeULP reads INET_DIAG_ULP_INFO.
func (si *subflowInfo) decodeULP(ad *netlink.AttributeDecoder) error {
	for ad.Next() {
		switch ad.Type() {
		case ulpInfoName:
			si.ulpName = ad.String()
		case ulpInfoMPTCP:
			si.hasMPTCP = true
			ad.Nested(si.decodeMPTCP)
		}
	}
	return nil
}

// decodeMPTCP reads INET_ULP_INFO_MPTCP.
func (si *subflowInfo) decodeMPTCP(ad *netlink.AttributeDecoder) error {
	for ad.Next() {
		switch ad.Type() {
		case subflowAttrTokenLoc:
			si.token = ad.Uint32()
		case subflowAttrFlags:
			si.flags = ad.Uint32()
		case subflowAttrIDLoc:
			si.localID = ad.Uint8()
		case subflowAttrIDRem:
			si.remoteID = ad.Uint8()
		}
	}
	return nil
}

// errNoMPTCPDiag explains an MPTCP dump the kernel refused with ENOENT.
var errNoMPTCPDiag = errors.New("the kernel has no MPTCP socket diagnostics " +
	"(CONFIG_INET_MPTCP_DIAG, module mptcp_diag)")
