package sockdiag

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func withInode(b []byte, inode uint32) []byte {
	binary.NativeEndian.PutUint32(b[68:], inode)
	return b
}

func TestListSockets(t *testing.T) {
	replies := map[string][][]byte{
		"mptcp_ipv4": {
			withInode(diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0, info{token: 7, subflows: 1}.encode(96)), 10),
			withInode(diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0, info{token: 9, flags: infoFlagFallback}.encode(96)), 11),
		},
		"mptcp_ipv6": {withInode(diagMsg(unix.AF_INET6, StateListen, local6, remote6, 0), 12)},
		"tcp_ipv4": {
			withInode(diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0), 13),
			// The subflows of socket 10, which report its inode.
			withInode(diagMsg(unix.AF_INET, StateEstablished, local4, remote4, 0, ulp("mptcp", attr(subflowAttrTokenLoc, u32(7)))), 10),
			withInode(diagMsg(unix.AF_INET, StateEstablished, join4, remote4, 0, ulp("mptcp", attr(subflowAttrTokenLoc, u32(7)))), 10),
		},
	}
	got, err := listSockets(fakeKernel(t, func(req []byte) ([]netlink.Message, error) {
		if req[4] != 0xfe || req[5] != 0x1f {
			t.Errorf("request states %x, want every state 1..12", req[4:8])
		}
		var out []netlink.Message
		for _, b := range replies[requestName(req)] {
			out = append(out, netlink.Message{Data: b})
		}
		return out, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{Inode: 10, MPTCP: true, State: StateEstablished, Local: local4, Remote: remote4, JoinedSubflows: 1},
		{Inode: 11, MPTCP: true, State: StateEstablished, Local: local4, Remote: remote4, Fallback: true},
		{Inode: 12, MPTCP: true, State: StateListen, Local: local6, Remote: remote6},
		{Inode: 13, State: StateEstablished, Local: local4, Remote: remote4},
	}
	if d := cmp.Diff(want, got, equateAddrs); d != "" {
		t.Errorf("ListSockets (-want +got):\n%s", d)
	}
}

// TestListSocketsSeesAnMPTCPSocketMadeMeanwhile: an MPTCP listener made
// between the dumps of the two protocols is listed as MPTCP, not as the
// plain TCP listener its subflow would look like alone.
func TestListSocketsSeesAnMPTCPSocketMadeMeanwhile(t *testing.T) {
	listener := map[string][]byte{
		"mptcp_ipv6": withInode(diagMsg(unix.AF_INET6, StateListen, local6, remote6, 0), 20),
		"tcp_ipv6":   withInode(diagMsg(unix.AF_INET6, StateListen, local6, remote6, 0, ulp("mptcp")), 20),
	}
	requests := 0
	got, err := listSockets(fakeKernel(t, func(req []byte) ([]netlink.Message, error) {
		requests++
		// Made once the first protocol's two dumps are done.
		if b, ok := listener[requestName(req)]; ok && requests > 2 {
			return []netlink.Message{{Data: b}}, nil
		}
		return nil, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{{Inode: 20, MPTCP: true, State: StateListen, Local: local6, Remote: remote6}}
	if d := cmp.Diff(want, got, equateAddrs); d != "" {
		t.Errorf("ListSockets (-want +got):\n%s", d)
	}
}
