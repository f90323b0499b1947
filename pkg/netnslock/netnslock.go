// Package netnslock keeps one mptcpgd per network namespace: two would undo
// each other's endpoints, rules and routes.
//
// The lock is an flock(2) on a file named after the namespace's inode, in
// a directory only root and the service may write (systemd's
// RuntimeDirectory=, /run/mptcpgd): a daemon started by hand as root and one
// run by systemd as a dynamic user meet there, while daemons in other
// namespaces on the same host, whatever their --socket, do not. The file is
// mode 0600, so a local user can neither create it nor open it to take the
// lock first (as anyone could bind an abstract Unix socket name). The kernel
// releases the lock when the holder exits, however it exits.
package netnslock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultDir is systemd's RuntimeDirectory=mptcpgd.
const DefaultDir = "/run/mptcpgd"

// Dir is where the lock lives: $RUNTIME_DIRECTORY, which systemd sets for
// RuntimeDirectory=, else DefaultDir.
func Dir() string {
	if d, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":"); d != "" {
		return d
	}
	return DefaultDir
}

// ErrHeld matches the error of Acquire when another process holds the
// lock.
var ErrHeld = errors.New("mptcpgd already runs in this network namespace")

// Lock is the held lock of one network namespace.
type Lock struct {
	f    *os.File
	path string
}

// Acquire takes the lock of the calling thread's network namespace in dir,
// without waiting. The error matches ErrHeld when another process has it.
func Acquire(dir string) (*Lock, error) {
	path, err := lockPath(dir)
	if err != nil {
		return nil, err
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return nil, fmt.Errorf("take the one-daemon-per-namespace lock: %w%s", err, permissionHint(err, dir))
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			holder := readHolder(f)
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("%w (%slock %s): stop it first (systemctl stop mptcpgd)", ErrHeld, holder, path)
			}
			return nil, fmt.Errorf("take the one-daemon-per-namespace lock %s: %w", path, err)
		}
		// A holder that released the lock removed the file: if that
		// happened after our open, we hold the lock of a file no one else
		// will find. Start again.
		var opened, named unix.Stat_t
		if unix.Fstat(int(f.Fd()), &opened) == nil && unix.Stat(path, &named) == nil && opened.Ino == named.Ino {
			// The pid is only for the next one's message.
			_ = f.Truncate(0)
			_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
			return &Lock{f: f, path: path}, nil
		}
		f.Close()
	}
}

// lockPath names the lock of the calling thread's network namespace.
func lockPath(dir string) (string, error) {
	var ns unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &ns); err != nil {
		return "", fmt.Errorf("identify the network namespace: %w", err)
	}
	return filepath.Join(dir, fmt.Sprintf("netns-%d.lock", ns.Ino)), nil
}

// checkDir creates dir if need be, and refuses one that others than its
// owner may write: there, anyone could plant the lock file and hold it.
func checkDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("take the one-daemon-per-namespace lock: %w%s", err, permissionHint(err, dir))
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("take the one-daemon-per-namespace lock: %w", err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("take the one-daemon-per-namespace lock: %s is writable by others (mode %04o), so anyone could hold the lock: use a directory only root or the service may write", dir, fi.Mode().Perm())
	}
	return nil
}

func permissionHint(err error, dir string) string {
	if !errors.Is(err, fs.ErrPermission) {
		return ""
	}
	return fmt.Sprintf(" (the lock lives in %s, which root and the service own: run as root, or under systemd, whose RuntimeDirectory= sets RUNTIME_DIRECTORY)", dir)
}

// readHolder returns "pid N, " for the lock's holder, or "" when unknown.
func readHolder(f *os.File) string {
	b := make([]byte, 16)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return ""
	}
	return fmt.Sprintf("pid %d, ", pid)
}

// Release gives the lock up and removes its file. Removing before
// unlocking is what makes Acquire's check of the file's identity enough.
func (l *Lock) Release() error {
	rmErr := os.Remove(l.path)
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("release lock %s: %w", l.path, err)
	}
	if rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
		return fmt.Errorf("release lock: %w", rmErr)
	}
	return nil
}
