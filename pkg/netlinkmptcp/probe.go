package netlinkmptcp

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ProbeFeatures returns the features of the kernel that serves cfg's
// namespace (nil: the caller's). What the kernel can tell without side
// effects is asked: the family's multicast groups (Events) and commands
// (UserspacePM) from the generic-netlink controller, GET_ADDR's policy
// (TokenInGetAddr), and the length of struct mptcp_info (ByteCounters,
// SubflowsTotal) from a socket that is never connected. No endpoint is
// added and no path-manager command is sent. The rest comes from the
// kernel's version, as KernelFeatures.
func ProbeFeatures(cfg *Config) (Features, error) {
	f, err := KernelFeatures()
	if err != nil {
		return Features{}, err
	}
	conn, err := dialConn(cfg)
	if err != nil {
		return Features{}, err
	}
	defer conn.Close()
	fam, err := resolveFamily(conn)
	if err != nil {
		return Features{}, err
	}
	f.applyFamily(fam)
	if attrs, err := commandAttrs(conn, fam.id, cmdGetAddr); err == nil && attrs != nil {
		f.TokenInGetAddr = tokenInGetAddr(attrs)
	}
	if n, err := mptcpInfoSize(); err == nil {
		f.applyInfoSize(n)
	}
	return f, nil
}

// applyFamily sets what the family's description shows. The event group
// came in the same release (5.12) as user-chosen ids and ports.
func (f *Features) applyFamily(fam familyInfo) {
	f.Events = fam.eventsGroup() != 0
	f.UserChosenIDs = f.UserChosenIDs || f.Events
	f.Ports = f.Ports || f.Events
	f.UserspacePM = fam.commands[cmdAnnounce] && fam.commands[cmdRemove] &&
		fam.commands[cmdSubflowCreate] && fam.commands[cmdSubflowDestroy]
}

// tokenInGetAddr reads GET_ADDR's policy: it accepts a TOKEN (6.9+). Before
// Linux 6.7 every command shared the family's one policy, which names
// TOKEN (for the userspace commands) and SUBFLOWS alike; a GET_ADDR policy
// of its own names no SUBFLOWS.
func tokenInGetAddr(attrs map[uint16]bool) bool {
	return attrs[attrToken] && !attrs[attrSubflows]
}

// Lengths of struct mptcp_info (include/uapi/linux/mptcp.h) after the
// fields that came with later kernels.
const (
	infoSizeByteCounters  = 80 // mptcpi_retransmits .. mptcpi_bytes_acked (6.5)
	infoSizeSubflowsTotal = 81 // mptcpi_subflows_total (6.10)
)

// applyInfoSize sets what the kernel's struct mptcp_info holds.
func (f *Features) applyInfoSize(n int) {
	f.ByteCounters = n >= infoSizeByteCounters
	f.SubflowsTotal = n >= infoSizeSubflowsTotal
}

// mptcpInfoSize is the length of the kernel's struct mptcp_info: MPTCP_INFO
// on an MPTCP socket that is never connected returns as much of it as was
// asked for, up to its size.
func mptcpInfoSize() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_MPTCP)
	if err != nil {
		return 0, os.NewSyscallError("socket IPPROTO_MPTCP", err)
	}
	defer unix.Close(fd)
	const mptcpInfo = 1 // MPTCP_INFO
	buf := make([]byte, 512)
	size := uint32(len(buf))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_MPTCP, mptcpInfo,
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return 0, fmt.Errorf("getsockopt MPTCP_INFO: %w", errno)
	}
	return int(size), nil
}

// Missing lists, one line each, what the kernel lacks of what mptcpgd uses
// or shows, with the version that brought it and what its absence means.
func (f Features) Missing() []string {
	var out []string
	add := func(has bool, what string) {
		if !has {
			out = append(out, what)
		}
	}
	add(f.Events, "path-manager events (Linux 5.12): mptcpgd cannot run")
	add(f.Fullmesh, "fullmesh endpoints (Linux 5.15): the fullmesh flag is refused")
	add(f.ListenerEvents, "listener events (Linux 6.2): listening sockets are not shown")
	add(f.Laminar, "laminar endpoints (Linux 6.18): the laminar flag is refused")
	return out
}
