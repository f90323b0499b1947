package netlinkmptcp

import (
	"errors"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/nlerr"
)

// Sentinels for errors.Is. Every error of the package that stems from one of
// these conditions matches the sentinel, whatever errno the kernel chose.
// The shared ones are package nlerr's, so rtnetlink and MPTCP errors match
// alike.
var (
	// ErrExists: the endpoint's address (EEXIST) or id (EBUSY) is taken.
	// Kernels that answer both with EINVAL (6.1) are asked which it was.
	ErrExists = nlerr.ErrExists
	// ErrNotFound: no such endpoint, connection or subflow (ENOENT, ESRCH,
	// and EINVAL with the kernel's text "address not found", its answer to
	// an unknown endpoint id, or "invalid token", to an unknown connection).
	ErrNotFound = nlerr.ErrNotFound
	// ErrPermission: the caller lacks CAP_NET_ADMIN (EPERM, EACCES).
	ErrPermission = nlerr.ErrPermission
	// ErrNotSupported: the kernel lacks MPTCP, the family, or the operation
	// (EOPNOTSUPP).
	ErrNotSupported = nlerr.ErrNotSupported
	// ErrTableFull: the namespace already has MaxEndpoints endpoints (ERANGE
	// on Linux 6.18; kernels that answer EINVAL, as 6.1, are asked).
	ErrTableFull = errors.New("endpoint table full")
	// ErrDisabled: MPTCP is switched off in the network namespace.
	ErrDisabled = errors.New("MPTCP disabled")
	// ErrEventsLost: events overflowed the socket's receive buffer (ENOBUFS)
	// and some were dropped; re-read the state.
	ErrEventsLost = nlerr.ErrLost
)

// Error is a failed operation: what was asked, with which values, and what
// the kernel answered.
type Error = nlerr.Error

// opError turns what the netlink stack returned into an *Error for op, with
// the MPTCP family's own meanings of its errnos and texts.
func opError(op string, err error) error {
	e := nlerr.New(op, err)
	e.Kind = mptcpKind(e)
	return e
}

// mptcpKind is the sentinel the mptcp_pm family means beyond the errno: an
// unknown endpoint id or token is EINVAL with a text, a full table ERANGE.
func mptcpKind(e *Error) error {
	var errno syscall.Errno
	if !errors.As(e.Err, &errno) {
		return nil
	}
	switch {
	case errno == unix.ERANGE:
		return ErrTableFull
	case errno == unix.EINVAL && (strings.Contains(e.Message, "address not found") ||
		strings.Contains(e.Message, "invalid token")):
		return ErrNotFound
	}
	return nil
}

// sentenceError is an error whose text is one sentence for a person (the
// cause and the fix), matched by errors.Is against one sentinel.
type sentenceError struct {
	text  string
	kind  error
	cause error
}

func (e *sentenceError) Error() string        { return e.text }
func (e *sentenceError) Is(target error) bool { return target == e.kind }
func (e *sentenceError) Unwrap() error        { return e.cause }
