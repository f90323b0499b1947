package manual

// Command is a command of mptcpgd: its synopsis, what it does and the
// flags it takes. Text is mdoc: paragraphs separated by blank lines; a line
// may start with a macro (".Ic show").
type Command struct {
	Name  string   // "" is the daemon itself
	Args  string   // mdoc arguments after the flags: "Ar UNIT ..."
	Flags []string // names in Flags
	// Selector is a flag that selects this form of the command
	// (run --check): given, not optional, and first.
	Selector string
	Text     string
}

// Flag is a command-line flag.
type Flag struct {
	Name string
	Arg  string // the value's placeholder; "" for a boolean flag
	Text string
	// Complete is what bash completes the value with: "file", "dir", or
	// words separated by spaces.
	Complete string
}

// common are the flags of every command but run, enable and disable.
var common = []string{"config", "socket", "state", "log-level"}

// Commands are mptcpgd's commands, in the order of the page.
var Commands = []Command{
	{Name: "", Flags: common, Text: `Run the daemon: read the configuration, take the network namespace's lock,
adopt the endpoints recorded in the state file, and keep the kernel's
endpoints, limits, rules and routes as the configuration asks until
SIGTERM or SIGINT.
Under systemd it reports readiness (Type=notify) once the endpoints of the
addresses that exist are in place, and pets the watchdog.
One daemon runs per network namespace: a second one exits saying so.`},
	{Name: "check", Flags: common, Text: `Validate the configuration as start-up and reload do, print the
configuration in effect, and exit 0; exit 1 naming the file, line and key
of every problem.`},
	{Name: "show", Flags: append([]string{"json"}, common...), Text: `Print what is managed and why: interfaces, addresses and why one is
skipped, endpoints (ours, adopted, foreign), limits, our rules and routes,
the units under
.Ic run ,
and, when the daemon answers on its control socket, live connections,
their subflows and the paths they lack.
Without a daemon it reads the kernel and the state file.`},
	{Name: "cleanup", Flags: common, Text: `Remove every endpoint, rule and route that is ours and restore the
limits found at first start.
It refuses while a daemon runs in the namespace: stop it first.
Removing the Debian package runs it.`},
	{Name: "reload", Flags: []string{"socket"}, Text: `Ask the running daemon to reload its configuration and wait for its
verdict: exit 1 with the reason when it refuses the new configuration and
keeps the running one.
The unit's ExecReload= runs it, so that
.Ic systemctl reload mptcpgd
fails visibly.`},
	{Name: "rejoin", Flags: []string{"socket"}, Text: `Retry every failed join now, for example after fixing a firewall.`},
	{Name: "metrics", Flags: []string{"socket"}, Text: `Print the running daemon's metrics in the Prometheus text format, from
its control socket: per interface its endpoints, carrier, gateway, subflows,
joins and bytes over MPTCP subflows; for the daemon its connections,
repairs, resyncs, event losses and netlink write latency.
The [metrics] table of
.Xr mptcpgd.toml 5
publishes the same for node_exporter's textfile collector or over HTTP.`},
	{Name: "top", Flags: []string{"count", "socket"}, Text: `A live view of the interfaces, refreshed every second from the running
daemon: MPTCP throughput each way, subflows, joins and failures, and each
endpoint's state and why.
.Ic q
or Ctrl-C leaves the terminal as it was; when standard output is not a
terminal it prints plain blocks instead.`},
	{Name: "adopt", Flags: append([]string{"dry-run"}, common...), Text: `Take over endpoints that someone else made on addresses mptcpgd
manages, for example after the state file was lost; the daemon then
converges them to the configuration.
Through the running daemon if one answers, else in the state file.`},
	{Name: "run", Args: "Op Fl \\- Ar cmd Op Ar arg ...", Flags: []string{"no-forward", "argv0"}, Text: `Run
.Ar cmd
so that its TCP sockets, and those of everything it starts, are Multipath
TCP sockets: a seccomp filter hands every
.Fn socket AF_INET|AF_INET6 SOCK_STREAM 0
call to
.Nm ,
which creates an MPTCP socket in its place (Linux 5.9 or later).
It works for static, dynamic and Go programs and needs no root; exit status
and signals pass through.
It replaces mptcpize of the mptcpd package, which only reaches programs
that call libc's
.Fn socket .

Sockets made through io_uring or the 32-bit
.Xr socketcall 2
interface stay TCP, and it says so.
Without CAP_SYS_ADMIN it sets no_new_privs: setuid and file-capability
programs run without their privileges.
.Xr clone3 2
fails with ENOSYS under it (its flags are out of the filter's reach), and
the C libraries fall back to
.Xr clone 2 .`},
	{Name: "run", Args: "Ar pid|name ...", Selector: "check", Text: `Show, per process and its children, how many of their TCP sockets are
MPTCP and which fell back to TCP, from the kernel's socket diagnostics.`},
	{Name: "enable", Args: "Ar unit ...", Flags: []string{"user", "root"}, Text: `Run a systemd unit's program under
.Ic mptcpgd run
through a drop-in
.Pa UNIT.d/zz-mptcpgd-run.conf ;
the unit file is never edited.
A template (getty@.service) covers every instance.
The running unit needs a restart.`},
	{Name: "disable", Args: "Ar unit ...", Flags: []string{"user", "root"}, Text: `Remove exactly what
.Ic enable
wrote.`},
	{Name: "version", Flags: nil, Text: `Print the version (also
.Fl \-version ) .`},
}

// Flags are every command's flags, by name.
var Flags = []Flag{
	{Name: "config", Arg: "file", Complete: "file", Text: `The configuration file, default
.Pa /etc/mptcpgd.toml .
Only the default may be absent: the built-in defaults apply.`},
	{Name: "socket", Arg: "path", Complete: "file", Text: `The control socket, default
.Pa /run/mptcpgd/control.sock ,
so that daemons in several network namespaces can share a host.`},
	{Name: "state", Arg: "file", Complete: "file", Text: `The ownership record: the endpoints we own and the limits found at first
start.
Default
.Pa $STATE_DIRECTORY/state.json
under systemd, else
.Pa /var/lib/mptcpgd/state.json .`},
	{Name: "log-level", Arg: "level", Complete: "debug info warn error", Text: `Least severe message logged: debug, info, warn or error; overrides the
configuration's [log] level.`},
	{Name: "json", Text: `show: print the report as JSON, for scripts.`},
	{Name: "dry-run", Text: `adopt: only list what it would take over.`},
	{Name: "count", Arg: "n", Text: `top: stop after
.Ar n
refreshes; 0, the default, runs until q or Ctrl-C.`},
	{Name: "version", Text: `Print the version and exit.`},
	{Name: "check", Text: `run: report the sockets of running processes instead of running a
program.`},
	{Name: "no-forward", Arg: "signals", Complete: "HUP INT QUIT TERM USR1 USR2 WINCH", Text: `run: signals, comma-separated, not to forward to the program because their
sender signals it too;
.Ic enable
sets the unit's stop signal here.`},
	{Name: "argv0", Arg: "name", Text: `run: the program's argv[0], when it is not
.Ar cmd
(systemd's @ prefix).`},
	{Name: "user", Text: `enable, disable: user units (~/.config/systemd/user) instead of system
units.`},
	{Name: "root", Arg: "dir", Complete: "dir", Text: `enable, disable: operate on the unit files under
.Ar dir ,
an offline tree, as
.Ic systemctl \-\-root
does.`},
}

// FlagNamed finds a flag by name.
func FlagNamed(name string) (Flag, bool) {
	for _, f := range Flags {
		if f.Name == name {
			return f, true
		}
	}
	return Flag{}, false
}
