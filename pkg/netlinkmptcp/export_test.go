package netlinkmptcp

import (
	"testing"

	"golang.org/x/sys/unix"
)

// SocketpairEvents returns Events reading from one end of a datagram
// socketpair, and a function that writes one datagram to the other end:
// the event path without a kernel, for benchmarks outside this package.
func SocketpairEvents(tb testing.TB) (*Events, func([]byte)) {
	p := newPairEvents(tb)
	ev := &Events{conn: p, familyID: testFamily.ID}
	return ev, func(b []byte) {
		if err := unix.Send(p.peer, b, 0); err != nil {
			tb.Fatal(err)
		}
	}
}

// EncodeEvent lays out a client-side event as the kernel does, in a
// datagram of its own.
func EncodeEvent(tb testing.TB, e Event) []byte {
	attrs := [][]byte{attr(evAttrToken, hostU32(e.Token))}
	if e.Type != EventClosed {
		attrs = append(attrs, attr(evAttrFamily, hostU16(unix.AF_INET)),
			attr(evAttrSaddr4, e.Local.Addr().AsSlice()), attr(evAttrDaddr4, e.Remote.Addr().AsSlice()),
			attr(evAttrSport, netU16(e.Local.Port())), attr(evAttrDport, netU16(e.Remote.Port())),
			attr(evAttrLocID, []byte{e.LocalID}), attr(evAttrRemID, []byte{e.RemoteID}))
	}
	body, err := eventMessage(e.Type, attrs...).MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	b, err := frame(testFamily.ID, body)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
