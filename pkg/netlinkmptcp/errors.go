package netlinkmptcp

import (
	"errors"
	"strings"
	"syscall"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Sentinels for errors.Is. Every error of the package that stems from one of
// these conditions matches the sentinel, whatever errno the kernel chose.
var (
	// ErrExists: the endpoint's address (EEXIST) or id (EBUSY) is taken.
	// Kernels that answer both with EINVAL (6.1) are asked which it was.
	ErrExists = errors.New("already exists")
	// ErrNotFound: no such endpoint, connection or subflow (ENOENT, ESRCH,
	// and EINVAL with the kernel's text "address not found", its answer to
	// an unknown endpoint id, or "invalid token", to an unknown connection).
	ErrNotFound = errors.New("not found")
	// ErrPermission: the caller lacks CAP_NET_ADMIN (EPERM, EACCES).
	ErrPermission = errors.New("permission denied")
	// ErrNotSupported: the kernel lacks MPTCP, the family, or the operation
	// (EOPNOTSUPP).
	ErrNotSupported = errors.New("not supported")
	// ErrTableFull: the namespace already has MaxEndpoints endpoints (ERANGE
	// on Linux 6.18; kernels that answer EINVAL, as 6.1, are asked).
	ErrTableFull = errors.New("endpoint table full")
	// ErrDisabled: MPTCP is switched off in the network namespace.
	ErrDisabled = errors.New("MPTCP disabled")
	// ErrEventsLost: events overflowed the socket's receive buffer (ENOBUFS)
	// and some were dropped; re-read the state.
	ErrEventsLost = errors.New("events lost")
)

// Error is a failed operation: what was asked, with which values, and what
// the kernel answered.
type Error struct {
	// Op is the operation with its values, e.g. "add endpoint 192.0.2.2 id 3".
	Op string
	// Err is the cause: a syscall.Errno for the kernel's refusals, the
	// socket's error otherwise.
	Err error
	// Message is the kernel's extended-acknowledgement text, if it gave one.
	Message string
	// Found is what reading the kernel's state showed when its answer did
	// not say which refusal it was (Linux 6.1 answers a taken address, a
	// taken id and a full table with one EINVAL): an error that matches
	// ErrExists or ErrTableFull, as the kernel's own errno does elsewhere.
	Found error
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
	if e.Found != nil {
		b.WriteString(": ")
		b.WriteString(e.Found.Error())
	}
	return b.String()
}

// Unwrap returns the cause, so that errors.Is(err, unix.EEXIST) works, and
// what was found, so that errors.Is(err, ErrExists) works where the kernel
// did not say.
func (e *Error) Unwrap() []error {
	if e.Found != nil {
		return []error{e.Err, e.Found}
	}
	return []error{e.Err}
}

// Is matches the package's sentinels against the errno and the kernel's text.
func (e *Error) Is(target error) bool {
	var errno syscall.Errno
	if !errors.As(e.Err, &errno) {
		return false
	}
	switch target {
	case ErrExists:
		return errno == unix.EEXIST || errno == unix.EBUSY
	case ErrNotFound:
		return errno == unix.ENOENT || errno == unix.ESRCH ||
			errno == unix.EINVAL && (strings.Contains(e.Message, "address not found") ||
				strings.Contains(e.Message, "invalid token"))
	case ErrPermission:
		return errno == unix.EPERM || errno == unix.EACCES
	case ErrNotSupported:
		return errno == unix.EOPNOTSUPP
	case ErrTableFull:
		return errno == unix.ERANGE
	case ErrEventsLost:
		return errno == unix.ENOBUFS
	}
	return false
}

// opError turns what the netlink stack returned into an *Error for op,
// keeping the errno and the kernel's extack text and dropping the netlink
// package's own wrapping ("netlink receive: ...").
func opError(op string, err error) error {
	e := &Error{Op: op, Err: err}
	var nlErr *netlink.OpError
	if errors.As(err, &nlErr) {
		e.Err = nlErr.Err
		e.Message = nlErr.Message
	}
	return e
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
