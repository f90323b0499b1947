// Package netlinkmptcp speaks the Linux kernel's MPTCP path-manager
// protocol, the generic-netlink family "mptcp_pm": endpoints, limits, the
// userspace path manager's token commands, and the event stream of
// connections and subflows.
//
// It is the kernel API and nothing else: no configuration, no logging, no
// policy. A request is sent as the kernel documents it and the kernel's
// answer comes back typed; what to do with it is the caller's business.
//
// # Requests
//
// A Client (Dial) sends commands on one netlink socket in one network
// namespace. Every failed command returns an *Error naming the operation and
// its values, the errno and the kernel's extended-acknowledgement text, so
// errors.Is works both with the errno (unix.EEXIST) and with the package's
// sentinels (ErrExists, ErrNotFound, ...). The sentinels fold the kernel's
// quirks into one answer each: an unknown endpoint id is EINVAL with the text
// "address not found", which errors.Is reports as ErrNotFound.
//
// Endpoints are addressed by id wherever the kernel allows it, because
// DEL_ADDR without an id is taken as id 0, which the kernel acknowledges
// without deleting any endpoint.
//
// # Events
//
// ListenEvents joins the "mptcp_pm_events" group on a socket of its own.
// Events are lossy: a burst can overflow the socket's receive buffer, which
// Receive reports as ErrEventsLost; the caller then re-reads the state it
// cares about. Endpoints have no events at all.
//
// # Byte order
//
// The kernel's path-manager commands carry ports in host byte order; its
// events carry them in network byte order. The package hides both: every
// port in its API is a plain number.
//
// # Kernel versions
//
// The family appeared in Linux 5.7, events in 5.12, the userspace path
// manager in 5.19 (see Features). Dial fails with ErrNotSupported on kernels
// without it; CheckEnabled tells whether MPTCP is switched on in a namespace,
// which the netlink family does not reveal.
package netlinkmptcp
