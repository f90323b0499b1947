package sockdiag

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Socket is a TCP or MPTCP socket as the kernel lists it, with the inode
// that ties it to a process's descriptor ("socket:[INODE]" in
// /proc/PID/fd). Sockets that are neither listening nor connecting or
// connected are not listed: the kernel's dumps walk its lookup tables.
type Socket struct {
	Inode uint32
	// MPTCP says the socket is an MPTCP socket (IPPROTO_MPTCP), as
	// opposed to a plain TCP one.
	MPTCP         bool
	State         State
	Local, Remote netip.AddrPort
	// Fallback: an MPTCP connection that fell back to TCP (the peer, or
	// a middlebox, does not do MPTCP).
	Fallback bool
	// JoinedSubflows counts an MPTCP connection's subflows besides the
	// initial one.
	JoinedSubflows int
}

// ListSockets lists every TCP and MPTCP socket of cfg's namespace (nil:
// the caller's), listeners included. The TCP subflows of MPTCP sockets are
// left out: the kernel grafts them onto their MPTCP socket, whose inode
// they report.
func ListSockets(cfg *Config) ([]Socket, error) {
	conn, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return listSockets(conn)
}

// TCP is dumped before MPTCP: an MPTCP socket made between the two dumps
// then shows in the second alone, as MPTCP; dumped the other way round, its
// TCP subflow would show alone, as a plain TCP socket.
func listSockets(conn *netlink.Conn) ([]Socket, error) {
	var mptcp, tcp []Socket
	mptcpInodes := map[uint32]bool{}
	for _, protocol := range []uint32{unix.IPPROTO_TCP, unix.IPPROTO_MPTCP} {
		for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
			msgs, err := dump(conn, request{family: family, protocol: protocol, states: allStates})
			switch {
			case errors.Is(err, unix.ENOENT) && family == unix.AF_INET6:
				continue // no IPv6 in this kernel
			case errors.Is(err, unix.ENOENT) && protocol == unix.IPPROTO_MPTCP:
				return nil, fmt.Errorf("list MPTCP sockets (%s): %w: %w", familyName(family), errNoMPTCPDiag, err)
			case err != nil:
				return nil, fmt.Errorf("list %s sockets (%s): %w", protocolName(protocol), familyName(family), err)
			}
			for _, m := range msgs {
				s, err := parseSocket(m.Data, protocol == unix.IPPROTO_MPTCP)
				if err != nil {
					return nil, fmt.Errorf("list %s sockets (%s): %w", protocolName(protocol), familyName(family), err)
				}
				if s.MPTCP {
					mptcpInodes[s.Inode] = true
					mptcp = append(mptcp, s)
				} else {
					tcp = append(tcp, s)
				}
			}
		}
	}
	// An MPTCP socket's subflows share its inode: they are its, not
	// sockets of their own.
	for _, s := range tcp {
		if s.Inode == 0 || !mptcpInodes[s.Inode] {
			mptcp = append(mptcp, s)
		}
	}
	return mptcp, nil
}

// parseSocket decodes one reply of a dump; an MPTCP socket's struct
// mptcp_info, when there is one, adds its fallback flag and subflows.
func parseSocket(b []byte, mptcp bool) (Socket, error) {
	m, _, err := parseMessage(b)
	if err != nil {
		return Socket{}, err
	}
	s := Socket{Inode: m.inode, MPTCP: mptcp, State: m.state, Local: m.local, Remote: m.remote}
	if mptcp && m.state != StateListen {
		c, err := parseConnection(b)
		if err != nil {
			return Socket{}, err
		}
		s.Fallback, s.JoinedSubflows = c.Fallback, c.JoinedSubflows
	}
	return s, nil
}

func protocolName(p uint32) string {
	if p == unix.IPPROTO_MPTCP {
		return "MPTCP"
	}
	return "TCP"
}
