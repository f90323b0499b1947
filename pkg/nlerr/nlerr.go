// Package nlerr is the one error style of every netlink request mptcpgd
// makes (generic netlink for MPTCP, rtnetlink for routing): what was asked
// with which values, the errno, and the kernel's extended-acknowledgement
// text, matched by errors.Is against a few sentinels and against
// os.ErrNotExist, os.ErrExist and os.ErrPermission.
package nlerr

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Sentinels for errors.Is. An *Error matches the one its errno (or its Kind)
// stands for, whatever errno the kernel chose among equivalent ones.
var (
	// ErrExists: an equal object, address or id is taken (EEXIST, EBUSY).
	ErrExists = errors.New("already exists")
	// ErrNotFound: no such object (ENOENT, ESRCH).
	ErrNotFound = errors.New("not found")
	// ErrPermission: the caller lacks CAP_NET_ADMIN (EPERM, EACCES).
	ErrPermission = errors.New("permission denied")
	// ErrNotSupported: the kernel lacks the family or the operation
	// (EOPNOTSUPP).
	ErrNotSupported = errors.New("not supported")
	// ErrLost: notifications overflowed the socket's receive buffer
	// (ENOBUFS) and some were dropped; re-read the state.
	ErrLost = errors.New("notifications lost")
)

// Error is a failed netlink operation.
type Error struct {
	// Op is the operation with its values, e.g. "add endpoint 192.0.2.2 id 3".
	Op string
	// Err is the cause: a syscall.Errno for the kernel's refusals, the
	// socket's error otherwise.
	Err error
	// Message is the kernel's extended-acknowledgement text, if it gave one.
	Message string
	// Kind is a sentinel the caller established beyond the errno, e.g.
	// MPTCP's EINVAL "address not found" is ErrNotFound; nil goes by the
	// errno.
	Kind error
}

// New turns what the netlink stack returned into an *Error for op, keeping
// the errno and the kernel's extack text and dropping the netlink package's
// own wrapping ("netlink receive: ...").
func New(op string, err error) *Error {
	e := &Error{Op: op, Err: err}
	var nlErr *netlink.OpError
	if errors.As(err, &nlErr) {
		e.Err = nlErr.Err
		e.Message = nlErr.Message
	}
	return e
}

// Error reads like "add endpoint 192.0.2.2 id 3: file exists (kernel: ...)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Message != "" {
		b.WriteString(" (kernel: ")
		b.WriteString(e.Message)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the cause, so that errors.Is(err, unix.EEXIST) works.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinels, and os.ErrNotExist, os.ErrExist and
// os.ErrPermission where one of them applies.
func (e *Error) Is(target error) bool {
	kind := e.kind()
	if kind == nil {
		return false
	}
	switch target {
	case fs.ErrNotExist:
		return kind == ErrNotFound
	case fs.ErrExist:
		return kind == ErrExists
	case fs.ErrPermission:
		return kind == ErrPermission
	}
	return target == kind
}

func (e *Error) kind() error {
	if e.Kind != nil {
		return e.Kind
	}
	var errno syscall.Errno
	if !errors.As(e.Err, &errno) {
		return nil
	}
	return ErrnoKind(errno)
}

// ErrnoKind is the sentinel an errno stands for, nil if none.
func ErrnoKind(errno syscall.Errno) error {
	switch errno {
	case unix.EEXIST, unix.EBUSY:
		return ErrExists
	case unix.ENOENT, unix.ESRCH:
		return ErrNotFound
	case unix.EPERM, unix.EACCES:
		return ErrPermission
	case unix.EOPNOTSUPP:
		return ErrNotSupported
	case unix.ENOBUFS:
		return ErrLost
	}
	return nil
}
