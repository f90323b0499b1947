package connview

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// say returns the text f makes, or "" without calling f when nothing is
// to be described.
func say(describe bool, f func() string) string {
	if !describe {
		return ""
	}
	return f()
}

// notFollowed is the change text of an event of a connection the view does
// not follow.
func notFollowed(describe bool, ev *netlinkmptcp.Event) string {
	return say(describe, func() string {
		return fmt.Sprintf("ignored %s: connection %08x is not in the view, which has every connection this host opened", ev, ev.Token)
	})
}

func side(serverSide bool) string {
	if serverSide {
		return "server"
	}
	return "client"
}

func priority(backup bool) string {
	if backup {
		return "now a backup"
	}
	return "no longer a backup"
}

// describe is "LOCAL -> REMOTE (ids L/R, ifindex N, backup)".
func describeSubflow(sf Subflow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s -> %s (ids %d/%d", sf.Local, sf.Remote, sf.LocalID, sf.RemoteID)
	if sf.IfIndex != 0 {
		fmt.Fprintf(&b, ", ifindex %d", sf.IfIndex)
	}
	if sf.Backup {
		b.WriteString(", backup")
	}
	b.WriteString(")")
	return b.String()
}

// announcedAddr is an announced address, with its port if it has one.
func announcedAddr(ap netip.AddrPort) string {
	if ap.Port() == 0 {
		return ap.Addr().String()
	}
	return ap.String()
}

// subflowError is the socket error a subflow event carries, if any.
func subflowError(ev netlinkmptcp.Event) string {
	if ev.Error == 0 {
		return ""
	}
	return fmt.Sprintf(", socket error %q", ev.Error.Error())
}

// closeCause says why a subflow closed: the TCP reset's MPTCP reason and
// the socket error, where the event has them.
func closeCause(ev netlinkmptcp.Event) string {
	var parts []string
	if ev.ResetReason != 0 || ev.ResetFlags != 0 {
		p := fmt.Sprintf("reset, reason %d (%s)", ev.ResetReason, resetReason(ev.ResetReason))
		if ev.ResetFlags&resetTransient != 0 {
			p += ", transient"
		}
		parts = append(parts, p)
	}
	if ev.Error != 0 {
		parts = append(parts, fmt.Sprintf("socket error %q", ev.Error.Error()))
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}

// resetTransient is the RESET_FLAGS bit of a transient reset (MP_TCPRST T).
const resetTransient = 1

// resetReasons are the MP_TCPRST reason codes (RFC 8684, MPTCP_RST_*).
var resetReasons = []string{
	"unspecified",
	"MPTCP-specific error",
	"lack of resources",
	"administratively prohibited",
	"too much outstanding data",
	"unacceptable performance",
	"middlebox interference",
}

func resetReason(code uint32) string {
	if int(code) < len(resetReasons) {
		return resetReasons[code]
	}
	return "unknown"
}
