// Package sockdiag lists the MPTCP connections of a network namespace and
// their subflows from the kernel's socket diagnostics (NETLINK_SOCK_DIAG),
// the interface `ss -M` reads.
//
// Connections come from a dump of the MPTCP sockets (protocol
// IPPROTO_MPTCP), each with its token and counters from struct mptcp_info.
// Subflows are TCP sockets whose upper-layer protocol is "mptcp": a dump of
// TCP sockets that asks for INET_DIAG_INFO makes the kernel add their MPTCP
// information (token, address ids, flags), and the token ties each subflow
// to its connection.
//
// The two dumps are not one snapshot: a connection may open or close
// between them. A subflow whose connection was not listed is left out, and
// a connection may be listed without subflows.
//
// The kernel reports the tokens and address ids of subflows only to
// callers with CAP_NET_ADMIN before Linux 6.14; without it connections are
// listed without subflows. The MPTCP dump needs Linux 5.9 or later
// (mptcp_diag, CONFIG_INET_MPTCP_DIAG).
package sockdiag

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Config selects the network namespace ListMPTCP looks at.
type Config struct {
	// NetNS is a file descriptor of the network namespace; 0 means the
	// caller's. The caller keeps it open until ListMPTCP returns.
	NetNS int
}

// Connection is one MPTCP connection: an MPTCP socket that is not a
// listener. Addresses are as users write them: IPv4-mapped IPv6 addresses
// are returned as IPv4.
type Connection struct {
	// Token names the connection on this host (both ends have their own).
	Token uint32
	// Local and Remote are the MPTCP socket's addresses and ports, which
	// are those of its initial subflow.
	Local, Remote netip.AddrPort
	// State is the MPTCP socket's state.
	State State
	// ServerSide says this host accepted the connection. It is known from
	// the initial subflow only, so it is false once that subflow is gone.
	ServerSide bool
	// JoinedSubflows is the number of subflows besides the initial one
	// (mptcpi_subflows), MaxSubflows the limit that applies to them.
	JoinedSubflows, MaxSubflows int
	// AddAddrSignal counts the addresses this host announced to the peer,
	// AddAddrAccepted the peer's announcements it accepted.
	AddAddrSignal, AddAddrAccepted int
	// LocalAddrUsed counts the local endpoints the connection's subflows use.
	LocalAddrUsed int
	// Fallback says the connection fell back to plain TCP.
	Fallback bool
	// BytesSent and BytesReceived count the connection's data when
	// ByteCounters is set. Kernels before 6.5 (Debian 12's 6.1) do not
	// count them: the struct mptcp_info they report is too short, and the
	// fields are zero but unknown, not a count of nothing.
	BytesSent, BytesReceived uint64
	ByteCounters             bool
	// Subflows are the connection's TCP subflows, the initial one first.
	Subflows []Subflow
}

// Subflow is one TCP subflow of an MPTCP connection.
type Subflow struct {
	// Local and Remote are the subflow's addresses and ports.
	Local, Remote netip.AddrPort
	// State is the subflow's TCP state.
	State State
	// LocalID and RemoteID are the address ids at both ends; a joined
	// subflow's LocalID is the id of the endpoint it was opened from.
	LocalID, RemoteID uint8
	// Initial says this is the subflow the connection started with
	// (MP_CAPABLE), as opposed to a joined one (MP_JOIN).
	Initial bool
	// Backup says either end asked for the subflow to be a backup, which
	// is how the kernel's scheduler treats it.
	Backup bool
	// IfIndex is the device the subflow is bound to, 0 if none.
	IfIndex int
	// BytesSent counts the bytes the peer acknowledged over this subflow
	// (tcpi_bytes_acked: retransmissions count once; the SYN of a subflow
	// this end opened, and a FIN, count one each), and
	// BytesReceived those received in order (tcpi_bytes_received), since
	// the subflow opened: TCP payload, which is the connection's data
	// (and, rarely, the same data again on another subflow after a
	// reinjection). Zero for a socket the kernel gave no tcp_info.
	BytesSent, BytesReceived uint64
}

// ListMPTCP returns every MPTCP connection in cfg's namespace (nil: the
// caller's), IPv4 and IPv6, with its subflows, ordered by token.
func ListMPTCP(cfg *Config) ([]Connection, error) {
	conn, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return list(conn)
}

// dial opens a socket diagnostics connection in cfg's namespace.
func dial(cfg *Config) (*netlink.Conn, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	conn, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, &netlink.Config{NetNS: cfg.NetNS})
	if err != nil {
		return nil, fmt.Errorf("open socket diagnostics netlink socket: %w", err)
	}
	return conn, nil
}

// list runs the dumps on conn: MPTCP sockets, then TCP sockets, of both
// families. A kernel without IPv6 answers the IPv6 dumps with ENOENT, which
// the IPv4 MPTCP dump has shown is not a missing MPTCP diagnostics module.
func list(conn *netlink.Conn) ([]Connection, error) {
	families := []uint8{unix.AF_INET, unix.AF_INET6}
	var conns []Connection
	for _, family := range families {
		msgs, err := dump(conn, mptcpRequest(family))
		switch {
		case errors.Is(err, unix.ENOENT) && family == unix.AF_INET6:
			families = families[:1]
			continue
		case errors.Is(err, unix.ENOENT):
			return nil, fmt.Errorf("list MPTCP connections (%s): %w: %w", familyName(family), errNoMPTCPDiag, err)
		case err != nil:
			return nil, fmt.Errorf("list MPTCP connections (%s): %w", familyName(family), err)
		}
		for _, m := range msgs {
			c, err := parseConnection(m.Data)
			if err != nil {
				return nil, fmt.Errorf("list MPTCP connections (%s): %w", familyName(family), err)
			}
			conns = append(conns, c)
		}
	}
	var subflows []subflowRecord
	for _, family := range families {
		msgs, err := dump(conn, subflowRequest(family))
		if err != nil {
			return nil, fmt.Errorf("list MPTCP subflows (%s TCP sockets): %w", familyName(family), err)
		}
		for _, m := range msgs {
			rec, ok, err := parseSubflow(m.Data)
			if err != nil {
				return nil, fmt.Errorf("list MPTCP subflows (%s TCP sockets): %w", familyName(family), err)
			}
			if ok {
				subflows = append(subflows, rec)
			}
		}
	}
	return assemble(conns, subflows), nil
}

// dump sends one dump request and returns the kernel's replies.
func dump(conn *netlink.Conn, r request) ([]netlink.Message, error) {
	return conn.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  unix.SOCK_DIAG_BY_FAMILY,
			Flags: netlink.Request | netlink.Dump,
		},
		Data: r.encode(),
	})
}

// assemble gives each connection its subflows, matched by token, and puts
// everything in a stable order: connections by token, the initial subflow
// first, then joined ones by address ids and addresses.
func assemble(conns []Connection, subflows []subflowRecord) []Connection {
	byToken := make(map[uint32]int, len(conns))
	for i, c := range conns {
		byToken[c.Token] = i
	}
	for _, rec := range subflows {
		i, ok := byToken[rec.token]
		if !ok {
			continue
		}
		c := &conns[i]
		c.Subflows = append(c.Subflows, rec.Subflow)
		if rec.Initial && rec.flags&subflowFlagMCapLoc == 0 {
			c.ServerSide = true
		}
	}
	for i := range conns {
		slices.SortFunc(conns[i].Subflows, CompareSubflows)
	}
	slices.SortFunc(conns, func(a, b Connection) int { return cmp.Compare(a.Token, b.Token) })
	return conns
}

// CompareSubflows orders a connection's subflows: the initial one first,
// then joined ones by ids and addresses.
func CompareSubflows(a, b Subflow) int {
	if a.Initial != b.Initial {
		if a.Initial {
			return -1
		}
		return 1
	}
	return cmp.Or(
		cmp.Compare(a.LocalID, b.LocalID),
		cmp.Compare(a.RemoteID, b.RemoteID),
		a.Local.Compare(b.Local),
		a.Remote.Compare(b.Remote),
	)
}

func familyName(family uint8) string {
	if family == unix.AF_INET6 {
		return "IPv6"
	}
	return "IPv4"
}

// State is a TCP state as the kernel numbers it, used by MPTCP sockets too.
type State uint8

// TCP states (include/net/tcp_states.h).
const (
	StateEstablished State = 1
	StateSynSent     State = 2
	StateSynRecv     State = 3
	StateFinWait1    State = 4
	StateFinWait2    State = 5
	StateTimeWait    State = 6
	StateClose       State = 7
	StateCloseWait   State = 8
	StateLastAck     State = 9
	StateListen      State = 10
	StateClosing     State = 11
	StateNewSynRecv  State = 12
)

var stateNames = [...]string{
	StateEstablished: "established",
	StateSynSent:     "syn-sent",
	StateSynRecv:     "syn-recv",
	StateFinWait1:    "fin-wait-1",
	StateFinWait2:    "fin-wait-2",
	StateTimeWait:    "time-wait",
	StateClose:       "close",
	StateCloseWait:   "close-wait",
	StateLastAck:     "last-ack",
	StateListen:      "listen",
	StateClosing:     "closing",
	StateNewSynRecv:  "new-syn-recv",
}

// String is the state's name in lower case ("established", "fin-wait-1"),
// "state(N)" for a number the kernel did not have when this was written.
func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// ListMPTCPListeners lists the local addresses of the MPTCP listening
// sockets of cfg's namespace (nil: the caller's), ordered.
func ListMPTCPListeners(cfg *Config) ([]netip.AddrPort, error) {
	conn, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return listListeners(conn)
}

func listListeners(conn *netlink.Conn) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		msgs, err := dump(conn, request{family: family, protocol: unix.IPPROTO_MPTCP, states: 1 << StateListen})
		switch {
		case errors.Is(err, unix.ENOENT) && family == unix.AF_INET6:
			continue // no IPv6 in this kernel
		case errors.Is(err, unix.ENOENT):
			return nil, fmt.Errorf("list MPTCP listeners (%s): %w: %w", familyName(family), errNoMPTCPDiag, err)
		case err != nil:
			return nil, fmt.Errorf("list MPTCP listeners (%s): %w", familyName(family), err)
		}
		for _, m := range msgs {
			msg, _, err := parseMessage(m.Data)
			if err != nil {
				return nil, fmt.Errorf("list MPTCP listeners (%s): %w", familyName(family), err)
			}
			out = append(out, msg.local)
		}
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return out, nil
}
