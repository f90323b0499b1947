package lab

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MPTCP socket options (include/uapi/linux/mptcp.h), at level SOL_MPTCP.
const (
	mptcpInfoOpt         = 1 // MPTCP_INFO: struct mptcp_info
	mptcpSubflowAddrsOpt = 3 // MPTCP_SUBFLOW_ADDRS: mptcp_subflow_data + mptcp_subflow_addrs[]
)

// Layout of the option buffers. struct mptcp_subflow_data is four __u32
// (size_subflow_data, num_subflows, size_kernel, size_user), 8-byte
// aligned; struct mptcp_subflow_addrs is two unions the size of a
// __kernel_sockaddr_storage (128 bytes): local, then remote.
const (
	subflowDataSize  = 16
	sockaddrSize     = 128
	subflowAddrsSize = 2 * sockaddrSize
	// mptcpInfoSize is struct mptcp_info up to mptcpi_last_ack_recv (6.x).
	mptcpInfoSize = 96
)

// SubflowAddrs are one subflow's endpoints.
type SubflowAddrs struct {
	Local, Remote netip.AddrPort
}

func (s SubflowAddrs) String() string { return s.Local.String() + "->" + s.Remote.String() }

// MPTCPSubflows lists the subflows of an MPTCP connection with their
// addresses (getsockopt MPTCP_SUBFLOW_ADDRS, Linux 5.16+). IPv4-mapped
// addresses are returned as IPv4.
func MPTCPSubflows(c *net.TCPConn) ([]SubflowAddrs, error) {
	// Room for the kernel's maximum of subflows and then some; the kernel
	// reports how many there are, and we ask again if that was too few.
	for room := 16; ; room *= 2 {
		buf := make([]byte, subflowDataSize+room*subflowAddrsSize)
		binary.NativeEndian.PutUint32(buf[0:], subflowDataSize)
		binary.NativeEndian.PutUint32(buf[12:], subflowAddrsSize)
		if _, err := getsockopt(c, unix.SOL_MPTCP, mptcpSubflowAddrsOpt, buf); err != nil {
			return nil, fmt.Errorf("get MPTCP subflow addresses of %v: %w", c.LocalAddr(), err)
		}
		num := int(binary.NativeEndian.Uint32(buf[4:]))
		size := int(binary.NativeEndian.Uint32(buf[12:]))
		if num > room {
			continue
		}
		if size < subflowAddrsSize {
			return nil, fmt.Errorf("get MPTCP subflow addresses of %v: kernel entries are %d bytes, want %d", c.LocalAddr(), size, subflowAddrsSize)
		}
		out := make([]SubflowAddrs, 0, num)
		for i := range num {
			e := buf[subflowDataSize+i*size:]
			out = append(out, SubflowAddrs{
				Local:  parseSockaddr(e[:sockaddrSize]),
				Remote: parseSockaddr(e[sockaddrSize : 2*sockaddrSize]),
			})
		}
		return out, nil
	}
}

// parseSockaddr reads a struct sockaddr_in or sockaddr_in6 (family in host
// order, port in network order).
func parseSockaddr(b []byte) netip.AddrPort {
	port := binary.BigEndian.Uint16(b[2:4])
	switch binary.NativeEndian.Uint16(b[0:2]) {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])).Unmap(), port)
	}
	return netip.AddrPort{}
}

// MPTCPConnInfo is the connection-level state of an MPTCP socket (struct
// mptcp_info). Fields the running kernel does not report are zero.
type MPTCPConnInfo struct {
	// Subflows is the number of subflows besides the first one
	// (mptcpi_subflows); SubflowsTotal counts all current ones, the first
	// included (mptcpi_subflows_total, Linux 6.10+).
	Subflows, SubflowsTotal int
	// SubflowsMax and AddAddrAcceptedMax are the limits that applied;
	// AddAddrSignal and AddAddrAccepted are the addresses announced and
	// accepted so far; AddAddrSignalMax is the number of signal endpoints.
	SubflowsMax, AddAddrSignal, AddAddrAccepted, AddAddrSignalMax, AddAddrAcceptedMax int
	// LocalAddrUsed is mptcpi_local_addr_used (2 here for a connection
	// with one joined subflow: the first subflow's address counts);
	// LocalAddrMax is the number of subflow endpoints in the namespace,
	// both families (mptcpi_local_addr_max).
	LocalAddrUsed, LocalAddrMax int
	// Fallback says the connection fell back to plain TCP.
	Fallback bool
	// RemoteKeyReceived says the peer's key arrived (fully established).
	RemoteKeyReceived bool
	// ChecksumsEnabled says DSS checksums are in use.
	ChecksumsEnabled bool
	Token            uint32
	// WriteSeq, SndUna and RcvNxt are data sequence numbers.
	WriteSeq, SndUna, RcvNxt uint64
	// Retransmits counts retransmitted data; BytesRetrans,
	// BytesSent, BytesReceived and BytesAcked are connection-level bytes.
	Retransmits                                        uint32
	BytesRetrans, BytesSent, BytesReceived, BytesAcked uint64
	// ByteCounters says the kernel reported Retransmits and the byte
	// counters (Linux 6.5+), and HasSubflowsTotal SubflowsTotal (6.10+):
	// older kernels' struct is shorter, and the fields are then unknown.
	ByteCounters, HasSubflowsTotal bool
}

// MPTCPInfo reads the connection-level MPTCP state (getsockopt MPTCP_INFO).
func MPTCPInfo(c *net.TCPConn) (MPTCPConnInfo, error) {
	buf := make([]byte, mptcpInfoSize)
	n, err := getsockopt(c, unix.SOL_MPTCP, mptcpInfoOpt, buf)
	if err != nil {
		return MPTCPConnInfo{}, fmt.Errorf("get MPTCP info of %v: %w", c.LocalAddr(), err)
	}
	// Older kernels return a shorter struct; what they leave out stays 0.
	clear(buf[n:])
	ne := binary.NativeEndian
	flags := ne.Uint32(buf[8:])
	return MPTCPConnInfo{
		Subflows:           int(buf[0]),
		AddAddrSignal:      int(buf[1]),
		AddAddrAccepted:    int(buf[2]),
		SubflowsMax:        int(buf[3]),
		AddAddrSignalMax:   int(buf[4]),
		AddAddrAcceptedMax: int(buf[5]),
		Fallback:           flags&1 != 0,
		RemoteKeyReceived:  flags&2 != 0,
		Token:              ne.Uint32(buf[12:]),
		WriteSeq:           ne.Uint64(buf[16:]),
		SndUna:             ne.Uint64(buf[24:]),
		RcvNxt:             ne.Uint64(buf[32:]),
		LocalAddrUsed:      int(buf[40]),
		LocalAddrMax:       int(buf[41]),
		ChecksumsEnabled:   buf[42] != 0,
		Retransmits:        ne.Uint32(buf[44:]),
		BytesRetrans:       ne.Uint64(buf[48:]),
		BytesSent:          ne.Uint64(buf[56:]),
		BytesReceived:      ne.Uint64(buf[64:]),
		BytesAcked:         ne.Uint64(buf[72:]),
		SubflowsTotal:      int(buf[80]),
		ByteCounters:       n >= 80,
		HasSubflowsTotal:   n >= 81,
	}, nil
}

// getsockopt reads a socket option of c into buf and returns the length
// the kernel wrote.
func getsockopt(c *net.TCPConn, level, name int, buf []byte) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	size := uint32(len(buf))
	var errno unix.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, uintptr(level), uintptr(name),
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
	}); err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return int(size), nil
}
