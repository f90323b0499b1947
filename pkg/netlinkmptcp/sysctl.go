package netlinkmptcp

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// enabledSysctl is net.mptcp.enabled. Paths under /proc/sys/net resolve in
// the network namespace of the thread that opens them (there is no
// /proc/thread-self/ copy of the sysctls).
const enabledSysctl = "/proc/sys/net/mptcp/enabled"

// CheckEnabled tells whether MPTCP is enabled in the calling thread's
// network namespace: nil when it is, an error matching ErrDisabled when
// net.mptcp.enabled is 0, ErrNotSupported when the kernel has no MPTCP. The
// netlink family answers even when MPTCP is disabled, so only this tells.
// To check another namespace, call it from a thread locked into it.
func CheckEnabled() error {
	return checkEnabled(enabledSysctl)
}

func checkEnabled(path string) error {
	b, err := readQuietly(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &sentenceError{
			text: "the kernel has no MPTCP (" + path + " does not exist): " +
				"build it with CONFIG_MPTCP=y or upgrade to Linux 5.12 or later",
			kind:  ErrNotSupported,
			cause: err,
		}
	}
	if err != nil {
		return fmt.Errorf("read net.mptcp.enabled: %w", err)
	}
	switch v := strings.TrimSpace(string(b)); v {
	case "0":
		return &sentenceError{
			text: "MPTCP is disabled in this network namespace (net.mptcp.enabled=0): " +
				"enable it with `sysctl -w net.mptcp.enabled=1`",
			kind: ErrDisabled,
		}
	case "1":
		return nil
	default:
		return fmt.Errorf("read net.mptcp.enabled from %s: unexpected value %q", path, v)
	}
}

// readQuietly reads a small file with raw system calls, which do not wake
// the runtime's monitor thread (see quietSocket): the safety net reads
// net.mptcp.enabled every 30 s.
func readQuietly(path string) ([]byte, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return nil, err
	}
	cwd := unix.AT_FDCWD
	fd, _, errno := unix.RawSyscall6(unix.SYS_OPENAT, uintptr(cwd), uintptr(unsafe.Pointer(p)),
		uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		return nil, &fs.PathError{Op: "open", Path: path, Err: errno}
	}
	defer unix.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
	var buf [64]byte
	n, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	if errno != 0 {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errno}
	}
	return buf[:n], nil
}
