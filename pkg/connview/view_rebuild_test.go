package connview

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

func TestRebuild(t *testing.T) {
	v := New()
	if s := v.Snapshot(); s.Complete || s.IncompleteReason != notReadYet {
		t.Errorf("new view: complete %t (%q), want incomplete until read from the kernel", s.Complete, s.IncompleteReason)
	}
	for _, e := range []netlinkmptcp.Event{created, joined, listenerCreated} {
		v.Apply(e)
	}
	v.MarkIncomplete("events lost")
	if s := v.Snapshot(); s.Complete || s.IncompleteReason != "events lost" || s.Losses != 1 {
		t.Errorf("after MarkIncomplete: complete %t, reason %q, losses %d", s.Complete, s.IncompleteReason, s.Losses)
	}

	server := netip.MustParseAddrPort("[2001:db8:1::1]:8080")
	client := netip.MustParseAddrPort("[2001:db8:1::2]:41001")
	v.Rebuild([]sockdiag.Connection{
		{Token: 7, Local: mapped(serverAddr), Remote: mapped(clientAddr), State: sockdiag.StateEstablished, ServerSide: true,
			Subflows: []sockdiag.Subflow{
				{Local: mapped(serverAddr), Remote: mapped(joinAddr), State: sockdiag.StateEstablished, RemoteID: 2, Backup: true},
				{Local: mapped(serverAddr), Remote: mapped(clientAddr), State: sockdiag.StateEstablished, Initial: true},
			}},
		{Token: 8, Local: server, Remote: client, State: sockdiag.StateSynRecv},
		{Token: 9, Local: clientAddr, Remote: serverAddr, State: sockdiag.StateEstablished, Fallback: true},
		{Token: 10, Local: server, Remote: client, State: sockdiag.StateFinWait1},
	})
	s := v.Snapshot()
	// The server side's connection 7 is not followed; 8 and 10 have no
	// initial subflow left to say which side they are.
	want := Snapshot{
		Connections: []Connection{
			{Token: 8, Local: server, Remote: client},
			{Token: 10, Local: server, Remote: client, Established: true},
		},
		Complete: true,
		Events:   3, Losses: 1, Rebuilds: 1,
	}
	if diff := cmp.Diff(want, s, equateAddrs, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("after Rebuild (-want +got):\n%s", diff)
	}
	// Events go on from the rebuilt view.
	if change, ok := v.Apply(netlinkmptcp.Event{Type: netlinkmptcp.EventClosed, Token: 8}); !ok || !strings.Contains(change, "closed") {
		t.Errorf("closing a rebuilt connection: %q, %t", change, ok)
	}
}

// A program that keeps a finished connection's socket open: the kernel
// closes its subflows without an event, and the view would hold them for
// ever. Prune drops what the socket diagnostics no longer list, but only
// what the view had before they were read.
func TestPruneDropsWhatTheKernelClosedSilently(t *testing.T) {
	v := New()
	v.Rebuild(nil)
	other := func(e netlinkmptcp.Event) netlinkmptcp.Event { e.Token = 0x99; return e }
	gone := func(e netlinkmptcp.Event) netlinkmptcp.Event { e.Token = 0x77; return e }
	for _, e := range []netlinkmptcp.Event{created, established, joined, other(created), other(established), gone(created), gone(established)} {
		v.Apply(e)
	}
	seq := v.Seq()
	// Listed by the kernel: the connection without its joined subflow,
	// the other one as it was; 0x77 is not listed at all.
	listed := []sockdiag.Connection{
		{Token: token, Local: clientAddr, Remote: serverAddr, State: sockdiag.StateCloseWait,
			Subflows: []sockdiag.Subflow{{Local: clientAddr, Remote: serverAddr, Initial: true}}},
		{Token: 0x99, Local: clientAddr, Remote: serverAddr, State: sockdiag.StateEstablished,
			Subflows: []sockdiag.Subflow{{Local: mapped(clientAddr), Remote: mapped(serverAddr), Initial: true}}},
	}
	// A join the listing predates: kept.
	v.Apply(other(joined))

	if n := v.Prune(listed, seq); n != 2 {
		t.Errorf("Prune dropped %d, want 2 (the silent subflow and the vanished connection)", n)
	}
	got := map[uint32][]Subflow{}
	for _, c := range v.Snapshot().Connections {
		got[c.Token] = c.Subflows
	}
	want := map[uint32][]Subflow{token: {initialSubflow}, 0x99: {initialSubflow, joinedSubflow}}
	if diff := cmp.Diff(want, got, equateAddrs); diff != "" {
		t.Errorf("after Prune (-want +got):\n%s", diff)
	}
}
