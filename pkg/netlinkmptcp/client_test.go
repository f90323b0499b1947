package netlinkmptcp

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Address nests as the kernel expects them, built by hand: FAMILY u16 host
// order, ADDR4 network order, PORT u16 host order, IF_IDX s32.
var (
	famIPv4 = attr(addrAttrFamily, hostU16(unix.AF_INET))
	famIPv6 = attr(addrAttrFamily, hostU16(unix.AF_INET6))
	addr4   = func(s string) []byte { a := netip.MustParseAddr(s).As4(); return attr(addrAttrAddr4, a[:]) }
	addr6   = func(s string) []byte { a := netip.MustParseAddr(s).As16(); return attr(addrAttrAddr6, a[:]) }
	id      = func(v uint8) []byte { return attr(addrAttrID, []byte{v}) }
	port    = func(v uint16) []byte { return attr(addrAttrPort, hostU16(v)) }
	flags   = func(v Flags) []byte { return attr(addrAttrFlags, hostU32(uint32(v))) }
	ifIdx   = func(v int32) []byte { return attr(addrAttrIfIdx, hostU32(uint32(v))) }
	token   = attr(attrToken, hostU32(0x8badf00d))
)

// endpointReply is a GET_ADDR reply as the kernel writes it.
func endpointReply(e Endpoint) []byte {
	attrs := [][]byte{}
	if e.Addr.Is4() {
		attrs = append(attrs, famIPv4)
	} else {
		attrs = append(attrs, famIPv6)
	}
	attrs = append(attrs, id(e.ID), flags(e.Flags), port(e.Port))
	if e.IfIndex != 0 {
		attrs = append(attrs, ifIdx(e.IfIndex))
	}
	if e.Addr.Is4() {
		attrs = append(attrs, addr4(e.Addr.String()))
	} else {
		attrs = append(attrs, addr6(e.Addr.String()))
	}
	return nest(attrAddr, attrs...)
}

// wantRequest is a request a test expects, in order.
type wantRequest struct {
	cmd   uint8
	flags netlink.HeaderFlags
	attrs []byte
}

const (
	ack  = netlink.Request | netlink.Acknowledge
	get  = netlink.Request
	dump = netlink.Request | netlink.Dump
)

func TestRequests(t *testing.T) {
	stored := Endpoint{ID: 3, Addr: netip.MustParseAddr("192.0.2.2"), Port: 8080, Flags: FlagSubflow | FlagBackup, IfIndex: 42}
	other := Endpoint{ID: 1, Addr: netip.MustParseAddr("198.51.100.7"), Flags: FlagSignal}
	stored6 := Endpoint{ID: 4, Addr: netip.MustParseAddr("2001:db8::2"), Flags: FlagSignal}

	tests := []struct {
		name string
		call func(c *Client) error
		want []wantRequest
	}{
		{
			name: "add endpoint with id, port, flags and device",
			call: func(c *Client) error { _, err := c.AddEndpoint(stored); return err },
			want: []wantRequest{
				{cmdAddAddr, ack, nest(attrAddr, famIPv4, addr4("192.0.2.2"), id(3), port(8080), flags(FlagSubflow|FlagBackup), ifIdx(42))},
				{cmdGetAddr, get, nest(attrAddr, id(3))},
			},
		},
		{
			name: "add IPv6 endpoint without id",
			call: func(c *Client) error {
				_, err := c.AddEndpoint(Endpoint{Addr: stored6.Addr, Flags: FlagSignal})
				return err
			},
			want: []wantRequest{
				{cmdAddAddr, ack, nest(attrAddr, famIPv6, addr6("2001:db8::2"), flags(FlagSignal))},
				{cmdGetAddr, dump, nil},
			},
		},
		{
			name: "add endpoint without flags",
			call: func(c *Client) error { _, err := c.AddEndpoint(Endpoint{ID: 3, Addr: stored.Addr}); return err },
			want: []wantRequest{
				{cmdAddAddr, ack, nest(attrAddr, famIPv4, addr4("192.0.2.2"), id(3))},
				{cmdGetAddr, get, nest(attrAddr, id(3))},
			},
		},
		{
			name: "get endpoint",
			call: func(c *Client) error { _, err := c.Endpoint(3); return err },
			want: []wantRequest{{cmdGetAddr, get, nest(attrAddr, id(3))}},
		},
		{
			name: "list endpoints",
			call: func(c *Client) error { _, err := c.Endpoints(); return err },
			want: []wantRequest{{cmdGetAddr, dump, nil}},
		},
		{
			name: "delete endpoint by id",
			call: func(c *Client) error { return c.DeleteEndpoint(3) },
			want: []wantRequest{{cmdDelAddr, ack, nest(attrAddr, id(3))}},
		},
		{
			name: "close initial subflows from an address",
			call: func(c *Client) error { return c.CloseInitialSubflows(netip.MustParseAddr("192.0.2.2")) },
			want: []wantRequest{{cmdDelAddr, ack, nest(attrAddr, famIPv4, addr4("192.0.2.2"), id(0))}},
		},
		{
			name: "flush endpoints",
			call: func(c *Client) error { return c.FlushEndpoints() },
			want: []wantRequest{{cmdFlushAddrs, ack, nil}},
		},
		{
			name: "set endpoint flags",
			call: func(c *Client) error { return c.SetEndpointFlags(3, FlagSubflow|FlagBackup) },
			want: []wantRequest{{cmdSetFlags, ack, nest(attrAddr, id(3), flags(FlagSubflow|FlagBackup))}},
		},
		{
			name: "clear endpoint flags",
			call: func(c *Client) error { return c.SetEndpointFlags(3, 0) },
			want: []wantRequest{{cmdSetFlags, ack, nest(attrAddr, id(3), flags(0))}},
		},
		{
			name: "get limits",
			call: func(c *Client) error { _, err := c.Limits(); return err },
			want: []wantRequest{{cmdGetLimits, get, nil}},
		},
		{
			name: "set both limits",
			call: func(c *Client) error { return c.SetLimits(LimitsUpdate{Subflows: u32(4), AddAddrAccepted: u32(8)}) },
			want: []wantRequest{{cmdSetLimits, ack, concat(attr(attrRcvAddAddrs, hostU32(8)), attr(attrSubflows, hostU32(4)))}},
		},
		{
			name: "set subflows limit alone",
			call: func(c *Client) error { return c.SetLimits(LimitsUpdate{Subflows: u32(0)}) },
			want: []wantRequest{{cmdSetLimits, ack, attr(attrSubflows, hostU32(0))}},
		},
		{
			name: "set add_addr_accepted limit alone",
			call: func(c *Client) error { return c.SetLimits(LimitsUpdate{AddAddrAccepted: u32(2)}) },
			want: []wantRequest{{cmdSetLimits, ack, attr(attrRcvAddAddrs, hostU32(2))}},
		},
		{
			name: "announce adds the signal flag",
			call: func(c *Client) error {
				return c.Announce(0x8badf00d, Endpoint{ID: 7, Addr: netip.MustParseAddr("192.0.2.2"), Port: 443})
			},
			want: []wantRequest{{cmdAnnounce, ack, concat(token, nest(attrAddr, famIPv4, addr4("192.0.2.2"), id(7), port(443), flags(FlagSignal)))}},
		},
		{
			name: "remove",
			call: func(c *Client) error { return c.Remove(0x8badf00d, 7) },
			want: []wantRequest{{cmdRemove, ack, concat(token, attr(attrLocID, []byte{7}))}},
		},
		{
			name: "create subflow",
			call: func(c *Client) error {
				return c.CreateSubflow(0x8badf00d, Endpoint{ID: 5, Addr: netip.MustParseAddr("198.51.100.2"), IfIndex: 42},
					netip.MustParseAddrPort("192.0.2.1:8080"))
			},
			want: []wantRequest{{cmdSubflowCreate, ack, concat(token,
				nest(attrAddr, famIPv4, addr4("198.51.100.2"), id(5), ifIdx(42)),
				nest(attrAddrRemote, famIPv4, addr4("192.0.2.1"), port(8080)))}},
		},
		{
			name: "destroy IPv6 subflow",
			call: func(c *Client) error {
				return c.DestroySubflow(0x8badf00d, netip.MustParseAddrPort("[2001:db8::2]:45000"), netip.MustParseAddrPort("[2001:db8::1]:8080"))
			},
			want: []wantRequest{{cmdSubflowDestroy, ack, concat(token,
				nest(attrAddr, famIPv6, addr6("2001:db8::2"), port(45000)),
				nest(attrAddrRemote, famIPv6, addr6("2001:db8::1"), port(8080)))}},
		},
		{
			name: "set subflow flags",
			call: func(c *Client) error {
				return c.SetSubflowFlags(0x8badf00d, Endpoint{ID: 5, Addr: netip.MustParseAddr("198.51.100.2"), Port: 45000, Flags: FlagBackup},
					netip.MustParseAddrPort("192.0.2.1:8080"))
			},
			want: []wantRequest{{cmdSetFlags, ack, concat(token,
				nest(attrAddr, famIPv4, addr4("198.51.100.2"), id(5), port(45000), flags(FlagBackup)),
				nest(attrAddrRemote, famIPv4, addr4("192.0.2.1"), port(8080)))}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, k := fakeClient(t, func(req request) ([][]byte, error) {
				switch {
				case req.cmd == cmdGetAddr && req.flags == dump:
					return [][]byte{endpointReply(other), endpointReply(stored6)}, nil
				case req.cmd == cmdGetAddr:
					return [][]byte{endpointReply(stored)}, nil
				case req.cmd == cmdGetLimits:
					return [][]byte{concat(attr(attrRcvAddAddrs, hostU32(0)), attr(attrSubflows, hostU32(2)))}, nil
				}
				return nil, nil
			})
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			got := k.sent()
			if len(got) != len(tt.want) {
				t.Fatalf("sent %d requests, want %d: %v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.typ != netlink.HeaderType(testFamily.ID) || g.version != familyVersion || g.cmd != w.cmd || g.flags != w.flags || !bytes.Equal(g.attrs, w.attrs) {
					t.Errorf("request %d:\n got  %v\n want type %#x cmd %d version %d flags %s attrs %x",
						i, g, testFamily.ID, w.cmd, familyVersion, w.flags, w.attrs)
				}
			}
		})
	}
}

func TestReplies(t *testing.T) {
	a := Endpoint{ID: 1, Addr: netip.MustParseAddr("198.51.100.2"), Flags: FlagSubflow, IfIndex: 42}
	b := Endpoint{ID: 9, Addr: netip.MustParseAddr("2001:db8::9"), Port: 8443, Flags: FlagSignal | FlagLaminar}
	c, _ := fakeClient(t, func(req request) ([][]byte, error) {
		switch req.cmd {
		case cmdGetAddr:
			if req.flags == dump {
				return [][]byte{endpointReply(a), endpointReply(b)}, nil
			}
			// An attribute unknown to this package is skipped.
			return [][]byte{nest(attrAddr, famIPv4, id(1), attr(99, []byte{1, 2, 3}), flags(FlagSubflow), port(0), ifIdx(42), addr4("198.51.100.2"))}, nil
		case cmdGetLimits:
			return [][]byte{concat(attr(attrRcvAddAddrs, hostU32(5)), attr(attrSubflows, hostU32(3)))}, nil
		}
		return nil, nil
	})

	eps, err := c.Endpoints()
	if err != nil || len(eps) != 2 || eps[0] != a || eps[1] != b {
		t.Errorf("Endpoints() = %v, %v; want [%v %v]", eps, err, a, b)
	}
	if e, err := c.Endpoint(1); err != nil || e != a {
		t.Errorf("Endpoint(1) = %v, %v; want %v", e, err, a)
	}
	if l, err := c.Limits(); err != nil || l != (Limits{Subflows: 3, AddAddrAccepted: 5}) {
		t.Errorf("Limits() = %v, %v; want subflows 3 add_addr_accepted 5", l, err)
	}
	// Without an id, the endpoint is found in the dump by address and port.
	if e, err := c.AddEndpoint(Endpoint{Addr: b.Addr, Port: b.Port, Flags: FlagSignal | FlagLaminar}); err != nil || e != b {
		t.Errorf("AddEndpoint without id = %v, %v; want %v", e, err, b)
	}
	if _, err := c.AddEndpoint(Endpoint{Addr: b.Addr, Flags: FlagSignal}); err == nil || !strings.Contains(err.Error(), "2001:db8::9") {
		t.Errorf("AddEndpoint of an address the dump lacks (port differs): %v, want an error naming it", err)
	}
}

func TestAddEndpointReturnsStoredFlags(t *testing.T) {
	// Recent kernels drop flag bits they do not know: the caller sees what
	// was stored.
	c, _ := fakeClient(t, func(req request) ([][]byte, error) {
		if req.cmd == cmdGetAddr {
			return [][]byte{endpointReply(Endpoint{ID: 3, Addr: netip.MustParseAddr("192.0.2.2"), Flags: FlagSubflow})}, nil
		}
		return nil, nil
	})
	e, err := c.AddEndpoint(Endpoint{ID: 3, Addr: netip.MustParseAddr("192.0.2.2"), Flags: FlagSubflow | 0x40})
	if err != nil || e.Flags != FlagSubflow {
		t.Errorf("AddEndpoint = %v, %v; want the stored flags subflow", e, err)
	}
}

func TestMalformedReplies(t *testing.T) {
	tests := []struct {
		name  string
		reply []byte
	}{
		{"no address nest", attr(attrSubflows, hostU32(1))},
		{"nest without address", nest(attrAddr, famIPv4, id(1))},
		{"short IPv4 address", nest(attrAddr, famIPv4, id(1), attr(addrAttrAddr4, []byte{192, 0, 2}))},
		{"short IPv6 address", nest(attrAddr, famIPv6, id(1), attr(addrAttrAddr6, make([]byte, 15)))},
		{"truncated port", nest(attrAddr, famIPv4, addr4("192.0.2.1"), attr(addrAttrPort, []byte{1}))},
		{"truncated flags", nest(attrAddr, famIPv4, addr4("192.0.2.1"), attr(addrAttrFlags, []byte{1, 0}))},
		{"attribute longer than the message", []byte{0x20, 0, 1, 0x80, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		c, _ := fakeClient(t, func(request) ([][]byte, error) { return [][]byte{tt.reply}, nil })
		if e, err := c.Endpoint(1); err == nil {
			t.Errorf("%s: Endpoint(1) = %v, want an error", tt.name, e)
		}
	}
	c, _ := fakeClient(t, func(request) ([][]byte, error) { return [][]byte{attr(attrSubflows, []byte{1})}, nil })
	if l, err := c.Limits(); err == nil {
		t.Errorf("truncated limit: Limits() = %v, want an error", l)
	}
}

func TestKernelErrors(t *testing.T) {
	add := func(c *Client) error {
		_, err := c.AddEndpoint(Endpoint{ID: 3, Addr: netip.MustParseAddr("192.0.2.2"), Flags: FlagSubflow})
		return err
	}
	tests := []struct {
		name     string
		call     func(*Client) error
		kernel   kernelError
		sentinel error
		text     string
	}{
		{"address exists", add, kernelError{unix.EEXIST, "too many addresses or duplicate one: -17"}, ErrExists,
			"add endpoint 192.0.2.2 id 3 subflow: file exists (kernel: too many addresses or duplicate one: -17)"},
		{"id in use", add, kernelError{unix.EBUSY, "too many addresses or duplicate one: -16"}, ErrExists,
			"add endpoint 192.0.2.2 id 3 subflow: device or resource busy (kernel: too many addresses or duplicate one: -16)"},
		{"table full", add, kernelError{unix.ERANGE, "too many addresses or duplicate one: -34"}, ErrTableFull,
			"add endpoint 192.0.2.2 id 3 subflow: numerical result out of range (kernel: too many addresses or duplicate one: -34)"},
		{"no permission", add, kernelError{unix.EPERM, ""}, ErrPermission,
			"add endpoint 192.0.2.2 id 3 subflow: operation not permitted"},
		{"unknown id", func(c *Client) error { return c.DeleteEndpoint(9) }, kernelError{unix.EINVAL, "address not found"}, ErrNotFound,
			"delete endpoint id 9: invalid argument (kernel: address not found)"},
		{"unknown token", func(c *Client) error { return c.Remove(0x1234, 2) }, kernelError{unix.EINVAL, "invalid token"}, ErrNotFound,
			"remove id 2 on token 00001234: invalid argument (kernel: invalid token)"},
		{"unknown subflow", func(c *Client) error {
			return c.DestroySubflow(0x1234, netip.MustParseAddrPort("192.0.2.2:1"), netip.MustParseAddrPort("192.0.2.1:2"))
		}, kernelError{unix.ESRCH, ""}, ErrNotFound,
			"destroy subflow 192.0.2.2:1 -> 192.0.2.1:2 on token 00001234: no such process"},
		{"not supported", func(c *Client) error { return c.SetEndpointFlags(1, FlagBackup) }, kernelError{unix.EOPNOTSUPP, ""}, ErrNotSupported,
			"set flags backup on endpoint id 1: operation not supported"},
		{"limit too big", func(c *Client) error { return c.SetLimits(LimitsUpdate{Subflows: u32(9)}) },
			kernelError{unix.EINVAL, "limit greater than maximum (8)"}, nil,
			"set limits subflows 9: invalid argument (kernel: limit greater than maximum (8))"},
	}
	sentinels := []error{ErrExists, ErrNotFound, ErrPermission, ErrNotSupported, ErrTableFull, ErrDisabled, ErrEventsLost}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeClient(t, func(request) ([][]byte, error) { return nil, tt.kernel })
			err := tt.call(c)
			if err == nil || err.Error() != tt.text {
				t.Fatalf("error %q, want %q", err, tt.text)
			}
			if !errors.Is(err, tt.kernel.errno) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.kernel.errno)
			}
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == tt.sentinel) {
					t.Errorf("errors.Is(err, %q) = %v", s, got)
				}
			}
			var e *Error
			if !errors.As(err, &e) || e.Message != tt.kernel.text {
				t.Errorf("*Error message %q, want the kernel's %q", e.Message, tt.kernel.text)
			}
		})
	}
}

// TestAmbiguousAddRefusal answers ADD_ADDR as Linux 6.1 does, one EINVAL
// for a full table, a taken id and a taken address, and checks that the
// client reads the table to tell them apart, as later kernels' errnos do.
func TestAmbiguousAddRefusal(t *testing.T) {
	ep := func(id uint8, a string) Endpoint {
		return Endpoint{ID: id, Addr: netip.MustParseAddr(a), Flags: FlagSubflow}
	}
	var full []Endpoint
	for i := range MaxEndpoints {
		full = append(full, ep(uint8(i+1), fmt.Sprintf("198.51.100.%d", i+1)))
	}
	const refusal = "add endpoint 192.0.2.2 id 3 subflow: invalid argument (kernel: too many addresses or duplicate one)"
	tests := []struct {
		name     string
		kernel   kernelError
		table    []Endpoint
		sentinel error
		text     string
		dumped   bool
	}{
		{"table full", kernelError{unix.EINVAL, ambiguousAddText}, full, ErrTableFull,
			refusal + ": the table holds 8 endpoints, the kernel's maximum", true},
		{"id taken", kernelError{unix.EINVAL, ambiguousAddText}, []Endpoint{ep(3, "192.0.2.9")}, ErrExists,
			refusal + ": id 3 is taken by endpoint 192.0.2.9", true},
		{"address taken", kernelError{unix.EINVAL, ambiguousAddText}, []Endpoint{ep(1, "192.0.2.2")}, ErrExists,
			refusal + ": endpoint id 1 has this address", true},
		{"address taken with another port", kernelError{unix.EINVAL, ambiguousAddText},
			[]Endpoint{{ID: 1, Addr: netip.MustParseAddr("192.0.2.2"), Port: 8080, Flags: FlagSignal}}, nil, refusal, true},
		{"nothing in the way", kernelError{unix.EINVAL, ambiguousAddText}, []Endpoint{ep(1, "192.0.2.1")}, nil, refusal, true},
		{"another EINVAL", kernelError{unix.EINVAL, "missing address"}, []Endpoint{ep(1, "192.0.2.2")}, nil,
			"add endpoint 192.0.2.2 id 3 subflow: invalid argument (kernel: missing address)", false},
	}
	sentinels := []error{ErrExists, ErrNotFound, ErrPermission, ErrNotSupported, ErrTableFull, ErrDisabled, ErrEventsLost}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, k := fakeClient(t, func(req request) ([][]byte, error) {
				if req.cmd != cmdGetAddr {
					return nil, tt.kernel
				}
				var replies [][]byte
				for _, e := range tt.table {
					replies = append(replies, endpointReply(e))
				}
				return replies, nil
			})
			_, err := c.AddEndpoint(ep(3, "192.0.2.2"))
			if err == nil || err.Error() != tt.text {
				t.Fatalf("error %q, want %q", err, tt.text)
			}
			if !errors.Is(err, unix.EINVAL) {
				t.Errorf("errors.Is(%v, EINVAL) = false: the kernel's errno must stay", err)
			}
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == tt.sentinel) {
					t.Errorf("errors.Is(err, %q) = %v", s, got)
				}
			}
			sent := k.sent()
			if dumped := len(sent) == 2 && sent[1].cmd == cmdGetAddr && sent[1].flags&netlink.Dump != 0; dumped != tt.dumped {
				t.Errorf("requests %v: dumped the table %v, want %v", sent, dumped, tt.dumped)
			}
		})
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	c, k := fakeClient(t, func(request) ([][]byte, error) { return nil, nil })
	calls := map[string]func() error{
		"DeleteEndpoint(0)":   func() error { return c.DeleteEndpoint(0) },
		"SetEndpointFlags(0)": func() error { return c.SetEndpointFlags(0, FlagBackup) },
		"AddEndpoint without address": func() error {
			_, err := c.AddEndpoint(Endpoint{Flags: FlagSubflow})
			return err
		},
		"Announce without address": func() error { return c.Announce(1, Endpoint{ID: 2}) },
		"CreateSubflow without remote": func() error {
			return c.CreateSubflow(1, Endpoint{Addr: netip.MustParseAddr("192.0.2.1")}, netip.AddrPort{})
		},
		"DestroySubflow without local": func() error { return c.DestroySubflow(1, netip.AddrPort{}, netip.MustParseAddrPort("192.0.2.1:1")) },
		"SetSubflowFlags without remote": func() error {
			return c.SetSubflowFlags(1, Endpoint{Addr: netip.MustParseAddr("192.0.2.1")}, netip.AddrPort{})
		},
	}
	for name, call := range calls {
		var e *Error
		if err := call(); !errors.As(err, &e) {
			t.Errorf("%s: %v, want an *Error", name, err)
		}
	}
	if sent := k.sent(); len(sent) != 0 {
		t.Errorf("requests were sent: %v", sent)
	}
}

func TestDialWithoutFamily(t *testing.T) {
	conn, _ := fakeConn(t, nil, nil)
	_, err := newClient(conn)
	if !errors.Is(err, ErrNotSupported) {
		t.Fatalf("newClient without the family: %v, want ErrNotSupported", err)
	}
	for _, want := range []string{"mptcp_pm", "CONFIG_MPTCP", "5.12", "upgrade"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Count(err.Error(), ". ") > 0 || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is not one sentence", err)
	}
}

func TestEventsGroup(t *testing.T) {
	f := familyInfo{id: 0x1d, groups: map[string]uint32{"mptcp_pm_cmds": 9, eventsGroupName: 10}}
	if got := f.eventsGroup(); got != 10 {
		t.Errorf("eventsGroup = %d, want 10", got)
	}
	delete(f.groups, eventsGroupName)
	if got := f.eventsGroup(); got != 0 {
		t.Errorf("eventsGroup without the group = %d, want 0", got)
	}
}
