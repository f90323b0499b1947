// Package show renders what `mptcpgd show` prints: every interface and
// address with what is done with it and why, the kernel's endpoints and
// limits, our rules and tables, and the live connections when the daemon
// answers.
package show

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/connview"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/netstate"
	"github.com/mptcpgd/mptcpgd/pkg/nmpolicy"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
)

// Report is everything show prints; the daemon sends it over the control
// socket, or show builds it from the kernel when no daemon answers.
type Report struct {
	Version string `json:"version"`
	// Live: the report comes from the running daemon.
	Live bool `json:"live"`
	// Note says why live data is missing.
	Note        string             `json:"note,omitempty"`
	Status      pm.Status          `json:"status"`
	Connections *connview.Snapshot `json:"connections,omitempty"`
	// Units are the systemd units whose program runs under mptcpgd run.
	Units []WrappedUnit `json:"units,omitempty"`
	// Kernel is what the running kernel lacks, when known.
	Kernel *Kernel `json:"kernel,omitempty"`
	// NetworkManager is what NetworkManager does with MPTCP, when the
	// daemon follows it.
	NetworkManager *nmpolicy.Report `json:"networkmanager,omitempty"`
}

// WrappedUnit is a unit that `mptcpgd enable` gave a drop-in.
type WrappedUnit struct {
	Unit string `json:"unit"`
	User bool   `json:"user"`
	// Warning says why the drop-in may not do what it should.
	Warning string `json:"warning,omitempty"`
}

// Kernel is what show says of the running kernel.
type Kernel struct {
	// Version is the kernel's, e.g. "6.1".
	Version string `json:"version"`
	// Lacks lists what it lacks of what mptcpgd uses or shows, one line
	// each (netlinkmptcp.Features.Missing).
	Lacks []string `json:"lacks"`
}

// Render writes the report as text.
func Render(w io.Writer, r Report) error {
	p := &printer{w: w}
	st := r.Status
	src := "from the kernel (no daemon answered)"
	if r.Live {
		src = "from the running daemon"
	}
	p.f("mptcpgd %s: configuration %s, state %s\n", r.Version, st.Source, src)
	if r.Note != "" {
		p.f("note: %s\n", r.Note)
	}
	if st.Disabled != "" {
		p.f("MPTCP IS OFF: %s\n", st.Disabled)
	}

	names := map[int]string{}
	for _, i := range st.Interfaces {
		names[i.Link.Index] = i.Link.Name
	}

	nmOn := map[string]nmpolicy.DeviceVerdict{}
	if r.NetworkManager != nil {
		for _, d := range r.NetworkManager.MPTCPOn() {
			nmOn[d.Interface] = d
		}
	}

	p.section("Interfaces")
	tw := p.table()
	for _, i := range st.Interfaces {
		state := "no carrier"
		if i.Carrier {
			state = "carrier"
		}
		what := "not managed: " + i.Policy
		if i.Managed {
			what = "managed (" + i.Policy + ")"
			if i.Withdrawn != "" {
				what += ", withdrawn: " + i.Withdrawn
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", i.Link.Name, state, what)
		if d, ok := nmOn[i.Link.Name]; ok && i.Managed {
			fmt.Fprintf(tw, "  \t\tNetworkManager manages MPTCP here too (%s) and removes our endpoints when it reapplies; turn it off: %s\n",
				d.Reason, nmpolicy.DisableCommand(d.Profile))
		}
		for _, g := range i.Gateways {
			line := gatewayText(g)
			if g.Origin != srcroute.GatewayNone && !hasDefaultVia(st.Routes, g) {
				line += "; not in effect: our table has no such route (see the addresses below)"
			}
			fmt.Fprintf(tw, "  \t\t%s\n", line)
		}
	}
	tw.Flush()

	p.section("Addresses")
	tw = p.table()
	inKernel := map[netip.Addr]uint8{}
	for _, e := range st.Endpoints {
		inKernel[e.Addr] = e.ID
	}
	for _, a := range st.Addresses {
		id, has := inKernel[a.Addr.Addr]
		var what string
		switch {
		case !a.Managed:
			what = "skipped: " + a.Reason
		case has:
			what = fmt.Sprintf("endpoint id %d", id)
		case r.Live:
			what = "endpoint being added"
		default:
			what = "to be an endpoint (not in the kernel: no daemon runs)"
		}
		fmt.Fprintf(tw, "  %s/%d\t%s\t%s\n", a.Addr.Addr, a.Addr.Prefix.Bits(), a.IfName, what)
	}
	tw.Flush()

	p.section("Endpoints")
	if len(st.Endpoints) == 0 {
		p.f("  none\n")
	}
	tw = p.table()
	for _, e := range st.Endpoints {
		dev := ""
		if e.IfIndex != 0 {
			dev = "dev " + e.IfName
		}
		owner := ownerText[e.Owner]
		port := ""
		if e.Port != 0 {
			port = fmt.Sprintf("port %d", e.Port)
		}
		fmt.Fprintf(tw, "  id %d\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Addr, e.Flags, port, dev, owner)
	}
	tw.Flush()
	if st.Pending > 0 {
		p.f("  %d endpoint operations in progress\n", st.Pending)
	}
	for _, r := range st.Retrying {
		p.f("  retrying after a failure: %s\n", r)
	}
	for _, r := range st.HeldOff {
		p.f("  someone keeps removing it, repair held off: %s\n", r)
	}

	p.section("Limits")
	p.f("  subflows %d, add_addr_accepted %d", st.Limits.Subflows, st.Limits.AddAddrAccepted)
	if st.Limits != st.WantLimits {
		p.f(" (configuration wants subflows %d, add_addr_accepted %d)", st.WantLimits.Subflows, st.WantLimits.AddAddrAccepted)
	}
	p.f("\n")

	p.section("Rules (ours)")
	if len(st.Rules) == 0 {
		p.f("  none\n")
	}
	for _, r := range st.Rules {
		p.f("  %d: from %s lookup %d proto %d\n", r.Priority, r.Src.Addr(), r.Table, r.Protocol)
	}
	p.section("Routes (ours)")
	if len(st.Routes) == 0 {
		p.f("  none\n")
	}
	for _, r := range st.Routes {
		p.f("  table %d: %s\n", r.Table, routeText(r, names))
	}

	if nm := r.NetworkManager; nm != nil {
		renderNetworkManager(p, *nm)
	}

	if len(st.Warnings) > 0 {
		p.section("Warnings")
		for _, w := range st.Warnings {
			p.f("  %s\n", w)
		}
	}

	if len(r.Units) > 0 {
		p.section("Units under mptcpgd run (mptcpgd enable)")
		for _, u := range r.Units {
			scope := ""
			if u.User {
				scope = " (user)"
			}
			p.f("  %s%s\n", u.Unit, scope)
			if u.Warning != "" {
				p.f("    warning: %s\n", u.Warning)
			}
		}
	}

	if k := r.Kernel; k != nil {
		p.section("Kernel")
		if len(k.Lacks) == 0 {
			p.f("  Linux %s: has everything mptcpgd uses\n", k.Version)
		} else {
			p.f("  Linux %s lacks:\n", k.Version)
		}
		for _, l := range k.Lacks {
			p.f("    %s\n", l)
		}
	}

	p.section("Connections")
	switch {
	case r.Connections == nil:
		p.f("  unavailable: the daemon did not answer on its control socket\n")
	default:
		renderConnections(p, *r.Connections, names, lacks(st, *r.Connections))
	}
	return p.err
}

func renderNetworkManager(p *printer, nm nmpolicy.Report) {
	p.section("NetworkManager")
	if !nm.Running {
		p.f("  not running\n")
		return
	}
	p.f("  %s runs; MPTCP handling per device (connection.mptcp-flags):\n", strings.TrimSpace("NetworkManager "+nm.Version))
	if len(nm.Devices) == 0 {
		p.f("  no device has a connection\n")
	}
	tw := p.table()
	for _, d := range nm.Devices {
		what := "off: " + d.Reason
		if d.On {
			what = "on: " + d.Reason
		}
		fmt.Fprintf(tw, "  %s\t%s\n", d.Interface, what)
	}
	tw.Flush()
}

var ownerText = map[pm.Owner]string{
	pm.OwnerOurs:    "ours",
	pm.OwnerAdopt:   "not recorded, matches exactly: the daemon adopts it",
	pm.OwnerKernel:  "implicit (made by the kernel for a join)",
	pm.OwnerForeign: "not ours: left alone",
}

func gatewayText(g srcroute.Gateway) string {
	fam := "IPv4"
	if g.IPv6 {
		fam = "IPv6"
	}
	switch g.Origin {
	case srcroute.GatewayNone:
		return fam + ": " + g.Detail
	case srcroute.GatewayOnLink:
		return fam + ": default dev " + g.IfName + " (" + g.Detail + ")"
	}
	return fmt.Sprintf("%s: default via %s (%s: %s)", fam, g.Addr, g.Origin, g.Detail)
}

// hasDefaultVia tells whether our routes hold g's default route.
func hasDefaultVia(routes []netstate.Route, g srcroute.Gateway) bool {
	for _, r := range routes {
		if r.IsDefault() && r.Dst.Addr().Is6() == g.IPv6 && len(r.NextHops) > 0 &&
			r.NextHops[0].IfIndex == g.IfIndex && r.NextHops[0].Gateway == g.Addr {
			return true
		}
	}
	return false
}

func routeText(r netstate.Route, names map[int]string) string {
	var b strings.Builder
	if r.IsDefault() {
		b.WriteString("default")
	} else {
		b.WriteString(r.Dst.String())
	}
	for _, nh := range r.NextHops {
		if nh.Gateway.IsValid() {
			fmt.Fprintf(&b, " via %s", nh.Gateway)
		}
		if n, ok := names[nh.IfIndex]; ok {
			fmt.Fprintf(&b, " dev %s", n)
		} else {
			fmt.Fprintf(&b, " ifindex %d", nh.IfIndex)
		}
	}
	return b.String()
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) section(title string) { p.f("\n%s\n", title) }

func (p *printer) table() *tabwriter.Writer {
	return tabwriter.NewWriter(writerFunc(func(b []byte) (int, error) {
		p.f("%s", b)
		return len(b), p.err
	}), 0, 4, 2, ' ', 0)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// lacks are, per connection, the paths it lacks: what join supervision
// reports for client connections, and for server connections the signal
// endpoints of ours the client has not joined to (it opens the joins).
func lacks(st pm.Status, snap connview.Snapshot) map[uint32][]string {
	out := map[uint32][]string{}
	for _, c := range snap.Connections {
		if !c.ServerSide || !c.Established {
			continue
		}
		used := map[netip.Addr]bool{}
		for _, sf := range c.Subflows {
			used[sf.Local.Addr()] = true
		}
		for _, e := range st.Endpoints {
			if e.Owner != pm.OwnerOurs || e.Flags&netlinkmptcp.FlagSignal == 0 || used[e.Addr] || e.Addr.Is6() != c.Local.Addr().Is6() {
				continue
			}
			out[c.Token] = append(out[c.Token], fmt.Sprintf("the client has not joined to %s (signal endpoint id %d): on the server side the client opens joins, so nothing is retried here", e.Addr, e.ID))
		}
	}
	for _, m := range st.Missing {
		line := fmt.Sprintf("lacks %s (%s, endpoint id %d): %s", m.Addr, m.IfName, m.Endpoint, m.Reason)
		if !m.NextTry.IsZero() {
			line += "; next try at " + m.NextTry.Format(time.TimeOnly)
		}
		out[m.Token] = append(out[m.Token], line)
	}
	return out
}

func renderConnections(p *printer, s connview.Snapshot, names map[int]string, lacking map[uint32][]string) {
	if !s.Complete {
		p.f("  (incomplete: %s)\n", s.IncompleteReason)
	}
	if len(s.Connections) == 0 {
		p.f("  none\n")
	}
	for _, c := range s.Connections {
		side := "client"
		if c.ServerSide {
			side = "server"
		}
		state := "established"
		if !c.Established {
			state = "opening"
		}
		p.f("  token %08x  %s -> %s  %s, %s, %d subflows\n", c.Token, c.Local, c.Remote, side, state, len(c.Subflows))
		for _, sf := range c.Subflows {
			var notes []string
			if sf.Initial {
				notes = append(notes, "initial")
			}
			if n, ok := names[sf.IfIndex]; ok {
				notes = append(notes, "dev "+n)
			}
			if sf.Backup {
				notes = append(notes, "backup")
			}
			p.f("    subflow %s -> %s  ids %d/%d  %s\n", sf.Local, sf.Remote, sf.LocalID, sf.RemoteID, strings.Join(notes, ", "))
		}
		for _, pa := range c.PeerAddrs {
			p.f("    peer announced %s (id %d)\n", pa.Addr, pa.ID)
		}
		for _, l := range lacking[c.Token] {
			p.f("    %s\n", l)
		}
	}
	for _, l := range s.Listeners {
		p.f("  listening %s\n", l)
	}
}
