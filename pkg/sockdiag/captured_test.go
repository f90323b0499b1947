package sockdiag

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
)

// The replies in testdata/capture were recorded from Linux 6.18 by
// TestCapture (capture_test.go), which sets up exactly the addresses,
// ports, ids and interface indexes these tests expect.

// readCapture returns the messages stored in testdata/capture/NAME.hex.
func readCapture(t testing.TB, name string) []netlink.Message {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(captureDir, name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []netlink.Message
	var cur strings.Builder
	flush := func() {
		if cur.Len() == 0 {
			return
		}
		raw, err := hex.DecodeString(cur.String())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var m netlink.Message
		if err := m.UnmarshalBinary(raw); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		msgs = append(msgs, m)
		cur.Reset()
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "# message ") {
			flush()
		}
		if !strings.HasPrefix(line, "#") {
			cur.WriteString(strings.TrimSpace(line))
		}
	}
	flush()
	return msgs
}

// capturedKernel answers ListMPTCP's dumps with one side's captured
// replies, and fails the test on a request that is not the next one
// TestCapture recorded.
func capturedKernel(t *testing.T, side string) *netlink.Conn {
	next := 0
	return fakeKernel(t, func(req []byte) ([]netlink.Message, error) {
		if next >= len(captureDumps) {
			t.Fatalf("request %d: ListMPTCP made more requests than the %d it should", next, len(captureDumps))
		}
		d := captureDumps[next]
		next++
		if want := d.req.encode(); !bytes.Equal(req, want) {
			t.Errorf("request %d (%s) = % x, want % x", next-1, d.name, req, want)
		}
		return readCapture(t, side+"_"+d.name), nil
	})
}

func TestCapturedClient(t *testing.T) {
	v4, v6 := capturedConnections(t, "client")
	for _, c := range []Connection{v4, v6} {
		if port := c.Subflows[1].Local.Port(); port < ephemeralLow || port > ephemeralHigh {
			t.Errorf("joined subflow's port %d, want one of the client's ephemeral ports %d-%d", port, ephemeralLow, ephemeralHigh)
		}
	}
	if v4.Token == 0 || v6.Token == 0 || v4.Token == v6.Token {
		t.Errorf("tokens %08x and %08x, want two different non-zero ones", v4.Token, v6.Token)
	}
	want := []Connection{
		clientConnection(v4.Token, captureClient4, captureServer4, clientB, v4.Subflows[1].Local.Port(), endpointB, false),
		clientConnection(v6.Token, captureClient6, captureServer6, clientB6, v6.Subflows[1].Local.Port(), endpointB6, true),
	}
	if diff := cmp.Diff(want, []Connection{v4, v6}, equateAddrs); diff != "" {
		t.Errorf("client connections (-want +got):\n%s", diff)
	}
}

// TestCapturedServer checks the server's end of the same connections: it
// accepted them, its IPv4 one is an IPv6 socket whose IPv4-mapped addresses
// come out as IPv4, and every subflow mirrors the client's.
func TestCapturedServer(t *testing.T) {
	c4, c6 := capturedConnections(t, "client")
	s4, s6 := capturedConnections(t, "server")
	for _, p := range []struct{ client, server Connection }{{c4, s4}, {c6, s6}} {
		c, s := p.client, p.server
		if s.Token == c.Token {
			t.Errorf("server token %08x equals the client's: each end has its own", s.Token)
		}
		want := Connection{
			Token: s.Token, Local: c.Remote, Remote: c.Local, State: StateEstablished, ServerSide: true,
			JoinedSubflows: 1, MaxSubflows: 2, BytesSent: 1, BytesReceived: 1, ByteCounters: true,
		}
		for _, sf := range c.Subflows {
			w := Subflow{
				Local: sf.Remote, Remote: sf.Local, State: sf.State,
				LocalID: sf.RemoteID, RemoteID: sf.LocalID, Initial: sf.Initial, Backup: sf.Backup,
			}
			if sf.Initial {
				// The capture's one byte each way.
				w.BytesSent, w.BytesReceived = 1, 1
			}
			want.Subflows = append(want.Subflows, w)
		}
		if diff := cmp.Diff(want, s, equateAddrs); diff != "" {
			t.Errorf("server connection from %s (-want +got):\n%s", c.Local, diff)
		}
	}
}

// capturedConnections lists one side's captured connections, which must be
// an IPv4 and an IPv6 one with two subflows each.
func capturedConnections(t *testing.T, side string) (v4, v6 Connection) {
	t.Helper()
	got, err := list(capturedKernel(t, side))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[0].Subflows) != 2 || len(got[1].Subflows) != 2 {
		t.Fatalf("%s: ListMPTCP = %+v, want two connections with two subflows each", side, got)
	}
	// Tokens are random, and order the connections.
	v4, v6 = got[0], got[1]
	if v4.Local.Addr().Is6() {
		v4, v6 = v6, v4
	}
	if !v4.Local.Addr().Is4() || !v6.Local.Addr().Is6() {
		t.Fatalf("%s: connections from %s and %s, want one IPv4 and one IPv6", side, v4.Local, v6.Local)
	}
	return v4, v6
}

// clientConnection is what the capture's client has of a connection from
// local to remote that joined a subflow from join:port.
func clientConnection(token uint32, local, remote netip.AddrPort, join netip.Addr, port uint16, endpoint uint8, backup bool) Connection {
	return Connection{
		Token: token, Local: local, Remote: remote, State: StateEstablished,
		JoinedSubflows: 1, MaxSubflows: 2, LocalAddrUsed: 2, BytesSent: 1, BytesReceived: 1, ByteCounters: true,
		Subflows: []Subflow{
			// One byte each way over the initial subflow; tcpi_bytes_acked
			// also counts the SYN of a subflow this end opened.
			{Local: local, Remote: remote, State: StateEstablished, Initial: true, BytesSent: 2, BytesReceived: 1},
			{Local: netip.AddrPortFrom(join, port), Remote: remote, State: StateEstablished,
				LocalID: endpoint, Backup: backup, IfIndex: ifindexC2, BytesSent: 1},
		},
	}
}
