package netlinkmptcp

import (
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestCapture records real kernel messages into testdata/capture, which the
// unit tests decode (captured_test.go) and the fuzz targets start from. It
// changes the repository, so it runs only when asked:
//
//	go test ./pkg/netlinkmptcp/ -run TestCapture -capture
var capture = flag.Bool("capture", false, "run TestCapture: record kernel messages into testdata/capture")

const captureDir = "testdata/capture"

// The endpoints of the captured dump: every attribute and flag shows up at
// least once, with ids that are not in insertion order.
var captureEndpoints = []Endpoint{
	{Addr: clientB, Flags: FlagSubflow, IfIndex: ifindexC2},                                  // id chosen by the kernel: 1
	{ID: 7, Addr: clientA, Port: 8443, Flags: FlagSignal},                                    // the kernel listens on it
	{ID: 9, Addr: clientA6, Flags: FlagSubflow | FlagBackup | FlagFullmesh},                  // IPv6
	{ID: 200, Addr: netip.MustParseAddr("203.0.113.9"), Flags: FlagSignal | FlagLaminar},     // 6.18 flag
	{ID: 255, Addr: netip.MustParseAddr("2001:db8:ff::1"), Flags: FlagSubflow, IfIndex: 1e6}, // largest id, unchecked ifindex
}

// captureLimits are set before the GET_LIMITS capture: two different values.
var captureLimits = Limits{Subflows: 3, AddAddrAccepted: 5}

func TestCapture(t *testing.T) {
	if !*capture {
		t.Skip("records kernel messages into testdata/capture; run with -capture")
	}
	tb := newTestbed(t)
	cc, sc := dial(t, tb.clientCfg), dial(t, tb.serverCfg)
	if err := os.MkdirAll(captureDir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := &captureWriter{t: t, release: kernelRelease(t)}

	// Command replies.
	for _, e := range captureEndpoints {
		addEndpoint(t, cc, e)
	}
	msgs, err := cc.execute("capture", cmdGetAddr, netlink.Dump, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		w.write(fmt.Sprintf("get_addr_dump_%d", i), "GET_ADDR dump reply, message "+fmt.Sprint(i), m)
	}
	msgs, err = cc.execute("capture", cmdGetAddr, 0, func(ae *netlink.AttributeEncoder) {
		ae.Nested(attrAddr, idNest(7))
	})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("GET_ADDR id 7: %d replies, %v", len(msgs), err)
	}
	w.write("get_addr_id7", "GET_ADDR reply for id 7", msgs[0])
	setLimits(t, cc, captureLimits.Subflows, captureLimits.AddAddrAccepted)
	msgs, err = cc.execute("capture", cmdGetLimits, 0, nil)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("GET_LIMITS: %d replies, %v", len(msgs), err)
	}
	w.write("get_limits", fmt.Sprintf("GET_LIMITS reply (subflows %d, add_addr_accepted %d)", captureLimits.Subflows, captureLimits.AddAddrAccepted), msgs[0])
	if err := cc.FlushEndpoints(); err != nil {
		t.Fatal(err)
	}

	// Events of one IPv4 connection, as in TestIntegrationEvents but with
	// fixed ports and ids.
	setLimits(t, cc, 2, 0)
	setLimits(t, sc, 2, 0)
	cev := record(t, tb.clientCfg, "client")
	sev := record(t, tb.serverCfg, "server")
	addEndpoint(t, cc, Endpoint{ID: 2, Addr: clientB, Flags: FlagSubflow, IfIndex: ifindexC2})

	listenAt := netip.AddrPortFrom(serverA, serverPort)
	ln, _ := listenMPTCP(t, tb.server, listenAt)
	w.event(sev, "server", EventListenerCreated)
	conn := dialMPTCP(t, tb.client, netip.AddrPortFrom(clientA, clientPort), listenAt)
	w.event(cev, "client", EventCreated)
	w.event(cev, "client", EventEstablished)
	w.event(sev, "server", EventCreated)
	w.event(sev, "server", EventEstablished)
	w.event(cev, "client", EventSubEstablished)
	w.event(sev, "server", EventSubEstablished)

	addEndpoint(t, sc, Endpoint{ID: 3, Addr: serverB, Flags: FlagSignal})
	w.event(cev, "client", EventAnnounced)
	if err := cc.SetEndpointFlags(2, FlagSubflow|FlagBackup); err != nil {
		t.Fatal(err)
	}
	w.event(sev, "server", EventSubPriority)
	if err := sc.DeleteEndpoint(3); err != nil {
		t.Fatal(err)
	}
	w.event(cev, "client", EventRemoved)
	if err := cc.DeleteEndpoint(2); err != nil {
		t.Fatal(err)
	}
	w.event(cev, "client", EventSubClosed)
	w.event(sev, "server", EventSubClosed)
	conn.Close()
	w.event(cev, "client", EventClosed)
	w.event(sev, "server", EventClosed)
	ln.Close()
	w.event(sev, "server", EventListenerClosed)

	// IPv6: a listener and a connection.
	listen6 := netip.AddrPortFrom(serverA6, serverPort)
	ln6, _ := listenMPTCP(t, tb.server, listen6)
	w.eventAs(sev, "server", EventListenerCreated, "server_listener_created_v6")
	conn6 := dialMPTCP(t, tb.client, netip.AddrPortFrom(clientA6, clientPort), listen6)
	w.eventAs(cev, "client", EventCreated, "client_created_v6")
	conn6.Close()
	ln6.Close()
}

type captureWriter struct {
	t       *testing.T
	release string
}

// event waits for the next event of typ in r and stores it as SIDE_TYPE.
func (w *captureWriter) event(r *recorder, side string, typ EventType) {
	w.t.Helper()
	w.eventAs(r, side, typ, side+"_"+typ.String())
}

func (w *captureWriter) eventAs(r *recorder, side string, typ EventType, name string) {
	w.t.Helper()
	e, m := r.waitType(typ)
	w.write(name, fmt.Sprintf("event %s seen in the %s namespace: %s", typ, side, e), m)
}

// write stores m as hex, 16 bytes a line, under comment lines that say what
// it is.
func (w *captureWriter) write(name, what string, m genetlink.Message) {
	w.t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		w.t.Fatal(err)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "# %s\n# generic netlink header and attributes, captured on Linux %s by TestCapture\n", what, w.release)
	for len(b) > 0 {
		n := min(16, len(b))
		s.WriteString(hex.EncodeToString(b[:n]))
		s.WriteString("\n")
		b = b[n:]
	}
	if err := os.WriteFile(filepath.Join(captureDir, name+".hex"), []byte(s.String()), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func kernelRelease(t *testing.T) string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(u.Release[:])
}
