// Package debian builds mptcpgd's Debian package (make deb): the maintainer
// scripts, control template and build script beside this file. Its tests
// inspect the built package; the guest test installs it under systemd.
package debian

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// require fails under CI and skips elsewhere when a program is missing.
func require(t *testing.T, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed (scripts/deps.sh installs it)", p)
			}
			t.Skipf("%s is not installed (scripts/deps.sh installs it)", p)
		}
	}
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

// TestMakeDeb builds the package as make deb does, lintian included, and
// checks what dpkg would install.
func TestMakeDeb(t *testing.T) {
	require(t, "make", "dpkg-deb", "git", "strip", "lintian")
	out := t.TempDir()
	const version = "1.2.3~test"
	run(t, "../..", "make", "-s", "deb", "DEB_VERSION="+version, "DEB_OUT="+out)
	deb := filepath.Join(out, "mptcpgd_"+version+"_"+strings.TrimSpace(run(t, ".", "dpkg", "--print-architecture"))+".deb")

	if got := strings.TrimSpace(run(t, ".", "dpkg-deb", "-f", deb, "Version")); got != version {
		t.Errorf("Version: %q, want %q", got, version)
	}
	contents := run(t, ".", "dpkg-deb", "-c", deb)
	for path, mode := range map[string]string{
		"./usr/sbin/mptcpgd":                              "-rwxr-xr-x root/root",
		"./lib/systemd/system/mptcpgd.service":            "-rw-r--r-- root/root",
		"./etc/mptcpgd.toml":                              "-rw-r--r-- root/root",
		"./etc/iproute2/rt_protos.d/mptcpgd.conf":         "-rw-r--r-- root/root",
		"./usr/lib/sysusers.d/mptcpgd.conf":               "-rw-r--r-- root/root",
		"./usr/share/man/man8/mptcpgd.8.gz":               "-rw-r--r-- root/root",
		"./usr/share/man/man5/mptcpgd.toml.5.gz":          "-rw-r--r-- root/root",
		"./usr/share/bash-completion/completions/mptcpgd": "-rw-r--r-- root/root",
		"./usr/share/doc/mptcpgd/copyright":               "-rw-r--r-- root/root",
	} {
		found := false
		for line := range strings.Lines(contents) {
			f := strings.Fields(line)
			if len(f) == 6 && f[5] == path {
				found = true
				if got := f[0] + " " + f[1]; got != mode {
					t.Errorf("%s: %s, want %s", path, got, mode)
				}
			}
		}
		if !found {
			t.Errorf("the package lacks %s:\n%s", path, contents)
		}
	}
	if strings.Contains(contents, "./etc/systemd/") {
		t.Errorf("the package puts a unit in /etc/systemd, where it would be the administrator's:\n%s", contents)
	}

	control := t.TempDir()
	run(t, ".", "dpkg-deb", "-e", deb, control)
	conffiles, _ := os.ReadFile(filepath.Join(control, "conffiles"))
	if got, want := string(conffiles), "/etc/iproute2/rt_protos.d/mptcpgd.conf\n/etc/mptcpgd.toml\n"; got != want {
		t.Errorf("conffiles:\n%s\nwant:\n%s", got, want)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		fi, err := os.Stat(filepath.Join(control, script))
		if err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("maintainer script %s missing or not executable: %v", script, err)
		}
	}

	root := t.TempDir()
	run(t, ".", "dpkg-deb", "-x", deb, root)
	unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/mptcpgd.service"))
	source, _ := os.ReadFile("../systemd/mptcpgd.service")
	if want := strings.ReplaceAll(string(source), "/usr/local/sbin/mptcpgd", "/usr/sbin/mptcpgd"); string(unit) != want {
		t.Errorf("the packaged unit is not deploy/systemd's with the binary in /usr/sbin:\n%s", unit)
	}
	if !strings.Contains(string(unit), "\nExecStart=/usr/sbin/mptcpgd --config /etc/mptcpgd.toml\n") {
		t.Errorf("the packaged unit's ExecStart= does not run /usr/sbin/mptcpgd:\n%s", unit)
	}
	cfg, _ := os.ReadFile(filepath.Join(root, "etc/mptcpgd.toml"))
	ref, _ := os.ReadFile("../../configs/mptcpgd.toml")
	if string(cfg) != string(ref) {
		t.Error("the packaged /etc/mptcpgd.toml is not configs/mptcpgd.toml")
	}
	if out := run(t, ".", filepath.Join(root, "usr/sbin/mptcpgd"), "version"); !strings.HasPrefix(out, "mptcpgd ") {
		t.Errorf("the packaged binary's version: %q", out)
	}
}

// TestDebVersion: git describe becomes a Debian version that sorts after
// the one of every earlier commit.
func TestDebVersion(t *testing.T) {
	require(t, "git", "dpkg")
	script, err := filepath.Abs("deb-version.sh")
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	git := func(args ...string) {
		run(t, repo, "git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.org"}, args...)...)
	}
	commit := func() {
		git("commit", "-q", "--allow-empty", "-m", "c")
	}
	version := func() string { return strings.TrimSpace(run(t, repo, script)) }
	git("init", "-q")
	commit()
	commit()
	var seen []string
	check := func(pattern string) {
		t.Helper()
		v := version()
		if ok, _ := filepath.Match(pattern, v); !ok {
			t.Errorf("version %q, want %s", v, pattern)
		}
		if len(seen) > 0 {
			if err := exec.Command("dpkg", "--compare-versions", v, "gt", seen[len(seen)-1]).Run(); err != nil {
				t.Errorf("%s does not sort after %s", v, seen[len(seen)-1])
			}
		}
		seen = append(seen, v)
	}
	check("0~git2.g*")
	commit()
	check("0~git3.g*")
	git("tag", "v0.1-rc1")
	check("0.1~rc1")
	commit()
	check("0.1~rc1+git1.g*")
	git("tag", "v0.1")
	check("0.1")
	if err := os.WriteFile(filepath.Join(repo, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "f")
	check("0.1+dirty")
	commit()
	check("0.1+git1.g*")
}
