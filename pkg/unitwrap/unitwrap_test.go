package unitwrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree writes files (path inside root: content; "->target" makes a
// symbolic link) into a new root.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(c, "->"); ok {
			err = os.Symlink(target, full)
		} else {
			err = os.WriteFile(full, []byte(c), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEnableFollowsDropInsAndLinks(t *testing.T) {
	root := tree(t, map[string]string{
		"/usr/lib/systemd/system/web.service": "[Service]\nExecStart=/usr/bin/vendor\n",
		// An administrator's override and a lower-priority copy of the
		// same file name, which the /etc one masks.
		"/etc/systemd/system/web.service.d/override.conf":       "[Service]\nExecStart=\nExecStart=/usr/bin/admin --x\n",
		"/usr/lib/systemd/system/web.service.d/override.conf":   "[Service]\nExecStart=\nExecStart=/usr/bin/masked\n",
		"/usr/lib/systemd/system/web.service.d/10-sandbox.conf": "[Service]\nSystemCallFilter=@system-service\n",
		// An alias linked with an absolute path, which lies inside the root.
		"/etc/systemd/system/alias.service": "->/usr/lib/systemd/system/web.service",
		"/etc/systemd/system/off.service":   "->/dev/null",
	})
	s := Scope{Root: root}
	res, err := Enable(s, "web", "/usr/sbin/mptcpgd")
	if err != nil {
		t.Fatal(err)
	}
	text := read(t, res.Path)
	for _, want := range []string{"ExecStart=/usr/sbin/mptcpgd run --no-forward=SIGTERM -- /usr/bin/admin --x\n", "\nSystemCallFilter=seccomp\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("the drop-in lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "created-directory") {
		t.Errorf("web.service.d existed, yet the drop-in records creating it:\n%s", text)
	}
	if res.Path != filepath.Join(root, "/etc/systemd/system/web.service.d", FileName) || !res.Changed || res.Restart != "systemctl restart web.service" {
		t.Errorf("result %+v", res)
	}
	if _, err := Enable(s, "alias.service", "/usr/sbin/mptcpgd"); err != nil {
		t.Errorf("enable through an absolute link inside the root: %v", err)
	}
	if _, err := Enable(s, "off", "/w"); err == nil || !strings.Contains(err.Error(), "masked") {
		t.Errorf("enable of a masked unit: %v, want an error saying it is masked", err)
	}
	for _, bad := range []string{"missing", "web.socket", "a/b"} {
		if _, err := Enable(s, bad, "/w"); err == nil {
			t.Errorf("enable %q succeeded", bad)
		}
	}
	res, err = Disable(s, "web")
	if err != nil || !res.Changed {
		t.Fatalf("disable: %+v, %v", res, err)
	}
	if read(t, filepath.Join(root, "/etc/systemd/system/web.service.d/override.conf")) == "" {
		t.Error("disable touched the administrator's drop-in")
	}
	if res, err := Disable(s, "web"); err != nil || res.Changed {
		t.Errorf("disable of a unit that is not enabled: %+v, %v", res, err)
	}
}

func TestTemplatesAndInstances(t *testing.T) {
	root := tree(t, map[string]string{
		"/usr/lib/systemd/system/getty@.service": "[Service]\nExecStart=-/sbin/agetty -o '-p -- \\\\u' %I $TERM\n",
	})
	s := Scope{Root: root}
	res, err := Enable(s, "getty@.service", "/w")
	if err != nil {
		t.Fatal(err)
	}
	if want := "ExecStart=-/w run --no-forward=SIGTERM -- /sbin/agetty -o '-p -- \\\\u' %I $TERM\n"; !strings.Contains(read(t, res.Path), want) {
		t.Errorf("template drop-in lacks %q:\n%s", want, read(t, res.Path))
	}
	if res.Restart != "systemctl restart 'getty@*'" {
		t.Errorf("restart hint for a template: %q", res.Restart)
	}
	inst, err := Enable(s, "getty@tty1.service", "/w")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(inst.Path, "/etc/systemd/system/getty@tty1.service.d/"+FileName) {
		t.Errorf("instance drop-in at %s", inst.Path)
	}
	for _, n := range []string{"getty@tty1.service", "getty@.service"} {
		if _, err := Disable(s, n); err != nil {
			t.Fatal(err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "etc/systemd/system")); len(entries) != 0 {
		t.Errorf("disable left %v in /etc/systemd/system", entries)
	}
}

func TestUserUnitsAndCreatedDirectories(t *testing.T) {
	root := tree(t, map[string]string{
		"/usr/lib/systemd/user/sync.service": "[Service]\nExecStart=/usr/bin/sync-daemon\n",
		"/home/u/.profile":                   "",
	})
	// A user whose configuration directory does not exist yet.
	s := Scope{Root: root, User: true, ConfigHome: "/home/u/.config"}
	res, err := Enable(s, "sync", "/w")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Restart, "systemctl --user restart") {
		t.Errorf("restart hint %q", res.Restart)
	}
	_, created := readRecord(read(t, res.Path))
	want := []string{"/home/u/.config", "/home/u/.config/systemd", "/home/u/.config/systemd/user", "/home/u/.config/systemd/user/sync.service.d"}
	if strings.Join(created, " ") != strings.Join(want, " ") {
		t.Errorf("recorded created directories %q, want %q", created, want)
	}
	if _, err := Disable(s, "sync"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "home/u")); err != nil {
		t.Errorf("disable removed /home/u, which enable did not create: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "home/u/.config")); !os.IsNotExist(err) {
		t.Errorf("disable left /home/u/.config, which enable created: %v", err)
	}
}

func TestVendorChangeIsReported(t *testing.T) {
	root := tree(t, map[string]string{
		"/usr/lib/systemd/system/db.service": "[Service]\nExecStart=/usr/bin/db --v1\n",
	})
	s := Scope{Root: root}
	if _, err := Enable(s, "db", "/w"); err != nil {
		t.Fatal(err)
	}
	if list, err := List(s); err != nil || len(list) != 1 || list[0].Unit != "db.service" || list[0].Warning != "" {
		t.Fatalf("List after enable: %+v, %v", list, err)
	}
	// A package upgrade changes the vendor unit.
	if err := os.WriteFile(filepath.Join(root, "/usr/lib/systemd/system/db.service"), []byte("[Service]\nExecStart=/usr/bin/db --v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := List(s)
	if err != nil || len(list) != 1 || !strings.Contains(list[0].Warning, "--v2") || !strings.Contains(list[0].Warning, "mptcpgd enable db.service") {
		t.Fatalf("List after the vendor change: %+v, %v; want a warning naming the new ExecStart and the fix", list, err)
	}
	res, err := Enable(s, "db", "/w")
	if err != nil || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "/usr/bin/db --v1") || !res.Changed {
		t.Fatalf("a second enable: %+v, %v; want the change reported and the drop-in rewritten", res, err)
	}
	if !strings.Contains(read(t, res.Path), "-- /usr/bin/db --v2\n") {
		t.Errorf("the drop-in does not wrap the new ExecStart:\n%s", read(t, res.Path))
	}
	if res, err := Enable(s, "db", "/w"); err != nil || res.Changed || len(res.Warnings) != 0 {
		t.Errorf("enable of an enabled, unchanged unit: %+v, %v; want nothing done", res, err)
	}
}
