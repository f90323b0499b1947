package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// DialOptions shape a connection a test makes inside a namespace.
type DialOptions struct {
	// MPTCP asks for a Multipath TCP socket (Go falls back to TCP if the
	// kernel refuses one; (*net.TCPConn).MultipathTCP tells).
	MPTCP bool
	// Local binds the source address; the zero Addr lets the kernel pick.
	Local netip.Addr
	// Device binds the socket to an interface (SO_BINDTODEVICE), as the
	// kernel binds the subflows of a device-bound MPTCP endpoint.
	Device string
}

// Dial connects to raddr (a literal ip:port) from inside the namespace. The
// socket is created on a thread inside the namespace, so it belongs to it;
// the returned connection then works from any goroutine.
func (n *NS) Dial(ctx context.Context, network, raddr string, opt DialOptions) (*net.TCPConn, error) {
	var d net.Dialer
	d.SetMultipathTCP(opt.MPTCP)
	if opt.Local.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(opt.Local, 0))
	}
	if opt.Device != "" {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, opt.Device)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	var conn net.Conn
	// A literal address makes Go dial on this goroutine, which Do has
	// locked to a thread inside the namespace.
	err := n.Do(func() error {
		var err error
		conn, err = d.DialContext(ctx, network, raddr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s %s from %s (local %v, device %q, mptcp %t): %w",
			network, raddr, n.Name, opt.Local, opt.Device, opt.MPTCP, err)
	}
	return conn.(*net.TCPConn), nil
}

// DialMPTCP is Dial with an MPTCP socket bound to laddr (zero: any).
func (n *NS) DialMPTCP(ctx context.Context, network, raddr string, laddr netip.Addr) (*net.TCPConn, error) {
	return n.Dial(ctx, network, raddr, DialOptions{MPTCP: true, Local: laddr})
}

// DialTCP is Dial with a plain TCP socket bound to laddr (zero: any).
func (n *NS) DialTCP(ctx context.Context, network, raddr string, laddr netip.Addr) (*net.TCPConn, error) {
	return n.Dial(ctx, network, raddr, DialOptions{Local: laddr})
}

// Listen opens a TCP listener inside the namespace, with MPTCP when mptcp
// is set. Accept works from any goroutine. The caller closes it.
func (n *NS) Listen(network, addr string, mptcp bool) (net.Listener, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(mptcp)
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = lc.Listen(context.Background(), network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s in %s (mptcp %t): %w", network, addr, n.Name, mptcp, err)
	}
	return l, nil
}

// ListenMPTCP is Listen with MPTCP.
func (n *NS) ListenMPTCP(network, addr string) (net.Listener, error) {
	return n.Listen(network, addr, true)
}

// ListenTCP is Listen with plain TCP.
func (n *NS) ListenTCP(network, addr string) (net.Listener, error) {
	return n.Listen(network, addr, false)
}
