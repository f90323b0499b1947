package netlinkmptcp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"
)

// The quiet socket reads what the ordinary path reads: a table of as many
// endpoints as the kernel takes, and the limits.
func TestIntegrationQuietReads(t *testing.T) {
	tb := newTestbed(t)
	c := dial(t, tb.clientCfg)
	if c.quiet == nil {
		t.Fatal("Dial opened no quiet socket")
	}
	ordinary := &Client{conn: c.conn, familyID: c.familyID, family: c.family}
	setLimits(t, c, 3, 5)
	added := 0
	for i := 1; i <= 255; i++ {
		addr := netip.AddrFrom4([4]byte{198, 18, byte(i), 1})
		if _, err := c.AddEndpoint(Endpoint{Addr: addr, Flags: FlagSignal}); err != nil {
			t.Logf("the kernel took %d endpoints; the next: %v", added, err)
			break
		}
		added++
	}
	if added < 8 {
		t.Fatalf("only %d endpoints added", added)
	}

	quietEps, err := c.quiet.endpoints()
	if err != nil {
		t.Fatal(err)
	}
	want, err := ordinary.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, quietEps, cmpopts.EquateComparable(netip.Addr{})); diff != "" || len(want) != added {
		t.Errorf("quiet endpoints (-ordinary +quiet), %d added:\n%s", added, diff)
	}
	quietLimits, err := c.quiet.limits()
	if err != nil {
		t.Fatal(err)
	}
	if wantLimits, err := ordinary.Limits(); err != nil || quietLimits != wantLimits || quietLimits.AddAddrAccepted != 5 {
		t.Errorf("quiet limits %v, ordinary %v (%v); want 3/5", quietLimits, wantLimits, err)
	}
	// A later request ignores nothing and mixes up nothing: the replies
	// match their request.
	for i := range 3 {
		eps, err := c.Endpoints()
		if err != nil || len(eps) != added {
			t.Errorf("Endpoints, round %d: %d endpoints, %v; want %d", i, len(eps), err, added)
		}
	}
}

// Replies that are not the request's are skipped, an error is the
// kernel's errno, a reply cut short is incomplete.
func TestQuietReceive(t *testing.T) {
	p := newPairEvents(t)
	q := &quietSocket{familyID: testFamily.ID, seq: 7, buf: make([]byte, quietBufferSize)}
	msg := func(typ uint16, seq uint32, body []byte) []byte {
		b := binary.NativeEndian.AppendUint32(nil, uint32(nlmsgHeaderLen+len(body)))
		b = binary.NativeEndian.AppendUint16(b, typ)
		b = binary.NativeEndian.AppendUint16(b, 0)
		b = binary.NativeEndian.AppendUint32(b, seq)
		b = binary.NativeEndian.AppendUint32(b, 0)
		return append(b, body...)
	}
	genl := func(attrs ...[]byte) []byte {
		return append([]byte{cmdGetAddr, familyVersion, 0, 0}, concat(attrs...)...)
	}
	ep := func(id uint8) []byte {
		return nest(attrAddr, attr(addrAttrFamily, hostU16(unix.AF_INET)), attr(addrAttrID, []byte{id}), attr(addrAttrAddr4, []byte{192, 0, 2, id}))
	}
	tests := []struct {
		name  string
		dgram [][]byte
		ids   []uint8
		err   string
	}{
		{"dump", [][]byte{msg(testFamily.ID, 7, genl(ep(1))), msg(testFamily.ID, 7, genl(ep(2))), msg(unix.NLMSG_DONE, 7, []byte{0, 0, 0, 0})}, []uint8{1, 2}, ""},
		{"a late reply first", [][]byte{msg(testFamily.ID, 6, genl(ep(9))), msg(testFamily.ID, 7, genl(ep(1))), msg(unix.NLMSG_DONE, 7, []byte{0, 0, 0, 0})}, []uint8{1}, ""},
		{"refused", [][]byte{msg(unix.NLMSG_ERROR, 7, hostU32(uint32(0xffffffff)))}, nil, "operation not permitted"},
		{"cut short", [][]byte{msg(testFamily.ID, 7, genl(ep(1)))}, []uint8{1}, errQuietIncomplete.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dgram []byte
			for _, m := range tt.dgram {
				dgram = append(dgram, m...)
			}
			if err := unix.Send(p.peer, dgram, 0); err != nil {
				t.Fatal(err)
			}
			var ids []uint8
			err := q.receive(p.Fd(), true, func(attrs []byte) error {
				e, err := parseEndpointMessage(attrs)
				ids = append(ids, e.ID)
				return err
			})
			if fmt.Sprint(ids) != fmt.Sprint(tt.ids) || (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
				t.Errorf("ids %v, err %v; want %v, %q", ids, err, tt.ids, tt.err)
			}
		})
	}
}
