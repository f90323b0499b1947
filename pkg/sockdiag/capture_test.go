package sockdiag

import (
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/mptcpgd/mptcpgd/internal/lab"
	"golang.org/x/sys/unix"
)

// TestCapture records the kernel's replies to ListMPTCP's four dumps, on
// both ends of two real connections with a joined subflow each, into
// testdata/capture, which captured_test.go decodes and the fuzz target
// starts from. It changes the repository, so it runs only when asked:
//
//	go test ./pkg/sockdiag/ -run TestCapture -capture
var capture = flag.Bool("capture", false, "run TestCapture: record socket diagnostics replies into testdata/capture")

const captureDir = "testdata/capture"

// The client's ephemeral ports, those of its joined subflows, come from
// this range while capturing.
const ephemeralLow, ephemeralHigh = 45000, 45099

// captureDumps name the stored files, SIDE_NAME.hex, in the order ListMPTCP
// runs the dumps.
var captureDumps = []struct {
	name string
	req  request
}{
	{"mptcp_ipv4", mptcpRequest(unix.AF_INET)},
	{"mptcp_ipv6", mptcpRequest(unix.AF_INET6)},
	{"tcp_ipv4", subflowRequest(unix.AF_INET)},
	{"tcp_ipv6", subflowRequest(unix.AF_INET6)},
}

// The captured connections: IPv4 from a client socket of family AF_INET to
// the server's dual-stack listener, so that the server's end is an AF_INET6
// socket with IPv4-mapped addresses; and IPv6. The client's IPv6 endpoint
// is switched to backup before capturing, so that the IPv6 join carries
// the backup bits (the local one on the client, the remote one on the
// server).
var (
	captureClient4 = netip.AddrPortFrom(clientA, clientPort)
	captureServer4 = netip.AddrPortFrom(serverA, serverPort)
	captureClient6 = netip.AddrPortFrom(clientA6, clientPort+1)
	captureServer6 = netip.AddrPortFrom(serverA6, serverPort)
)

func TestCapture(t *testing.T) {
	if !*capture {
		t.Skip("records socket diagnostics replies into testdata/capture; run with -capture")
	}
	tb := newTestbed(t)
	tb.client.Sysctl("net.ipv4.ip_local_port_range", fmt.Sprintf("%d %d", ephemeralLow, ephemeralHigh))
	l := tb.listen(t, "tcp", fmt.Sprintf(":%d", serverPort))
	tb.connect(t, l, "tcp4", captureClient4, captureServer4, clientB)
	tb.connect(t, l, "tcp6", captureClient6, captureServer6, clientB6)
	tb.client.IP("mptcp", "endpoint", "change", "id", fmt.Sprint(endpointB6), "backup")
	waitBackup(t, tb, clientB6)

	if err := os.MkdirAll(captureDir, 0o755); err != nil {
		t.Fatal(err)
	}
	release := kernelRelease(t)
	for _, side := range []struct {
		name string
		ns   *lab.NS
	}{{"client", tb.client}, {"server", tb.server}} {
		conn, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, &netlink.Config{NetNS: nsConfig(t, side.ns).NetNS})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range captureDumps {
			msgs, err := dump(conn, d.req)
			if err != nil {
				t.Fatalf("%s %s: %v", side.name, d.name, err)
			}
			writeCapture(t, side.name+"_"+d.name, fmt.Sprintf("replies to the %s dump in the %s namespace, captured on Linux %s by TestCapture",
				d.name, side.name, release), msgs)
		}
		conn.Close()
	}
}

// writeCapture stores msgs as hex, 16 bytes a line, one "# message N"
// comment before each, under a comment that says what they are.
func writeCapture(t *testing.T, name, what string, msgs []netlink.Message) {
	t.Helper()
	var s strings.Builder
	fmt.Fprintf(&s, "# %s\n# %d messages, each a netlink header and a struct inet_diag_msg with its attributes\n", what, len(msgs))
	for i, m := range msgs {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&s, "# message %d\n", i)
		for len(b) > 0 {
			n := min(16, len(b))
			s.WriteString(hex.EncodeToString(b[:n]))
			s.WriteString("\n")
			b = b[n:]
		}
	}
	if err := os.WriteFile(filepath.Join(captureDir, name+".hex"), []byte(s.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func kernelRelease(t *testing.T) string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(u.Release[:])
}
