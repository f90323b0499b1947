package show

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/connview"
	"github.com/mptcpgd/mptcpgd/pkg/rejoin"
)

// The text of `mptcpgd show` lists, under each connection, the paths it
// lacks and why, with the next retry; a connection that lacks nothing gets
// no such line.
func TestRenderListsConnectionsMissingAPath(t *testing.T) {
	r := report()
	r.Live = true
	local, server := netip.MustParseAddrPort("192.0.2.2:40000"), netip.MustParseAddrPort("203.0.113.1:80")
	other := netip.MustParseAddrPort("192.0.2.2:40001")
	r.Connections = &connview.Snapshot{Complete: true, Connections: []connview.Connection{
		{Token: 0xa1, Local: local, Remote: server, Established: true, Subflows: []connview.Subflow{{Local: local, Remote: server, Initial: true}}},
		{Token: 0xb2, Local: other, Remote: server, Established: true, Subflows: []connview.Subflow{{Local: other, Remote: server, Initial: true}}},
	}}
	r.Status.Missing = []rejoin.Missing{{Token: 0xa1, Endpoint: 2, Addr: netip.MustParseAddr("198.51.100.2"), IfName: "eth2",
		Reason: "join failed: EHOSTUNREACH (no route to host) at 12:00:00", NextTry: time.Date(2026, 1, 1, 12, 0, 4, 0, time.Local)}}
	var out strings.Builder
	if err := Render(&out, r); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	want := "  token 000000a1  192.0.2.2:40000 -> 203.0.113.1:80  client, established, 1 subflows\n" +
		"    subflow 192.0.2.2:40000 -> 203.0.113.1:80  ids 0/0  initial\n" +
		"    lacks 198.51.100.2 (eth2, endpoint id 2): join failed: EHOSTUNREACH (no route to host) at 12:00:00; next try at 12:00:04\n" +
		"  token 000000b2"
	if !strings.Contains(text, want) {
		t.Errorf("show does not list the connection's missing path under it; want\n%s\nin\n%s", want, text)
	}
	if n := strings.Count(text, "lacks 198.51.100.2"); n != 1 {
		t.Errorf("%d lines say a connection lacks 198.51.100.2, want 1 (only token a1):\n%s", n, text)
	}
}
