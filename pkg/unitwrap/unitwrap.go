// Package unitwrap makes a systemd service run its program under `mptcpgd
// run` with a drop-in, never by editing the unit file: `mptcpgd enable
// UNIT` writes UNIT.d/zz-mptcpgd-run.conf, which replaces ExecStart= with
// the same command behind the wrapper and adds what a hardened unit needs
// for it; `mptcpgd disable UNIT` removes exactly what enable wrote. The
// drop-in records the ExecStart it replaced, so that a changed vendor unit
// is noticed. System units, user units and templates (foo@.service for
// every instance, foo@bar.service for one), on the running system or in an
// offline tree (--root, as systemctl has).
package unitwrap

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// FileName is the drop-in's name: it sorts after the usual names
// (override.conf, 50-foo.conf), so that its ExecStart= comes last.
const FileName = "zz-mptcpgd-run.conf"

// Scope is a set of units: the system's or a user's, in a root.
type Scope struct {
	// Root is the tree the paths are in; "" or "/" is the running system.
	Root string
	// User selects user units, with ConfigHome ($XDG_CONFIG_HOME, or
	// ~/.config) holding the user's own.
	User       bool
	ConfigHome string
}

// searchPath lists the unit directories, the highest priority first, as
// paths inside the root (systemd.unit(5), "Unit File Load Path").
func (s Scope) searchPath() []string {
	if s.User {
		return []string{filepath.Join(s.ConfigHome, "systemd/user"), "/etc/systemd/user", "/run/systemd/user",
			"/usr/local/share/systemd/user", "/usr/share/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user"}
	}
	return []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
		"/usr/lib/systemd/system", "/lib/systemd/system"}
}

// writeDir is where the drop-ins go, inside the root.
func (s Scope) writeDir() string { return s.searchPath()[0] }

// path is p inside the root, on this machine.
func (s Scope) path(p string) string {
	if s.Root == "" {
		return p
	}
	return filepath.Join(s.Root, p)
}

// live says the scope is this machine's running system.
func (s Scope) live() bool { return s.Root == "" || filepath.Clean(s.Root) == "/" }

func (s Scope) systemctl() string {
	if s.User {
		return "systemctl --user"
	}
	return "systemctl"
}

// unitName completes a name without a type to a service and refuses
// anything that is not a service.
func unitName(name string) (string, error) {
	if name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("%q is not a unit name", name)
	}
	if !strings.Contains(name, ".") {
		name += ".service"
	}
	if !strings.HasSuffix(name, ".service") {
		return "", fmt.Errorf("%s is not a service: only services have an ExecStart= to wrap", name)
	}
	return name, nil
}

// dropInNames are the names whose NAME.d directories apply to a unit, the
// most specific first: the unit, its template, its dash prefixes
// (foo-bar-baz.service: foo-bar-.service, foo-.service), and the type.
func dropInNames(name string) []string {
	names := []string{name}
	base := strings.TrimSuffix(name, ".service")
	if prefix, _, ok := strings.Cut(base, "@"); ok {
		names = append(names, prefix+"@.service")
		base = prefix
	}
	for i := len(base) - 1; i > 0; i-- {
		if base[i] == '-' {
			names = append(names, base[:i+1]+".service")
		}
	}
	return append(names, "service")
}

// load reads the unit's service settings from its file and every drop-in
// but ours.
func load(s Scope, name string) (service, error) {
	var svc service
	files, err := unitFiles(s, name, false)
	if err != nil {
		return svc, err
	}
	for _, f := range files {
		text, err := readInRoot(s, f)
		if err != nil {
			return svc, err
		}
		svc.apply(parseUnitFile(text))
	}
	return svc, nil
}

// Assignment is one KEY=VALUE line of a unit.
type Assignment struct {
	Section, Key, Value string
}

// Assignments returns every assignment of the unit as systemd reads them,
// our drop-in included: the unit file's, then its drop-ins'.
func Assignments(s Scope, name string) ([]Assignment, error) {
	files, err := unitFiles(s, name, true)
	if err != nil {
		return nil, err
	}
	var out []Assignment
	for _, f := range files {
		text, err := readInRoot(s, f)
		if err != nil {
			return nil, err
		}
		for _, a := range parseUnitFile(text) {
			out = append(out, Assignment{Section: a.section, Key: a.key, Value: a.value})
		}
	}
	return out, nil
}

// unitFiles lists the unit's file and then its drop-ins in systemd's
// order: the same file name in several directories counts once, from the
// most specific unit name and then the highest-priority directory; the
// drop-ins apply sorted by name.
func unitFiles(s Scope, name string, ours bool) ([]string, error) {
	file, err := findUnitFile(s, name)
	if err != nil {
		return nil, err
	}
	chosen := map[string]string{}
	for _, n := range dropInNames(name) {
		for _, dir := range s.searchPath() {
			entries, err := os.ReadDir(s.path(filepath.Join(dir, n+".d")))
			if err != nil {
				continue
			}
			for _, e := range entries {
				if !strings.HasSuffix(e.Name(), ".conf") || (e.Name() == FileName && !ours) {
					continue
				}
				if _, ok := chosen[e.Name()]; !ok {
					chosen[e.Name()] = filepath.Join(dir, n+".d", e.Name())
				}
			}
		}
	}
	names := make([]string, 0, len(chosen))
	for n := range chosen {
		names = append(names, n)
	}
	slices.Sort(names)
	files := []string{file}
	for _, n := range names {
		files = append(files, chosen[n])
	}
	return files, nil
}

// findUnitFile finds the unit's file, or its template's for an instance.
func findUnitFile(s Scope, name string) (string, error) {
	candidates := []string{name}
	if prefix, _, ok := strings.Cut(strings.TrimSuffix(name, ".service"), "@"); ok {
		candidates = append(candidates, prefix+"@.service")
	}
	for _, c := range candidates {
		for _, dir := range s.searchPath() {
			p := filepath.Join(dir, c)
			_, err := readInRoot(s, p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return "", err
			}
			return p, nil
		}
	}
	return "", fmt.Errorf("unit %s not found (looked in %s)", name, strings.Join(s.searchPath(), ", "))
}

// readInRoot reads a file inside the root, following symbolic links inside
// it too; a unit linked to /dev/null is masked.
func readInRoot(s Scope, p string) (string, error) {
	for range 16 {
		fi, err := os.Lstat(s.path(p))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			b, err := os.ReadFile(s.path(p))
			return string(b), err
		}
		target, err := os.Readlink(s.path(p))
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		if target == os.DevNull {
			return "", fmt.Errorf("%s is masked (linked to /dev/null)", p)
		}
		p = target
	}
	return "", fmt.Errorf("%s: too many symbolic links", p)
}

// Result is what Enable or Disable did.
type Result struct {
	// Path is the drop-in, on this machine.
	Path string
	// Changed says a file was written or removed.
	Changed bool
	// Notes say what the drop-in changes and why, Warnings what needs the
	// user's attention.
	Notes, Warnings []string
	// Reloaded says systemd reloaded its units; ReloadErr why it did not
	// although it runs.
	Reloaded  bool
	ReloadErr error
	// Restart is the command that applies the change to the running unit.
	Restart string
}

// Enable writes the drop-in that runs the unit's program under wrapper
// (the mptcpgd binary's absolute path), and reloads systemd if the scope is
// the running system.
func Enable(s Scope, name, wrapper string) (Result, error) {
	name, err := unitName(name)
	if err != nil {
		return Result{}, err
	}
	svc, err := load(s, name)
	if err != nil {
		return Result{}, err
	}
	dir := filepath.Join(s.writeDir(), name+".d")
	file := filepath.Join(dir, FileName)
	res := Result{Path: s.path(file)}
	old, err := os.ReadFile(res.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}
	oldWraps, created := readRecord(string(old))
	if old != nil && !slices.Equal(oldWraps, svc.execStart) {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s's ExecStart changed since it was enabled: it was %s, it is %s; "+
			"the drop-in now wraps the new one", name, strings.Join(oldWraps, " ; "), strings.Join(svc.execStart, " ; ")))
	}
	if old == nil {
		created = missingDirs(s, dir)
	}
	d, err := render(name, svc, wrapper, created)
	if err != nil {
		return res, err
	}
	res.Notes = d.notes
	if string(old) == d.text {
		return res, nil
	}
	if err := os.MkdirAll(s.path(dir), 0o755); err != nil {
		return res, err
	}
	if err := writeAtomic(res.Path, d.text); err != nil {
		return res, err
	}
	res.Changed = true
	s.reload(name, &res)
	return res, nil
}

// Disable removes the drop-in and the directories enable created for it,
// when they are empty, and reloads systemd if the scope is the running
// system. A unit that is not enabled is left as it is.
func Disable(s Scope, name string) (Result, error) {
	name, err := unitName(name)
	if err != nil {
		return Result{}, err
	}
	file := filepath.Join(s.writeDir(), name+".d", FileName)
	res := Result{Path: s.path(file)}
	old, err := os.ReadFile(res.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, err
	}
	if err := os.Remove(res.Path); err != nil {
		return res, err
	}
	_, created := readRecord(string(old))
	for i := len(created) - 1; i >= 0; i-- {
		// Only while empty: someone else's drop-in may have moved in.
		if os.Remove(s.path(created[i])) != nil {
			break
		}
	}
	res.Changed = true
	s.reload(name, &res)
	return res, nil
}

// Wrapped is a unit with our drop-in.
type Wrapped struct {
	Unit string
	// Warning says why the drop-in may not do what it should: the unit's
	// ExecStart changed since enable, or the unit is gone.
	Warning string
}

// List returns the units with our drop-in in the scope's own directory.
func List(s Scope) ([]Wrapped, error) {
	entries, err := os.ReadDir(s.path(s.writeDir()))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Wrapped
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".d")
		if !ok {
			continue
		}
		text, err := os.ReadFile(s.path(filepath.Join(s.writeDir(), e.Name(), FileName)))
		if err != nil {
			continue
		}
		w := Wrapped{Unit: name}
		wraps, _ := readRecord(string(text))
		svc, err := load(s, name)
		switch {
		case err != nil:
			w.Warning = err.Error()
		case !slices.Equal(wraps, svc.execStart):
			w.Warning = fmt.Sprintf("ExecStart changed since `mptcpgd enable`: the drop-in runs %s, the unit now says %s; "+
				"run mptcpgd enable %s again", strings.Join(wraps, " ; "), strings.Join(svc.execStart, " ; "), name)
		}
		out = append(out, w)
	}
	return out, nil
}

// missingDirs lists dir and those of its parents that do not exist,
// outermost first, as paths inside the root.
func missingDirs(s Scope, dir string) []string {
	var missing []string
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if _, err := os.Stat(s.path(d)); err == nil {
			break
		}
		missing = append([]string{d}, missing...)
	}
	return missing
}

// writeAtomic writes a file by renaming a complete temporary one over it.
func writeAtomic(path, text string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mptcpgd-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(text)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// reload runs systemctl daemon-reload when the scope is the running
// system and systemd runs it, and says how to apply the change.
func (s Scope) reload(name string, res *Result) {
	res.Restart = s.systemctl() + " restart " + name
	if strings.HasSuffix(name, "@.service") {
		res.Restart = s.systemctl() + " restart '" + strings.TrimSuffix(name, ".service") + "*'"
	}
	if !s.live() {
		return
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return
	}
	args := []string{"daemon-reload"}
	if s.User {
		args = []string{"--user", "daemon-reload"}
	}
	if out, err := exec.Command("systemctl", args...).CombinedOutput(); err != nil {
		res.ReloadErr = fmt.Errorf("%s daemon-reload: %w: %s", s.systemctl(), err, cmp.Or(strings.TrimSpace(string(out)), "no output"))
		return
	}
	res.Reloaded = true
}
