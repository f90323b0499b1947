package netlinkmptcp

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
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
	b, err := os.ReadFile(path)
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
