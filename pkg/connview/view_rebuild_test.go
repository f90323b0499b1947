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
