package procsock

import (
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

func TestMatch(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.2:1000")
	b := netip.MustParseAddrPort("192.0.2.2:2000")
	listed := []sockdiag.Socket{
		{Inode: 1, MPTCP: true, State: sockdiag.StateEstablished, Local: b},
		{Inode: 2, State: sockdiag.StateEstablished, Local: a},
		{Inode: 3, MPTCP: true, State: sockdiag.StateListen, Local: a},
		{Inode: 9, State: sockdiag.StateEstablished}, // another process's
	}
	got, unlisted := match([]uint32{3, 1, 2, 7, 8}, listed)
	want := []sockdiag.Socket{listed[1], listed[0], listed[2]}
	if d := cmp.Diff(want, got, cmpopts.EquateComparable(netip.AddrPort{})); d != "" || unlisted != 2 {
		t.Errorf("match: unlisted %d (want 2), sockets (-want +got):\n%s", unlisted, d)
	}
	if m, all := (Process{Sockets: got}).Counts(); m != 2 || all != 3 {
		t.Errorf("Counts: %d of %d, want 2 of 3", m, all)
	}
}

func TestParentAndDescendants(t *testing.T) {
	if got := parentOf(os.Getpid()); got != os.Getppid() {
		t.Errorf("parentOf(self) = %d, want %d", got, os.Getppid())
	}
	pids, err := WithDescendants([]int{os.Getppid()})
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) < 2 || !slices.Contains(pids, os.Getpid()) {
		t.Errorf("descendants of the parent %v do not include this process %d", pids, os.Getpid())
	}
	found, err := Find([]string{comm(os.Getpid())})
	if err != nil || !slices.Contains(found, os.Getpid()) {
		t.Errorf("Find by name %q: %v, %v", comm(os.Getpid()), found, err)
	}
}
