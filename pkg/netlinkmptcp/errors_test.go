package netlinkmptcp

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Op: "add endpoint 192.0.2.2 id 3", Err: unix.EEXIST, Message: "too many addresses or duplicate one: -17"},
			"add endpoint 192.0.2.2 id 3: file exists (kernel: too many addresses or duplicate one: -17)"},
		{&Error{Op: "flush endpoints", Err: unix.EPERM}, "flush endpoints: operation not permitted"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.err, tt.err.Err) {
			t.Errorf("%v does not unwrap to %v", tt.err, tt.err.Err)
		}
	}
}

func TestErrorIs(t *testing.T) {
	tests := []struct {
		errno   unix.Errno
		message string
		want    error // nil: no sentinel
	}{
		{unix.EEXIST, "", ErrExists},
		{unix.EBUSY, "", ErrExists},
		{unix.ENOENT, "", ErrNotFound},
		{unix.ESRCH, "", ErrNotFound},
		{unix.EINVAL, "address not found", ErrNotFound},
		{unix.EINVAL, "invalid token", ErrNotFound},
		{unix.EINVAL, "limit greater than maximum (8)", nil},
		{unix.EINVAL, "", nil},
		{unix.EPERM, "", ErrPermission},
		{unix.EACCES, "", ErrPermission},
		{unix.EOPNOTSUPP, "", ErrNotSupported},
		{unix.ERANGE, "", ErrTableFull},
		{unix.ENOBUFS, "", ErrEventsLost},
		{unix.EADDRNOTAVAIL, "create listen socket error: -99", nil},
	}
	sentinels := []error{ErrExists, ErrNotFound, ErrPermission, ErrNotSupported, ErrTableFull, ErrDisabled, ErrEventsLost}
	for _, tt := range tests {
		err := opError("op", &netlink.OpError{Op: "receive", Err: tt.errno, Message: tt.message})
		for _, s := range sentinels {
			if got := errors.Is(err, s); got != (s == tt.want) {
				t.Errorf("errors.Is(%v, %q) = %v", err, s, got)
			}
		}
	}
	// The kernel's "address not found" is also the os package's.
	if err := opError("delete endpoint id 9", &netlink.OpError{Err: unix.EINVAL, Message: "address not found"}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v does not match fs.ErrNotExist", err)
	}
	// Not an errno: no sentinel matches.
	if err := (&Error{Op: "op", Err: errors.New("boom")}); errors.Is(err, ErrExists) || errors.Is(err, ErrNotFound) {
		t.Errorf("%v matches a sentinel", err)
	}
}

func TestCheckEnabled(t *testing.T) {
	dir := t.TempDir()
	write := func(content string) string {
		p := filepath.Join(dir, "enabled")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := checkEnabled(write("1\n")); err != nil {
		t.Errorf("enabled=1: %v", err)
	}
	err := checkEnabled(write("0\n"))
	if !errors.Is(err, ErrDisabled) {
		t.Errorf("enabled=0: %v, want ErrDisabled", err)
	}
	for _, w := range []string{"net.mptcp.enabled=0", "sysctl -w net.mptcp.enabled=1"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("enabled=0: %q does not mention %q", err, w)
		}
	}
	if err := checkEnabled(write("2\n")); err == nil || errors.Is(err, ErrDisabled) {
		t.Errorf("enabled=2: %v, want an error that is not ErrDisabled", err)
	}
	err = checkEnabled(filepath.Join(dir, "missing"))
	if !errors.Is(err, ErrNotSupported) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "CONFIG_MPTCP") {
		t.Errorf("missing sysctl: %v, want ErrNotSupported naming CONFIG_MPTCP", err)
	}
}

func TestFamily(t *testing.T) {
	tests := []struct {
		addr   netip.Addr
		family Family
		name   string
	}{
		{netip.MustParseAddr("192.0.2.1"), FamilyIPv4, "ipv4"},
		{netip.MustParseAddr("2001:db8::1"), FamilyIPv6, "ipv6"},
		{netip.MustParseAddr("::ffff:192.0.2.1"), FamilyIPv6, "ipv6"},
		{netip.Addr{}, 0, "family(0)"},
	}
	for _, tt := range tests {
		if got := FamilyOf(tt.addr); got != tt.family || got.String() != tt.name {
			t.Errorf("FamilyOf(%v) = %v (%d), want %s", tt.addr, got, got, tt.name)
		}
	}
	if FamilyIPv4 != unix.AF_INET || FamilyIPv6 != unix.AF_INET6 {
		t.Error("families do not match the kernel's AF_INET, AF_INET6")
	}
}
