package netlinkmptcp

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// capturedSeeds returns the stored kernel messages whose names match pattern.
func capturedSeeds(f *testing.F, pattern string) [][]byte {
	files, err := filepath.Glob(filepath.Join(captureDir, pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no captured messages match %s: %v", pattern, err)
	}
	var seeds [][]byte
	for _, file := range files {
		seeds = append(seeds, readCapture(f, strings.TrimSuffix(filepath.Base(file), ".hex")))
	}
	return seeds
}

// FuzzParseEndpoint decodes GET_ADDR replies: no input may panic, and an
// endpoint that decodes survives encoding and decoding again.
func FuzzParseEndpoint(f *testing.F) {
	for _, m := range capturedSeeds(f, "get_addr_*.hex") {
		f.Add(m[4:]) // the attributes after the generic netlink header
	}
	f.Add([]byte{})
	f.Add(nest(attrAddr))
	f.Add(nest(attrAddr, famIPv4, attr(addrAttrAddr4, []byte{192, 0, 2})))
	f.Add(nest(attrAddr, famIPv6, addr6("::ffff:192.0.2.1"), port(1), ifIdx(-1)))
	f.Add(nest(attrAddr, famIPv4, addr4("192.0.2.1"), nest(attrAddr, famIPv4)))
	f.Add([]byte{0xff, 0xff, 1, 0x80})

	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseEndpointMessage(b)
		if err != nil {
			return
		}
		if !e.Addr.IsValid() {
			t.Fatalf("decoded an endpoint without an address: %+v", e)
		}
		ae := netlink.NewAttributeEncoder()
		ae.Nested(attrAddr, endpointNest(e, false))
		again, err := ae.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := parseEndpointMessage(again); err != nil || got != e {
			t.Fatalf("round trip of %+v gave %+v, %v", e, got, err)
		}
	})
}

// FuzzParseEvent decodes event messages: no input may panic.
func FuzzParseEvent(f *testing.F) {
	for _, pattern := range []string{"client_*.hex", "server_*.hex"} {
		for _, m := range capturedSeeds(f, pattern) {
			f.Add(m)
		}
	}
	hand := []genetlink.Message{
		eventMessage(EventAnnounced, evToken, evAddr(evAttrDaddr6, "2001:db8::9")),
		eventMessage(EventSubClosed, evToken, evU32(evAttrResetReason, 1), evU8(evAttrError, 104)),
		eventMessage(EventCreated, attr(evAttrSport, []byte{1})),
		eventMessage(EventCreated, evFamily4, evAddr(evAttrSaddr6, "2001:db8::1"), evPort(evAttrSport, 1)),
		eventMessage(0xff, attr(0xffff, nil)),
	}
	for _, m := range hand {
		b, err := m.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		var m genetlink.Message
		if err := m.UnmarshalBinary(b); err != nil {
			return
		}
		e, err := parseEvent(m)
		if err != nil {
			return
		}
		if e.Type != EventType(m.Header.Command) {
			t.Fatalf("event type %d from command %d", e.Type, m.Header.Command)
		}
		if s := e.String(); !strings.HasPrefix(s, e.Type.String()) {
			t.Fatalf("String() = %q does not start with the type", s)
		}
	})
}
