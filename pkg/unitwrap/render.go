package unitwrap

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/launch"
)

// Lines of the drop-in that record what enable did, for show, a later
// enable and disable.
const (
	recordWraps   = "# mptcpgd-wraps: ExecStart="
	recordCreated = "# mptcpgd-created-directory: "
)

// dropIn is the drop-in enable writes, and what it records.
type dropIn struct {
	// wraps are the unit's ExecStart values it replaces.
	wraps []string
	// created are the directories enable created for it, outermost
	// first, as paths inside the root.
	created []string
	// notes say, one line each, what it changes and why.
	notes []string
	text  string
}

// execPrefixes are the characters that may start an ExecStart= value
// (systemd.service(5), "Command lines"); "!!" is two of them.
const execPrefixes = "-@:+!"

// render writes the drop-in for unit name with service svc, running
// wrapper (the mptcpgd binary).
func render(name string, svc service, wrapper string, created []string) (dropIn, error) {
	if len(svc.execStart) == 0 {
		return dropIn{}, fmt.Errorf("%s has no ExecStart= to run under mptcpgd run", name)
	}
	if svc.families.none() {
		return dropIn{}, fmt.Errorf("%s may create no sockets (RestrictAddressFamilies=none): there is nothing to make MPTCP", name)
	}
	noForward, err := signalsSystemdSendsToAll(svc)
	if err != nil {
		return dropIn{}, fmt.Errorf("%s: %w", name, err)
	}
	d := dropIn{wraps: svc.execStart, created: created}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `mptcpgd enable %s`: runs the unit's program under `mptcpgd run`, so that\n", name)
	fmt.Fprintf(&b, "# its TCP sockets are Multipath TCP sockets. `mptcpgd disable %s` removes it.\n", name)
	b.WriteString("# The lines below record what it replaced; mptcpgd compares them with the unit.\n")
	for _, cmd := range svc.execStart {
		b.WriteString(recordWraps + cmd + "\n")
	}
	for _, dir := range created {
		b.WriteString(recordCreated + dir + "\n")
	}
	b.WriteString("\n[Service]\nExecStart=\n")
	for _, cmd := range svc.execStart {
		wrapped, err := wrapCommand(cmd, wrapper, noForward)
		if err != nil {
			return dropIn{}, fmt.Errorf("%s: %w", name, err)
		}
		b.WriteString("ExecStart=" + wrapped + "\n")
	}
	d.notes = append(d.notes, "ExecStart runs under mptcpgd run; Environment= and EnvironmentFile= stay as they are, "+
		"and GODEBUG=multipathtcp=1 is merged into the environment the program gets")
	if len(noForward) > 0 {
		d.notes = append(d.notes, fmt.Sprintf("systemd sends %s to every process of the unit (KillMode=control-group): "+
			"mptcpgd run does not forward it again", strings.Join(noForward, " and ")))
	}
	if svc.syscallFilter {
		b.WriteString("# The unit has a SystemCallFilter=; mptcpgd run installs a seccomp filter.\nSystemCallFilter=seccomp\n")
		d.notes = append(d.notes, "SystemCallFilter=seccomp: the unit's system call filter must let mptcpgd run install its seccomp filter")
	}
	if !svc.families.allows("AF_UNIX") {
		b.WriteString("# The unit restricts socket families; mptcpgd run hands the filter over through a unix socket pair.\n" +
			"RestrictAddressFamilies=AF_UNIX\n")
		d.notes = append(d.notes, "RestrictAddressFamilies=AF_UNIX: mptcpgd run passes the filter's listener through a unix socket pair")
	}
	if access := notifyAccess(svc); access == "main" || access == "exec" {
		b.WriteString("# sd_notify messages now come from a child of the main process.\nNotifyAccess=all\n")
		d.notes = append(d.notes, fmt.Sprintf("NotifyAccess=all (was %s): the program, now a child of mptcpgd run, sends the unit's sd_notify messages", access))
	}
	if svc.typ == "forking" && svc.pidFile == "" {
		d.notes = append(d.notes, "Type=forking without PIDFile=: systemd guesses the main PID, and the supervisor process that "+
			"stays beside the daemon makes the guess fail; give the unit a PIDFile=")
	}
	d.text = b.String()
	return d, nil
}

// notifyAccess is the unit's effective NotifyAccess=: its own, or the
// default, main for Type=notify and none otherwise.
func notifyAccess(svc service) string {
	switch {
	case svc.notifyAccess != "":
		return svc.notifyAccess
	case svc.typ == "notify" || svc.typ == "notify-reload":
		return "main"
	}
	return "none"
}

// signalsSystemdSendsToAll are the signals that systemd, stopping the unit
// with KillMode=control-group (the default), sends to every process in it,
// the program included: KillSignal=, RestartKillSignal= and, with
// SendSIGHUP=yes, SIGHUP. Other signals (ExecReload's kill $MAINPID, the
// watchdog's) reach the main process alone and are forwarded.
func signalsSystemdSendsToAll(svc service) ([]string, error) {
	if svc.killMode != "" && svc.killMode != "control-group" {
		return nil, nil
	}
	names := []string{cmp.Or(svc.killSignal, "SIGTERM")}
	if svc.restartKillSignal != "" {
		names = append(names, svc.restartKillSignal)
	}
	if yes(svc.sendSIGHUP) {
		names = append(names, "SIGHUP")
	}
	var out []string
	for _, n := range names {
		sigs, err := launch.ParseSignals(n)
		if err != nil || len(sigs) != 1 {
			return nil, fmt.Errorf("signal %q: %v", n, err)
		}
		if name := unix.SignalName(sigs[0]); !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// yes reads a systemd boolean.
func yes(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "y", "true", "t", "on":
		return true
	}
	return false
}

// wrapCommand turns an ExecStart= value into one that runs it under
// `wrapper run`. Its prefixes stay in front, except @ (the next word is
// argv[0]), which becomes --argv0; specifiers and $VARIABLES in the
// command are expanded by systemd as before.
func wrapCommand(cmd, wrapper string, noForward []string) (string, error) {
	rest := strings.TrimLeft(cmd, execPrefixes)
	prefixes := cmd[:len(cmd)-len(rest)]
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(prefixes, "@", ""))
	b.WriteString(quoteWord(wrapper))
	b.WriteString(" run")
	if len(noForward) > 0 {
		b.WriteString(" --no-forward=" + strings.Join(noForward, ","))
	}
	if strings.Contains(prefixes, "@") {
		spans := wordSpans(rest)
		if len(spans) < 2 {
			return "", fmt.Errorf("ExecStart=%s: the @ prefix needs a path and an argv[0]", cmd)
		}
		b.WriteString(" --argv0 " + rest[spans[1][0]:spans[1][1]])
		rest = rest[spans[0][0]:spans[0][1]] + rest[spans[1][1]:]
	}
	if strings.TrimSpace(rest) == "" {
		return "", errors.New("ExecStart= with no command")
	}
	b.WriteString(" -- " + rest)
	return b.String(), nil
}

// quoteWord writes a path as one word of a command line: % doubled (a
// specifier otherwise), quoted if it has spaces, quotes or backslashes.
func quoteWord(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// readRecord reads what a drop-in of ours recorded.
func readRecord(text string) (wraps, created []string) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, recordWraps); ok {
			wraps = append(wraps, v)
		}
		if v, ok := strings.CutPrefix(line, recordCreated); ok {
			created = append(created, v)
		}
	}
	return wraps, created
}
