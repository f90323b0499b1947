package netnslock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

func TestSecondHolderRefused(t *testing.T) {
	dir := t.TempDir()
	first, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir)
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("second Acquire = %v, want ErrHeld naming the holder's pid and the fix", err)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("lock file left after Release: %v", entries)
	}
	again, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	again.Release()
}

func TestNamespacesHaveTheirOwnLock(t *testing.T) {
	a, b := lab.New(t, "lock-a"), lab.New(t, "lock-b")
	dir := t.TempDir()
	acquireIn := func(ns *lab.NS) (l *Lock, err error) {
		if derr := ns.Do(func() error { l, err = Acquire(dir); return nil }); derr != nil {
			t.Fatal(derr)
		}
		return l, err
	}
	la, err := acquireIn(a)
	if err != nil {
		t.Fatalf("Acquire in %s: %v", a.Name, err)
	}
	defer la.Release()
	lb, err := acquireIn(b)
	if err != nil {
		t.Fatalf("Acquire in %s while %s holds its own: %v", b.Name, a.Name, err)
	}
	defer lb.Release()
	if _, err := acquireIn(a); !errors.Is(err, ErrHeld) {
		t.Errorf("second Acquire in %s = %v, want ErrHeld", a.Name, err)
	}
}

// TestUnprivilegedUserCannotTakeTheLock: a local user who gets there first
// cannot keep the daemon from starting.
func TestUnprivilegedUserCannotTakeTheLock(t *testing.T) {
	lab.Require(t) // root, to act as another user
	tmp := t.TempDir()
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// As /run/mptcpgd: root's, others may enter.
	dir := filepath.Join(tmp, "run")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path, err := lockPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	// What a squatter would do: open (or create) the lock file in any
	// mode it can, and lock it.
	squat := func(what string) {
		t.Helper()
		var err error
		lab.AsUser(t, 65534, func() {
			var f *os.File
			f, err = os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
			if err == nil {
				t.Cleanup(func() { f.Close() })
				err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			}
		})
		if err == nil {
			t.Errorf("%s: an unprivileged user holds the lock", what)
		} else if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("%s: unprivileged open = %v, want permission denied", what, err)
		}
	}
	squat("no lock file yet")

	// A lock file left by a daemon that was killed.
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.f.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	squat("a stale lock file")

	l, err = Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after the squatters: %v", err)
	}
	l.Release()
}

func TestDirectoryWritableByOthersRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(dir); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("Acquire in a world-writable directory = %v, want a refusal", err)
	}
}

func TestDir(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", "")
	if Dir() != DefaultDir {
		t.Errorf("Dir() = %q without RUNTIME_DIRECTORY, want %q", Dir(), DefaultDir)
	}
	t.Setenv("RUNTIME_DIRECTORY", "/run/a:/run/b")
	if Dir() != "/run/a" {
		t.Errorf("Dir() = %q, want the first runtime directory", Dir())
	}
}
