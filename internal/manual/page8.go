package manual

import (
	"strings"
	"time"
)

// Page8 is mptcpgd(8).
func Page8(date time.Time) string {
	var w mdocWriter
	w.header(date, "mptcpgd", "8", "mptcpgd", "Multipath TCP path manager for hosts with several uplinks")
	w.line(".Sh SYNOPSIS")
	for _, c := range Commands {
		w.line(".Nm")
		if c.Name != "" {
			w.line(".Cm %s", c.Name)
		}
		if c.Selector != "" {
			w.line(".Fl \\-%s", c.Selector)
		}
		for _, name := range c.Flags {
			f, _ := FlagNamed(name)
			if f.Arg != "" {
				w.line(".Op Fl \\-%s Ar %s", f.Name, f.Arg)
			} else {
				w.line(".Op Fl \\-%s", f.Name)
			}
		}
		if c.Args != "" {
			w.line(".%s", c.Args)
		}
	}
	w.mdocText(description8)
	w.line(".Sh COMMANDS")
	w.line(".Bl -tag -width Ds")
	for _, c := range Commands {
		switch {
		case c.Name == "":
			w.line(".It Nm")
		case c.Selector != "":
			w.line(".It Cm %s Fl \\-%s %s", c.Name, c.Selector, c.Args)
		case c.Args != "":
			w.line(".It Cm %s %s", c.Name, c.Args)
		default:
			w.line(".It Cm %s", c.Name)
		}
		w.mdocText(c.Text)
	}
	w.line(".El")
	w.line(".Sh OPTIONS")
	w.line("Flags take one or two dashes and come after the command.")
	w.line(".Bl -tag -width Ds")
	for _, f := range Flags {
		if f.Arg != "" {
			w.line(".It Fl \\-%s Ar %s", f.Name, f.Arg)
		} else {
			w.line(".It Fl \\-%s", f.Name)
		}
		w.mdocText(f.Text)
	}
	w.line(".El")
	w.mdocText(rest8)
	return w.String()
}

// CommandNames are the distinct command names of the page.
func CommandNames() []string {
	var names []string
	for _, c := range Commands {
		if c.Name != "" && (len(names) == 0 || names[len(names)-1] != c.Name) {
			names = append(names, c.Name)
		}
	}
	return names
}

// FlagsOf are the flags of a command (every variant of it).
func FlagsOf(name string) []Flag {
	var flags []Flag
	seen := map[string]bool{}
	for _, c := range Commands {
		if c.Name != name {
			continue
		}
		for _, n := range append([]string{c.Selector}, c.Flags...) {
			if f, ok := FlagNamed(n); ok && !seen[n] {
				seen[n] = true
				flags = append(flags, f)
			}
		}
	}
	return flags
}

var description8 = strings.TrimSpace(`
.Sh DESCRIPTION
.Nm
keeps the kernel's Multipath TCP endpoints, limits and per-interface source
routing as
.Xr mptcpgd.toml 5
asks, as NICs, cables, DHCP leases and modems come and go.
For every address on a managed interface it adds an MPTCP endpoint with the
configured flags, a rule
.Ql from ADDR lookup TABLE
and a table per interface with the connected route and a default route via
the interface's gateway, so that a subflow from an address leaves through
its interface.
A pulled cable withdraws the interface's endpoints and routing; the cable
back restores them once the gateway answers, and established connections
join over it again.

It touches only what is its own: endpoints it made or adopted are recorded
in the state file, routes and rules carry protocol 177
.Pq Ql proto mptcpgd .
A restart adopts its endpoints with their ids and disturbs no connection.
It replaces mptcpd: the unit conflicts with mptcpd's mptcp.service, and
.Ic mptcpgd run
replaces mptcpize.
`)

var rest8 = strings.TrimSpace(`
.Sh ENVIRONMENT
.Bl -tag -width Ds
.It Ev STATE_DIRECTORY , RUNTIME_DIRECTORY
systemd's StateDirectory= and RuntimeDirectory=: the state file and the
lock live there.
.It Ev NOTIFY_SOCKET , WATCHDOG_USEC
systemd's readiness notification and watchdog.
.El
.Sh FILES
.Bl -tag -width Ds
.It Pa /etc/mptcpgd.toml
The configuration, see
.Xr mptcpgd.toml 5 .
.It Pa /var/lib/mptcpgd/state.json
The ownership record: the endpoints that are ours, the limits found at first
start, and the routing settings that tagged our rules and routes.
.It Pa /run/mptcpgd/control.sock
The control socket of
.Cm show ,
.Cm reload ,
.Cm rejoin
and
.Cm adopt .
.It Pa /run/mptcpgd
Also holds the lock that allows one daemon per network namespace.
.It Pa /lib/systemd/system/mptcpgd.service
The unit: a dynamic user with only CAP_NET_ADMIN.
A unit of the same name in
.Pa /etc/systemd/system ,
left by
.Ic make install ,
hides it.
.It Pa /etc/iproute2/rt_protos.d/mptcpgd.conf
Names protocol 177 mptcpgd for
.Xr ip-route 8
and
.Xr ip-rule 8 .
.El
.Sh SIGNALS
.Bl -tag -width Ds
.It SIGTERM , SIGINT
Stop.
The endpoints, rules and routes stay in place, so that a restart or an
upgrade disturbs no connection, unless
.Cm cleanup_on_exit
is true.
.It SIGHUP
Reload the configuration; a bad one is refused and the running one kept.
.Ic mptcpgd reload
does the same and says the verdict.
.El
.Pp
.Ic mptcpgd run
forwards the signals it receives to the program, except those of
.Fl \-no-forward .
.Sh EXIT STATUS
.Bl -tag -width Ds
.It 0
Success; for
.Cm check ,
a valid configuration.
.It 1
Failure, said on standard error: an invalid configuration, a refused reload,
a daemon already running in the namespace, missing privileges.
.It 2
A command line that cannot be parsed.
.El
.Pp
.Ic mptcpgd run
exits with the program's status, or is killed by the signal that killed the
program, so that a shell or systemd sees what it would see without the
wrapper; 127 when the program is not found, 126 when it cannot be started.
.Sh EXAMPLES
A client with two uplinks, eth1 and eth2, from DHCP: the defaults make a
subflow endpoint for each address and its source routing.
.Bd -literal -offset indent
# systemctl enable --now mptcpgd
# mptcpgd show
# mptcpgd run -- curl -O https://example.org/big.iso
.Ed
.Pp
A server on two ISPs announces both addresses; eth2's gateway is static:
.Bd -literal -offset indent
[endpoints]
flags = ["signal"]
include = ["eth1", "eth2"]

[limits]
add_addr_accepted = 0

[[interface]]
match = "eth2"
gateway4 = "198.18.1.1"
.Ed
.Pp
then
.Ql mptcpgd check
and
.Ql systemctl reload mptcpgd ,
and the server program under
.Ql mptcpgd run
or
.Ql mptcpgd enable nginx.service .
.Pp
A backup LTE modem: its subflows carry traffic only when no other path
works, and its addresses come last when there are more than the kernel's
eight:
.Bd -literal -offset indent
[[interface]]
match = "wwan*"
flags = ["subflow", "backup"]
priority = -10
.Ed
.Pp
Undo everything mptcpgd did in the kernel:
.Bd -literal -offset indent
# systemctl stop mptcpgd
# mptcpgd cleanup
.Ed
.Sh SEE ALSO
.Xr systemctl 1 ,
.Xr mptcpgd.toml 5 ,
.Xr ip-mptcp 8
`)
