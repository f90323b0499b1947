package netlinkmptcp

import (
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdlayher/genetlink"
)

// The messages in testdata/capture were recorded from Linux 6.18 by
// TestCapture (capture_test.go), which sets up exactly the addresses, ports,
// ids and interface indexes these tests expect.

// readCapture returns the raw generic-netlink message stored in
// testdata/capture/NAME.hex.
func readCapture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(captureDir, name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	return decodeHexFile(t, name, b)
}

// decodeHexFile drops the comment lines and decodes the rest.
func decodeHexFile(t testing.TB, name string, b []byte) []byte {
	t.Helper()
	var h strings.Builder
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			h.WriteString(strings.TrimSpace(line))
		}
	}
	raw, err := hex.DecodeString(h.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return raw
}

func capturedMessage(t *testing.T, name string) genetlink.Message {
	t.Helper()
	var m genetlink.Message
	if err := m.UnmarshalBinary(readCapture(t, name)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func TestCapturedEndpoints(t *testing.T) {
	var got []Endpoint
	for _, name := range []string{"get_addr_dump_0", "get_addr_dump_1", "get_addr_dump_2", "get_addr_dump_3", "get_addr_dump_4"} {
		m := capturedMessage(t, name)
		if m.Header.Command != cmdGetAddr {
			t.Errorf("%s: command %d, want GET_ADDR", name, m.Header.Command)
		}
		eps, err := parseEndpointMessages([]genetlink.Message{m})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got = append(got, eps...)
	}
	// The kernel chose id 1 for the endpoint added without one, and dumps
	// in id order.
	want := append([]Endpoint(nil), captureEndpoints...)
	want[0].ID = 1
	if len(got) != len(want) {
		t.Fatalf("decoded %d endpoints, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("endpoint %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	e, err := parseEndpointMessage(capturedMessage(t, "get_addr_id7").Data)
	if e != captureEndpoints[1] || err != nil {
		t.Errorf("GET_ADDR id 7 = %+v, %v; want %+v", e, err, captureEndpoints[1])
	}
}

func TestCapturedLimits(t *testing.T) {
	l, err := parseLimits(capturedMessage(t, "get_limits").Data)
	if err != nil || l != captureLimits {
		t.Errorf("GET_LIMITS = %v, %v; want %v", l, err, captureLimits)
	}
}

func TestCapturedEvents(t *testing.T) {
	var (
		clientMain = netip.AddrPortFrom(clientA, clientPort)
		serverMain = netip.AddrPortFrom(serverA, serverPort)
		// The client's joined subflow has an ephemeral port; the test
		// checks its range and then compares the rest.
		clientJoin = netip.AddrPortFrom(clientB, 0)
	)
	tests := []struct {
		file string
		want Event
	}{
		{"client_created", Event{Type: EventCreated, Family: FamilyIPv4, Local: clientMain, Remote: serverMain}},
		{"client_established", Event{Type: EventEstablished, Family: FamilyIPv4, Local: clientMain, Remote: serverMain}},
		{"client_sub_established", Event{Type: EventSubEstablished, Family: FamilyIPv4, Local: clientJoin, Remote: serverMain, LocalID: 2, IfIndex: ifindexC2}},
		{"client_announced", Event{Type: EventAnnounced, Family: FamilyIPv4, Remote: netip.AddrPortFrom(serverB, serverPort), RemoteID: 3}},
		{"client_removed", Event{Type: EventRemoved, RemoteID: 3}},
		{"client_sub_closed", Event{Type: EventSubClosed, Family: FamilyIPv4, Local: clientJoin, Remote: serverMain, LocalID: 2, IfIndex: ifindexC2}},
		{"client_closed", Event{Type: EventClosed}},
		{"server_listener_created", Event{Type: EventListenerCreated, Family: FamilyIPv4, Local: serverMain}},
		{"server_created", Event{Type: EventCreated, Family: FamilyIPv4, Local: serverMain, Remote: clientMain, ServerSide: true, Flags: EventFlagServerSide}},
		{"server_established", Event{Type: EventEstablished, Family: FamilyIPv4, Local: serverMain, Remote: clientMain, ServerSide: true, Flags: EventFlagServerSide}},
		{"server_sub_established", Event{Type: EventSubEstablished, Family: FamilyIPv4, Local: serverMain, Remote: clientJoin, RemoteID: 2}},
		{"server_sub_priority", Event{Type: EventSubPriority, Family: FamilyIPv4, Local: serverMain, Remote: clientJoin, RemoteID: 2, Backup: true}},
		{"server_sub_closed", Event{Type: EventSubClosed, Family: FamilyIPv4, Local: serverMain, Remote: clientJoin, RemoteID: 2, Backup: true}},
		{"server_closed", Event{Type: EventClosed}},
		{"server_listener_closed", Event{Type: EventListenerClosed, Family: FamilyIPv4, Local: serverMain}},
		{"server_listener_created_v6", Event{Type: EventListenerCreated, Family: FamilyIPv6, Local: netip.AddrPortFrom(serverA6, serverPort)}},
		{"client_created_v6", Event{Type: EventCreated, Family: FamilyIPv6, Local: netip.AddrPortFrom(clientA6, clientPort), Remote: netip.AddrPortFrom(serverA6, serverPort)}},
	}
	// Events of one connection on one host share a token; the two hosts'
	// tokens differ.
	tokens := map[string]uint32{}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseEvent(capturedMessage(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			side, _, _ := strings.Cut(tt.file, "_")
			if strings.HasSuffix(tt.file, "_v6") {
				side += "_v6"
			}
			switch tt.want.Type {
			case EventListenerCreated, EventListenerClosed:
				if got.Token != 0 {
					t.Errorf("listener event with token %08x", got.Token)
				}
			default:
				if got.Token == 0 {
					t.Error("no token")
				}
				if prev, ok := tokens[side]; ok && prev != got.Token {
					t.Errorf("token %08x, other %s events had %08x", got.Token, side, prev)
				}
				tokens[side] = got.Token
				got.Token = 0
			}
			got.Local = dropEphemeral(t, "local", got.Local, tt.want.Local)
			got.Remote = dropEphemeral(t, "remote", got.Remote, tt.want.Remote)
			if got != tt.want {
				t.Errorf("decoded\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
	if tokens["client"] == tokens["server"] {
		t.Errorf("client and server share token %08x", tokens["client"])
	}
}

// dropEphemeral checks a port that want leaves as 0 (an ephemeral port of
// the client) against the capture's port range, then zeroes it.
func dropEphemeral(t *testing.T, what string, got, want netip.AddrPort) netip.AddrPort {
	t.Helper()
	if want.Port() != 0 || !want.Addr().IsValid() {
		return got
	}
	if p := got.Port(); p < ephemeralLow || p > ephemeralHigh {
		t.Errorf("%s port %d is outside the capture's ephemeral range %d-%d (byte order?)", what, p, ephemeralLow, ephemeralHigh)
	}
	return netip.AddrPortFrom(got.Addr(), 0)
}
