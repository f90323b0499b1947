package netlinkmptcp

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Config selects where a Client or an Events stream works.
type Config struct {
	// NetNS is a file descriptor of the network namespace to work in; 0
	// means the caller's. The caller keeps it open until Dial or
	// ListenEvents returns.
	NetNS int
	// Only, for ListenEvents, lets only these event types through: the
	// kernel drops the others before they wake the reader. Empty: all.
	Only []EventType
	// DropServerSide, with Only, also drops the CREATED and ESTABLISHED
	// events of connections this host accepted. Their later events carry
	// no side and still come.
	DropServerSide bool

	// readBuffer overrides the events socket's receive buffer size, so that
	// tests can overflow it.
	readBuffer int
}

// Client sends path-manager commands to the kernel. A Client is safe for
// concurrent use: requests are serialized on its socket.
type Client struct {
	conn     *genetlink.Conn
	familyID uint16
	family   familyInfo
	// quiet reads endpoints and limits without waking the runtime's
	// monitor thread; nil where it could not be opened (and in tests).
	quiet *quietSocket
}

// Dial opens a generic-netlink socket in cfg's namespace (nil: the caller's)
// and resolves the mptcp_pm family. On a kernel without it the error matches
// ErrNotSupported.
func Dial(cfg *Config) (*Client, error) {
	conn, err := dialConn(cfg)
	if err != nil {
		return nil, err
	}
	c, err := newClient(conn)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	// Without it, reads take the ordinary path.
	c.quiet, _ = newQuietSocket(cfg, c.familyID)
	return c, nil
}

// dialConn opens a generic-netlink socket with extended acknowledgements on,
// so that refusals come with the kernel's explanation.
func dialConn(cfg *Config) (*genetlink.Conn, error) {
	return dialConnBuffered(cfg, 0)
}

// dialConnBuffered is dialConn reading into a reused buffer of bufSize
// bytes (0: a buffer sized for each message, found by peeking first).
func dialConnBuffered(cfg *Config, bufSize int) (*genetlink.Conn, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	conn, err := genetlink.Dial(&netlink.Config{NetNS: cfg.NetNS, MessageBufferSize: bufSize})
	if err != nil {
		return nil, opError("open generic netlink socket", err)
	}
	if err := conn.SetOption(netlink.ExtendedAcknowledge, true); err != nil {
		_ = conn.Close()
		return nil, opError("enable netlink extended acknowledgements", err)
	}
	return conn, nil
}

// newClient resolves the family on conn; tests hand it a fake conn.
func newClient(conn *genetlink.Conn) (*Client, error) {
	f, err := resolveFamily(conn)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, familyID: f.id, family: f}, nil
}

// Close closes the sockets.
func (c *Client) Close() error {
	if c.quiet != nil {
		_ = c.quiet.close()
	}
	return c.conn.Close()
}

// execute is the one request path: it sends cmd with the attributes encode
// writes (encode may be nil) and returns the replies, or an *Error for op.
func (c *Client) execute(op string, cmd uint8, flags netlink.HeaderFlags, encode func(*netlink.AttributeEncoder)) ([]genetlink.Message, error) {
	var data []byte
	if encode != nil {
		ae := netlink.NewAttributeEncoder()
		encode(ae)
		var err error
		if data, err = ae.Encode(); err != nil {
			return nil, &Error{Op: op, Err: err}
		}
	}
	msg := genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: familyVersion},
		Data:   data,
	}
	msgs, err := c.conn.Execute(msg, c.familyID, netlink.Request|flags)
	if err != nil {
		return nil, opError(op, err)
	}
	return msgs, nil
}

// command sends a command that only needs the kernel's acknowledgement.
func (c *Client) command(op string, cmd uint8, encode func(*netlink.AttributeEncoder)) error {
	_, err := c.execute(op, cmd, netlink.Acknowledge, encode)
	return err
}

// Endpoints lists the namespace's endpoints (a GET_ADDR dump), in id order.
func (c *Client) Endpoints() ([]Endpoint, error) {
	const op = "list endpoints"
	// A refusal takes the ordinary path, which carries the kernel's text.
	if c.quiet != nil {
		if eps, err := c.quiet.endpoints(); err == nil {
			return eps, nil
		}
	}
	msgs, err := c.execute(op, cmdGetAddr, netlink.Dump, nil)
	if err != nil {
		return nil, err
	}
	eps, err := parseEndpointMessages(msgs)
	if err != nil {
		return nil, &Error{Op: op, Err: err}
	}
	return eps, nil
}

// Endpoint returns the endpoint with the given id. An unknown id is an error
// matching ErrNotFound.
func (c *Client) Endpoint(id uint8) (Endpoint, error) {
	op := fmt.Sprintf("get endpoint id %d", id)
	msgs, err := c.execute(op, cmdGetAddr, 0, func(ae *netlink.AttributeEncoder) {
		ae.Nested(attrAddr, idNest(id))
	})
	if err != nil {
		return Endpoint{}, err
	}
	if len(msgs) != 1 {
		return Endpoint{}, &Error{Op: op, Err: fmt.Errorf("kernel sent %d replies, want 1", len(msgs))}
	}
	e, err := parseEndpointMessage(msgs[0].Data)
	if err != nil {
		return Endpoint{}, &Error{Op: op, Err: err}
	}
	return e, nil
}

// AddEndpoint adds e and returns it as the kernel stored it, with its id.
// e.ID 0 lets the kernel choose the id. The kernel does not say which id it
// chose, so the endpoint is read back afterwards: by id when e.ID is set,
// else from a dump, by address and port.
//
// A second endpoint with the same address is ErrExists, as is an id already
// in use; a full table (MaxEndpoints) is ErrTableFull. Where the kernel
// answers all three alike (Linux 6.1), the table is read to tell which.
func (c *Client) AddEndpoint(e Endpoint) (Endpoint, error) {
	op := "add endpoint " + e.String()
	if !e.Addr.IsValid() {
		return Endpoint{}, &Error{Op: op, Err: errors.New("no address")}
	}
	if err := c.command(op, cmdAddAddr, func(ae *netlink.AttributeEncoder) {
		ae.Nested(attrAddr, endpointNest(e, false))
	}); err != nil {
		return Endpoint{}, c.explainAddRefusal(err, e)
	}
	if e.ID != 0 {
		stored, err := c.Endpoint(e.ID)
		if err != nil {
			return Endpoint{}, &Error{Op: op, Err: fmt.Errorf("added, then reading it back: %w", err)}
		}
		return stored, nil
	}
	eps, err := c.Endpoints()
	if err != nil {
		return Endpoint{}, &Error{Op: op, Err: fmt.Errorf("added, then reading it back: %w", err)}
	}
	for _, stored := range eps {
		if stored.Addr == e.Addr.WithZone("") && stored.Port == e.Port {
			return stored, nil
		}
	}
	return Endpoint{}, &Error{Op: op, Err: errors.New("added, but no longer in the endpoint table")}
}

// ambiguousAddText is the kernel's text with the EINVAL it gives, before
// distinct errnos, for a full table, a taken id and a taken address alike
// (6.1 says just this; some later kernels append the errno).
const ambiguousAddText = "too many addresses or duplicate one"

// explainAddRefusal tells an ambiguous ADD_ADDR refusal apart by reading
// the endpoint table: the *Error gets the sentinel found as its Kind, and
// the returned error says why. The table may have changed since the
// refusal: what is found is what the table showed just after it.
func (c *Client) explainAddRefusal(err error, e Endpoint) error {
	var kerr *Error
	if !errors.As(err, &kerr) || !errors.Is(kerr.Err, unix.EINVAL) || !strings.Contains(kerr.Message, ambiguousAddText) {
		return err
	}
	eps, derr := c.Endpoints()
	if derr != nil {
		return err
	}
	why, kind := classifyAddRefusal(eps, e)
	if kind == nil {
		return err
	}
	kerr.Kind = kind
	return fmt.Errorf("%w: %s", err, why)
}

// classifyAddRefusal tells why the kernel refused to add e to the table
// eps, checking in the kernel's own order: a full table, then a taken id,
// then a taken address (and port): why in words, and the sentinel, nil when
// none applies.
func classifyAddRefusal(eps []Endpoint, e Endpoint) (why string, kind error) {
	if len(eps) >= MaxEndpoints {
		return fmt.Sprintf("the table holds %d endpoints, the kernel's maximum", len(eps)), ErrTableFull
	}
	addr := e.Addr.WithZone("")
	for _, x := range eps {
		if e.ID != 0 && x.ID == e.ID {
			return fmt.Sprintf("id %d is taken by endpoint %s", x.ID, x.Addr), ErrExists
		}
	}
	for _, x := range eps {
		if x.Addr == addr && x.Port == e.Port {
			return fmt.Sprintf("endpoint id %d has this address", x.ID), ErrExists
		}
	}
	return "", nil
}

// DeleteEndpoint deletes the endpoint with the given id. The kernel
// withdraws its announcement and closes the subflows that use it; the
// connections carry on over their other subflows.
//
// Id 0 is refused without asking the kernel: DEL_ADDR with id 0 succeeds
// without deleting any endpoint. An unknown id matches ErrNotFound.
func (c *Client) DeleteEndpoint(id uint8) error {
	op := fmt.Sprintf("delete endpoint id %d", id)
	if id == 0 {
		return &Error{Op: op, Err: errors.New("id 0 names no endpoint (the kernel would acknowledge it and delete nothing)")}
	}
	return c.command(op, cmdDelAddr, func(ae *netlink.AttributeEncoder) {
		ae.Nested(attrAddr, idNest(id))
	})
}

// CloseInitialSubflows closes, in every connection, the initial subflow
// whose local address is addr, and withdraws that address (id 0) from the
// peers. The connections carry on over their other subflows. It is
// DEL_ADDR with id 0 and the address, the kernel's way to reach the one
// subflow no endpoint covers; deleting an endpoint leaves it alone. Use it
// when addr can no longer carry traffic (its link lost carrier, or the
// address is gone).
func (c *Client) CloseInitialSubflows(addr netip.Addr) error {
	op := "close initial subflows from " + addr.String()
	if !addr.IsValid() {
		return &Error{Op: op, Err: errors.New("no address")}
	}
	return c.command(op, cmdDelAddr, func(ae *netlink.AttributeEncoder) {
		ae.Nested(attrAddr, func(nae *netlink.AttributeEncoder) error {
			encodeAddr(nae, addr)
			nae.Uint8(addrAttrID, 0)
			return nil
		})
	})
}

// FlushEndpoints deletes every endpoint of the namespace, implicit ones
// included. Limits are kept; the kernel's id counter restarts at 1.
func (c *Client) FlushEndpoints() error {
	return c.command("flush endpoints", cmdFlushAddrs, nil)
}

// SetEndpointFlags changes the flags of the endpoint with the given id
// (kernel path manager). Only FlagBackup and FlagFullmesh can change, and the
// value sent replaces both: other bits are ignored by the kernel. Changing
// FlagBackup tells the peers of established connections (MP_PRIO). The kernel
// refuses FlagFullmesh on a signal endpoint.
func (c *Client) SetEndpointFlags(id uint8, flags Flags) error {
	op := fmt.Sprintf("set flags %s on endpoint id %d", flags, id)
	if id == 0 {
		return &Error{Op: op, Err: errors.New("id 0 names no endpoint")}
	}
	return c.command(op, cmdSetFlags, func(ae *netlink.AttributeEncoder) {
		ae.Nested(attrAddr, func(nae *netlink.AttributeEncoder) error {
			nae.Uint8(addrAttrID, id)
			nae.Uint32(addrAttrFlags, uint32(flags))
			return nil
		})
	})
}

// Limits returns the namespace's limits.
func (c *Client) Limits() (Limits, error) {
	const op = "get limits"
	if c.quiet != nil {
		if l, err := c.quiet.limits(); err == nil {
			return l, nil
		}
	}
	msgs, err := c.execute(op, cmdGetLimits, 0, nil)
	if err != nil {
		return Limits{}, err
	}
	if len(msgs) != 1 {
		return Limits{}, &Error{Op: op, Err: fmt.Errorf("kernel sent %d replies, want 1", len(msgs))}
	}
	l, err := parseLimits(msgs[0].Data)
	if err != nil {
		return Limits{}, &Error{Op: op, Err: err}
	}
	return l, nil
}

// parseLimits decodes a GET_LIMITS reply.
func parseLimits(b []byte) (Limits, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return Limits{}, fmt.Errorf("decode limits: %w", err)
	}
	var l Limits
	for ad.Next() {
		switch ad.Type() {
		case attrRcvAddAddrs:
			l.AddAddrAccepted = ad.Uint32()
		case attrSubflows:
			l.Subflows = ad.Uint32()
		}
	}
	if err := ad.Err(); err != nil {
		return Limits{}, fmt.Errorf("decode limits: %w", err)
	}
	return l, nil
}

// LimitsUpdate says which limits SetLimits changes: a nil field is left as
// it is.
type LimitsUpdate struct {
	Subflows        *uint32
	AddAddrAccepted *uint32
}

// Update is the LimitsUpdate that sets both limits to l's values.
func (l Limits) Update() LimitsUpdate {
	return LimitsUpdate{Subflows: &l.Subflows, AddAddrAccepted: &l.AddAddrAccepted}
}

// String lists the limits u sets ("subflows 4 add_addr_accepted 2"), or
// "nothing".
func (u LimitsUpdate) String() string {
	var parts []string
	if u.Subflows != nil {
		parts = append(parts, fmt.Sprintf("subflows %d", *u.Subflows))
	}
	if u.AddAddrAccepted != nil {
		parts = append(parts, fmt.Sprintf("add_addr_accepted %d", *u.AddAddrAccepted))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, " ")
}

// SetLimits changes the limits u sets. Values above MaxLimit are refused by
// the kernel (EINVAL).
func (c *Client) SetLimits(u LimitsUpdate) error {
	return c.command("set limits "+u.String(), cmdSetLimits, func(ae *netlink.AttributeEncoder) {
		if u.AddAddrAccepted != nil {
			ae.Uint32(attrRcvAddAddrs, *u.AddAddrAccepted)
		}
		if u.Subflows != nil {
			ae.Uint32(attrSubflows, *u.Subflows)
		}
	})
}

// The token commands drive the userspace path manager (Linux 5.19 and later,
// selected per namespace by sysctl net.mptcp.path_manager=userspace or
// net.mptcp.pm_type=1). A token names one connection on this host; it comes
// with the connection's events. Against a kernel-PM connection they fail
// with EINVAL and the kernel's text "userspace PM not selected".

// Announce announces e's address (and port) with id e.ID, which must not be
// 0, to the peer of the connection token (ADD_ADDR). FlagSignal is added to
// e.Flags, as the kernel requires it. No listening socket is opened.
func (c *Client) Announce(token uint32, e Endpoint) error {
	op := fmt.Sprintf("announce %s on token %08x", e, token)
	if !e.Addr.IsValid() {
		return &Error{Op: op, Err: errors.New("no address")}
	}
	e.Flags |= FlagSignal
	return c.command(op, cmdAnnounce, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrToken, token)
		ae.Nested(attrAddr, endpointNest(e, false))
	})
}

// Remove withdraws the address announced with localID from the connection
// token (RM_ADDR) and closes its subflows from that address.
func (c *Client) Remove(token uint32, localID uint8) error {
	return c.command(fmt.Sprintf("remove id %d on token %08x", localID, token), cmdRemove, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrToken, token)
		ae.Uint8(attrLocID, localID)
	})
}

// CreateSubflow opens a subflow of the connection token from local (address,
// and optionally ID, Port, Flags, IfIndex) to remote. A local address the
// connection already knows must be sent with its id.
func (c *Client) CreateSubflow(token uint32, local Endpoint, remote netip.AddrPort) error {
	op := fmt.Sprintf("create subflow %s -> %s on token %08x", local, remote, token)
	if !local.Addr.IsValid() || !remote.Addr().IsValid() {
		return &Error{Op: op, Err: errors.New("both addresses are needed")}
	}
	return c.command(op, cmdSubflowCreate, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrToken, token)
		ae.Nested(attrAddr, endpointNest(local, false))
		ae.Nested(attrAddrRemote, addrPortNest(remote))
	})
}

// DestroySubflow closes the subflow of the connection token between local
// and remote; both ports are needed. An unknown subflow matches ErrNotFound.
func (c *Client) DestroySubflow(token uint32, local, remote netip.AddrPort) error {
	op := fmt.Sprintf("destroy subflow %s -> %s on token %08x", local, remote, token)
	if !local.Addr().IsValid() || !remote.Addr().IsValid() {
		return &Error{Op: op, Err: errors.New("both addresses are needed")}
	}
	return c.command(op, cmdSubflowDestroy, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrToken, token)
		ae.Nested(attrAddr, addrPortNest(local))
		ae.Nested(attrAddrRemote, addrPortNest(remote))
	})
}

// SetSubflowFlags sets local.Flags (only FlagBackup has an effect) on the
// subflow of the connection token from local (address, optionally ID and
// Port) to remote, and tells the peer (MP_PRIO).
func (c *Client) SetSubflowFlags(token uint32, local Endpoint, remote netip.AddrPort) error {
	op := fmt.Sprintf("set flags of subflow %s -> %s on token %08x", local, remote, token)
	if !local.Addr.IsValid() || !remote.Addr().IsValid() {
		return &Error{Op: op, Err: errors.New("both addresses are needed")}
	}
	return c.command(op, cmdSetFlags, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrToken, token)
		ae.Nested(attrAddr, endpointNest(local, true))
		ae.Nested(attrAddrRemote, addrPortNest(remote))
	})
}
