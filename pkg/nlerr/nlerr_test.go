package nlerr

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func TestNewKeepsErrnoAndExtack(t *testing.T) {
	err := New("add rule 10000: from 192.0.2.2/32 lookup 10002 proto 177", &netlink.OpError{Op: "receive", Err: unix.EEXIST, Message: "duplicate rule"})
	want := "add rule 10000: from 192.0.2.2/32 lookup 10002 proto 177: file exists (kernel: duplicate rule)"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if !errors.Is(err, unix.EEXIST) {
		t.Errorf("%v does not unwrap to EEXIST", err)
	}
}

func TestIs(t *testing.T) {
	tests := []struct {
		errno unix.Errno
		kind  error // set as Kind; nil goes by the errno
		want  []error
	}{
		{unix.EEXIST, nil, []error{ErrExists, fs.ErrExist}},
		{unix.EBUSY, nil, []error{ErrExists, fs.ErrExist}},
		{unix.ENOENT, nil, []error{ErrNotFound, fs.ErrNotExist}},
		{unix.ESRCH, nil, []error{ErrNotFound, fs.ErrNotExist}},
		{unix.EPERM, nil, []error{ErrPermission, fs.ErrPermission}},
		{unix.EACCES, nil, []error{ErrPermission, fs.ErrPermission}},
		{unix.EOPNOTSUPP, nil, []error{ErrNotSupported}},
		{unix.ENOBUFS, nil, []error{ErrLost}},
		{unix.EINVAL, nil, nil},
		{unix.EINVAL, ErrNotFound, []error{ErrNotFound, fs.ErrNotExist}},
	}
	all := []error{ErrExists, ErrNotFound, ErrPermission, ErrNotSupported, ErrLost, fs.ErrExist, fs.ErrNotExist, fs.ErrPermission}
	for _, tt := range tests {
		err := error(&Error{Op: "op", Err: tt.errno, Kind: tt.kind})
		for _, target := range all {
			want := false
			for _, w := range tt.want {
				want = want || w == target
			}
			if got := errors.Is(err, target); got != want {
				t.Errorf("errors.Is(%v [kind %v], %v) = %v, want %v", err, tt.kind, target, got, want)
			}
		}
	}
	if err := (&Error{Op: "op", Err: errors.New("boom")}); errors.Is(err, ErrExists) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v matches a sentinel", err)
	}
}
