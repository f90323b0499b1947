// Package unitlab is the `mptcpgd enable` / `mptcpgd disable` round trip
// on units that have what real ones have: several Environment= lines with
// quoted values, a GODEBUG of their own, an EnvironmentFile= that
// overrides it, an administrator's drop-in, a hardened sandbox, and a
// template. It checks what a user would see: the program's environment is
// the same with multipathtcp=1 merged into GODEBUG, systemd-analyze verify
// accepts the result, and after disable the unit tree is byte for byte
// what it was.
//
// Who starts the unit is a parameter: on the host, Offline emulates what
// systemd does with the unit files of a --root tree; in a guest whose PID
// 1 is systemd, a test passes Root "/" and an Env that starts the unit
// with systemctl and reads the file its StandardOutput= names.
package unitlab

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// Units are the fixture's units: a service with an administrator's drop-in
// directory, and an instance of a template that has none.
var Units = []string{"mptcpgd-envdemo.service", "mptcpgd-envdemo@one.service"}

// EnvOutput is where the fixture's program, env(1), writes the
// environment it got (its StandardOutput=), on the unit's system.
const EnvOutput = "/run/mptcpgd-envdemo-%i.env"

// Options say where the round trip runs.
type Options struct {
	// Root is the unit tree, "/" for the running system.
	Root string
	// Mptcpgd is the mptcpgd binary to run enable and disable with; the
	// drop-in runs it too.
	Mptcpgd string
	// Env starts unit and returns the environment its program got, one
	// NAME=value per entry.
	Env func(tb lab.TB, unit string) []string
}

// fixture files, as paths inside the root.
var fixture = map[string]string{
	"/usr/lib/systemd/system/mptcpgd-envdemo.service":             service("a service"),
	"/usr/lib/systemd/system/mptcpgd-envdemo@.service":            service("a template"),
	"/etc/systemd/system/mptcpgd-envdemo.service.d/override.conf": "[Service]\nEnvironment=ADMIN=yes\n",
	"/etc/mptcpgd-envdemo/env": "# the EnvironmentFile= of both units\nFROM_FILE=\"quoted in the file\"\n" +
		"GODEBUG=gctrace=0,http2client=0\n",
}

func service(what string) string {
	return `[Unit]
Description=mptcpgd enable/disable round trip: ` + what + `
DefaultDependencies=no

[Service]
Type=oneshot
Environment=PLAIN=1
Environment="SPACED=two words" 'SINGLE=single quoted'
Environment=GODEBUG=http2client=1
EnvironmentFile=/etc/mptcpgd-envdemo/env
ExecStart=/usr/bin/env
StandardOutput=truncate:` + EnvOutput + `
SystemCallFilter=@system-service
RestrictAddressFamilies=AF_INET AF_INET6
NoNewPrivileges=yes
`
}

// expected are variables the fixture gives the unit's program, whoever
// starts it: proof that the units were read as systemd reads them. The
// EnvironmentFile='s GODEBUG overrides the Environment= one, and only the
// service has the administrator's drop-in.
func expected(unit string) map[string]string {
	m := map[string]string{
		"PLAIN": "1", "SPACED": "two words", "SINGLE": "single quoted",
		"FROM_FILE": "quoted in the file", "GODEBUG": "gctrace=0,http2client=0",
	}
	if unit == Units[0] {
		m["ADMIN"] = "yes"
	}
	return m
}

// perStart are variables systemd sets anew for every start.
var perStart = []string{"INVOCATION_ID", "SYSTEMD_EXEC_PID", "JOURNAL_STREAM"}

// RoundTrip writes the fixture into the root, enables and disables both
// units, and checks the program's environment, systemd-analyze verify and
// the tree. The fixture is removed at the end.
func RoundTrip(tb lab.TB, o Options) {
	tb.Helper()
	writeFixture(tb, o.Root)
	before := snapshot(tb, o.Root)
	for _, unit := range Units {
		want := o.Env(tb, unit)
		for k, v := range expected(unit) {
			if got := lookup(want, k); got != v {
				tb.Errorf("%s without mptcpgd: %s=%q, want %q (the units were not read as systemd reads them)", unit, k, got, v)
			}
		}
		out := mptcpgd(tb, o, "enable", "--root", o.Root, unit)
		if !strings.Contains(out, "wrote ") {
			tb.Errorf("mptcpgd enable %s printed no drop-in:\n%s", unit, out)
		}
		verify(tb, o.Root, unit)
		got := o.Env(tb, unit)
		checkMerged(tb, unit, want, got)
	}
	if after := snapshot(tb, o.Root); after == before {
		tb.Errorf("enable changed nothing in the unit tree")
	}
	for _, unit := range Units {
		mptcpgd(tb, o, "disable", "--root", o.Root, unit)
	}
	if after := snapshot(tb, o.Root); after != before {
		tb.Errorf("after disable the unit tree differs from the original:\n%s", diffLines(before, after))
	}
}

// checkMerged compares the program's environment under mptcpgd run with
// the one it had without: equal, but for multipathtcp=1 at the end of
// GODEBUG and the variables systemd sets anew per start.
func checkMerged(tb lab.TB, unit string, without, with []string) {
	tb.Helper()
	clean := func(env []string) []string {
		var out []string
		for _, kv := range env {
			name, _, _ := strings.Cut(kv, "=")
			if !slices.Contains(perStart, name) {
				out = append(out, kv)
			}
		}
		slices.Sort(out)
		return out
	}
	want := clean(without)
	for i, kv := range want {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			want[i] = "GODEBUG=" + v + ",multipathtcp=1"
		}
	}
	if got := clean(with); !slices.Equal(got, want) {
		tb.Errorf("%s under mptcpgd run: the program's environment is not the original with multipathtcp=1 merged into GODEBUG:\n%s",
			unit, diffLines(strings.Join(want, "\n"), strings.Join(got, "\n")))
	}
}

func lookup(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

func writeFixture(tb lab.TB, root string) {
	tb.Helper()
	for p, text := range fixture {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() {
		for p := range fixture {
			os.Remove(filepath.Join(root, p))
		}
		os.Remove(filepath.Join(root, "/etc/systemd/system/mptcpgd-envdemo.service.d"))
		os.Remove(filepath.Join(root, "/etc/mptcpgd-envdemo"))
	})
}

// snapshot describes every file and directory under the root's unit
// directories: path, type, mode and content.
func snapshot(tb lab.TB, root string) string {
	tb.Helper()
	var b strings.Builder
	for _, dir := range []string{"/etc/systemd", "/usr/lib/systemd/system", "/etc/mptcpgd-envdemo"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s %v", strings.TrimPrefix(p, root), fi.Mode())
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				t, _ := os.Readlink(p)
				fmt.Fprintf(&b, " -> %s", t)
			case fi.Mode().IsRegular():
				c, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, " %q", c)
			}
			b.WriteByte('\n')
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			tb.Fatal(err)
		}
	}
	return b.String()
}

func mptcpgd(tb lab.TB, o Options, args ...string) string {
	tb.Helper()
	out, err := run(o.Mptcpgd, args...)
	if err != nil {
		tb.Fatalf("mptcpgd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// verify runs systemd-analyze verify on the unit with the root's unit
// files; it only prints what it finds, so any output is a finding.
func verify(tb lab.TB, root, unit string) {
	tb.Helper()
	out, err := run("systemd-analyze", "verify", "--root="+root, unit)
	if err != nil || strings.TrimSpace(out) != "" {
		tb.Errorf("systemd-analyze verify --root=%s %s: %v\n%s", root, unit, err, out)
	}
}

func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// diffLines lists the lines only in a (-) and only in b (+).
func diffLines(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range slices.Sorted(maps.Keys(ma)) {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range slices.Sorted(maps.Keys(mb)) {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
