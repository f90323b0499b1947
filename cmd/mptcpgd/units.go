package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mptcpgd/mptcpgd/pkg/show"
	"github.com/mptcpgd/mptcpgd/pkg/unitwrap"
)

const unitUsage = `Usage:
  mptcpgd enable [--user] [--root DIR] UNIT...
      run each unit's program under mptcpgd run, through a drop-in
      (UNIT.d/%s); the unit file is never edited
  mptcpgd disable [--user] [--root DIR] UNIT...
      remove exactly what enable wrote

UNIT is a service (nginx or nginx.service), a template (getty@.service: every
instance) or an instance (getty@tty1.service). On the running system, systemd
reloads its units; a running unit needs a restart to pick the change up.

Flags:
`

// unitCommand is `mptcpgd enable` and `mptcpgd disable`.
func unitCommand(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mptcpgd "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.Bool("user", false, "user units (~/.config/systemd/user) instead of system units")
	root := fs.String("root", "", "operate on the unit files under `DIR`, an offline tree, as systemctl --root does")
	if code, ok := parseSubcommand(fs, args, fmt.Sprintf(unitUsage, unitwrap.FileName), stderr); !ok {
		return code
	}
	scope, err := unitScope(*user, *root)
	if err != nil {
		fmt.Fprintf(stderr, "mptcpgd %s: %v\n", cmd, err)
		return 1
	}
	wrapper, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "mptcpgd %s: where is this program: %v\n", cmd, err)
		return 1
	}
	code := 0
	for _, name := range fs.Args() {
		var res unitwrap.Result
		if cmd == "enable" {
			res, err = unitwrap.Enable(scope, name, wrapper)
		} else {
			res, err = unitwrap.Disable(scope, name)
		}
		if err != nil {
			fmt.Fprintf(stderr, "mptcpgd %s: %v\n", cmd, err)
			code = 1
			continue
		}
		printUnitResult(cmd, name, res, stdout, stderr)
	}
	return code
}

func unitScope(user bool, root string) (unitwrap.Scope, error) {
	s := unitwrap.Scope{Root: root, User: user}
	if !user {
		return s, nil
	}
	s.ConfigHome = os.Getenv("XDG_CONFIG_HOME")
	if s.ConfigHome == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return s, err
		}
		s.ConfigHome = filepath.Join(home, ".config")
	}
	return s, nil
}

func printUnitResult(cmd, name string, res unitwrap.Result, stdout, stderr io.Writer) {
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "mptcpgd %s: warning: %s\n", cmd, w)
	}
	switch {
	case !res.Changed && cmd == "enable":
		fmt.Fprintf(stdout, "%s: already enabled (%s)\n", name, res.Path)
		return
	case !res.Changed:
		fmt.Fprintf(stdout, "%s: not enabled, nothing to remove\n", name)
		return
	case cmd == "enable":
		fmt.Fprintf(stdout, "%s: wrote %s\n", name, res.Path)
		for _, n := range res.Notes {
			fmt.Fprintf(stdout, "  %s\n", n)
		}
	default:
		fmt.Fprintf(stdout, "%s: removed %s\n", name, res.Path)
	}
	if res.ReloadErr != nil {
		fmt.Fprintf(stderr, "mptcpgd %s: warning: %v\n", cmd, res.ReloadErr)
	}
	if res.Reloaded {
		fmt.Fprintf(stdout, "  reloaded systemd; restart the unit to apply it: %s\n", res.Restart)
	} else {
		fmt.Fprintf(stdout, "  when systemd has reloaded its units, restart the unit to apply it: %s\n", res.Restart)
	}
}

// wrappedUnits lists the system's units under mptcpgd run, and the
// invoking user's; a scope that cannot be read is left out.
func wrappedUnits() []show.WrappedUnit {
	var out []show.WrappedUnit
	for _, user := range []bool{false, true} {
		scope, err := unitScope(user, "")
		if err != nil {
			continue
		}
		list, _ := unitwrap.List(scope)
		for _, w := range list {
			out = append(out, show.WrappedUnit{Unit: w.Unit, User: user, Warning: w.Warning})
		}
	}
	return out
}
