package netlinkmptcp

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"golang.org/x/sys/unix"
)

// Kernel tests: real netlink in fresh namespaces. They never run in
// parallel: the kernel's generic-netlink lock is host-wide.

func TestIntegrationEndpoints(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "ep")
	ns.IP("addr", "add", "192.0.2.11/32", "dev", "lo")
	cfg := nsConfig(t, ns)
	c := dial(t, cfg)
	// The laminar flag (6.18) is stored and kept by SET_FLAGS where the
	// kernel has it; elsewhere it is not asked for.
	laminar := Flags(0)
	if probe(t, cfg).Laminar {
		laminar = FlagLaminar
	}

	if eps, err := c.Endpoints(); err != nil || len(eps) != 0 {
		t.Fatalf("Endpoints() in a new namespace = %v, %v; want none", eps, err)
	}

	// Without an id: the kernel picks 1, and AddEndpoint finds it.
	auto := addEndpoint(t, c, Endpoint{Addr: netip.MustParseAddr("192.0.2.10"), Flags: FlagSubflow, IfIndex: 1})
	if want := (Endpoint{ID: 1, Addr: netip.MustParseAddr("192.0.2.10"), Flags: FlagSubflow, IfIndex: 1}); auto != want {
		t.Errorf("AddEndpoint without id = %+v, want %+v", auto, want)
	}
	// With an id, a port (the kernel opens a listener on it) and IPv6.
	withPort := addEndpoint(t, c, Endpoint{ID: 7, Addr: netip.MustParseAddr("192.0.2.11"), Port: 8443, Flags: FlagSignal})
	if want := (Endpoint{ID: 7, Addr: netip.MustParseAddr("192.0.2.11"), Port: 8443, Flags: FlagSignal}); withPort != want {
		t.Errorf("AddEndpoint with id and port = %+v, want %+v", withPort, want)
	}
	v6 := addEndpoint(t, c, Endpoint{ID: 200, Addr: netip.MustParseAddr("2001:db8::5"), Flags: FlagSubflow | FlagBackup | FlagFullmesh | laminar})
	if want := (Endpoint{ID: 200, Addr: netip.MustParseAddr("2001:db8::5"), Flags: FlagSubflow | FlagBackup | FlagFullmesh | laminar}); v6 != want {
		t.Errorf("AddEndpoint IPv6 = %+v, want %+v", v6, want)
	}

	got, err := c.Endpoint(7)
	if err != nil || got != withPort {
		t.Errorf("Endpoint(7) = %+v, %v; want %+v", got, err, withPort)
	}
	eps, err := c.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	if want := []Endpoint{auto, withPort, v6}; fmt.Sprint(eps) != fmt.Sprint(want) {
		t.Errorf("Endpoints() = %v, want %v", eps, want)
	}

	// SET_FLAGS changes backup and fullmesh only, and replaces both.
	if err := c.SetEndpointFlags(1, FlagSubflow|FlagBackup); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Endpoint(1); err != nil || got.Flags != FlagSubflow|FlagBackup {
		t.Errorf("after SetEndpointFlags(1, subflow,backup): %+v, %v", got, err)
	}
	if err := c.SetEndpointFlags(200, FlagSubflow); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Endpoint(200); err != nil || got.Flags != FlagSubflow|laminar {
		t.Errorf("after SetEndpointFlags(200, subflow): flags %v, %v; want %v", got.Flags, err, FlagSubflow|laminar)
	}

	if err := c.DeleteEndpoint(7); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Endpoint(7); !errors.Is(err, ErrNotFound) {
		t.Errorf("Endpoint(7) after delete: %v, want ErrNotFound", err)
	}
	if err := c.DeleteEndpoint(7); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteEndpoint(7) twice: %v, want ErrNotFound", err)
	}

	if err := c.FlushEndpoints(); err != nil {
		t.Fatal(err)
	}
	if eps, err := c.Endpoints(); err != nil || len(eps) != 0 {
		t.Errorf("Endpoints() after flush = %v, %v; want none", eps, err)
	}
	// The id counter restarts at 1 after a flush.
	if e := addEndpoint(t, c, Endpoint{Addr: netip.MustParseAddr("192.0.2.20"), Flags: FlagSubflow}); e.ID != 1 {
		t.Errorf("first id after flush = %d, want 1", e.ID)
	}
}

func TestIntegrationEndpointErrors(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "eperr")
	c := dial(t, nsConfig(t, ns))
	addEndpoint(t, c, Endpoint{ID: 3, Addr: netip.MustParseAddr("192.0.2.3"), Flags: FlagSubflow})

	tests := []struct {
		name  string
		err   error
		want  error
		errno unix.Errno
	}{
		{"same address", addErr(c, Endpoint{Addr: netip.MustParseAddr("192.0.2.3"), Flags: FlagSubflow}), ErrExists, unix.EEXIST},
		{"same id", addErr(c, Endpoint{ID: 3, Addr: netip.MustParseAddr("192.0.2.4"), Flags: FlagSubflow}), ErrExists, unix.EBUSY},
		{"get unknown id", getErr(c, 99), ErrNotFound, unix.EINVAL},
		{"delete unknown id", c.DeleteEndpoint(99), ErrNotFound, unix.EINVAL},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) || !errors.Is(tt.err, tt.errno) && !askedTheTable(tt.err) {
			t.Errorf("%s: %v; want %v and errno %v (or, where the kernel answers EINVAL for all refusals, what the table showed)", tt.name, tt.err, tt.want, tt.errno)
		}
		var e *Error
		if !errors.As(tt.err, &e) {
			t.Errorf("%s: %T is not an *Error", tt.name, tt.err)
		}
	}

	// Fill the table: 3 is there, 7 more make 8, the 9th is refused.
	for i := range MaxEndpoints - 1 {
		addEndpoint(t, c, Endpoint{Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)}), Flags: FlagSubflow})
	}
	err := addErr(c, Endpoint{Addr: netip.MustParseAddr("203.0.113.99"), Flags: FlagSubflow})
	if !errors.Is(err, ErrTableFull) || !strings.Contains(err.Error(), "203.0.113.99") {
		t.Errorf("9th endpoint: %v; want ErrTableFull naming the address", err)
	}
	if err := c.DeleteEndpoint(0); err == nil {
		t.Error("DeleteEndpoint(0) succeeded; want a refusal")
	}
	if eps, _ := c.Endpoints(); len(eps) != MaxEndpoints {
		t.Errorf("%d endpoints after the refusals, want %d", len(eps), MaxEndpoints)
	}
}

// askedTheTable says the kernel answered an ambiguous EINVAL (Linux 6.1) and
// the client found the reason in the endpoint table.
func askedTheTable(err error) bool {
	var e *Error
	return errors.As(err, &e) && errors.Is(e.Err, unix.EINVAL) && e.Kind != nil
}

func addErr(c *Client, e Endpoint) error {
	_, err := c.AddEndpoint(e)
	return err
}

func getErr(c *Client, id uint8) error {
	_, err := c.Endpoint(id)
	return err
}

func TestIntegrationLimits(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "limits")
	c := dial(t, nsConfig(t, ns))

	orig, err := c.Limits()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Limits{Subflows: 2, AddAddrAccepted: 0}); orig != want {
		t.Errorf("Limits() in a new namespace = %v, want the kernel's defaults %v", orig, want)
	}

	steps := []struct {
		update LimitsUpdate
		want   Limits
	}{
		{LimitsUpdate{Subflows: u32(5)}, Limits{Subflows: 5, AddAddrAccepted: 0}},
		{LimitsUpdate{AddAddrAccepted: u32(3)}, Limits{Subflows: 5, AddAddrAccepted: 3}},
		{LimitsUpdate{}, Limits{Subflows: 5, AddAddrAccepted: 3}},
		{LimitsUpdate{Subflows: u32(MaxLimit), AddAddrAccepted: u32(MaxLimit)}, Limits{Subflows: MaxLimit, AddAddrAccepted: MaxLimit}},
	}
	for _, s := range steps {
		if err := c.SetLimits(s.update); err != nil {
			t.Fatalf("SetLimits(%v): %v", s.update, err)
		}
		if got, err := c.Limits(); err != nil || got != s.want {
			t.Errorf("after SetLimits(%v): %v, %v; want %v", s.update, got, err, s.want)
		}
	}

	err = c.SetLimits(LimitsUpdate{Subflows: u32(MaxLimit + 1)})
	var e *Error
	if !errors.Is(err, unix.EINVAL) || !errors.As(err, &e) || e.Message == "" {
		t.Errorf("SetLimits(subflows 9): %v; want EINVAL with the kernel's text", err)
	}

	if err := c.SetLimits(LimitsUpdate{Subflows: &orig.Subflows, AddAddrAccepted: &orig.AddAddrAccepted}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Limits(); err != nil || got != orig {
		t.Errorf("restored limits = %v, %v; want %v", got, err, orig)
	}
}
