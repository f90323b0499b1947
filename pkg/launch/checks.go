package launch

import (
	"errors"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mptcpgd/mptcpgd/pkg/mptcpize"
)

// privileges is what installing the filter costs the program.
type privileges struct {
	// setNoNewPrivs: without CAP_SYS_ADMIN, the filter needs
	// no_new_privs, which the program and everything it executes keep.
	setNoNewPrivs bool
	// losesPrivileges: no_new_privs is new to the program, so a setuid,
	// setgid or file-capability executable would no longer get its
	// privileges (systemd's NoNewPrivileges=yes would have taken them
	// anyway).
	losesPrivileges bool
}

func checkPrivileges() privileges {
	nnp, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	set := !hasCapSysAdmin()
	return privileges{setNoNewPrivs: set, losesPrivileges: set && nnp == 0}
}

// hasCapSysAdmin says whether the process may install a filter without
// no_new_privs.
func hasCapSysAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[unix.CAP_SYS_ADMIN/32].Effective&(1<<(unix.CAP_SYS_ADMIN%32)) != 0
}

// preflight warns, before the program runs, about what mptcpgd run will
// not do for it.
func preflight(path string, p privileges, warn *mptcpize.Warnings) {
	if p.losesPrivileges {
		if fi, err := os.Stat(path); err == nil {
			switch {
			case fi.Mode()&os.ModeSetuid != 0:
				warn.Warn("setuid", "%s is setuid: under no_new_privs, which mptcpgd run needs without CAP_SYS_ADMIN, "+
					"it runs without its privileges (run mptcpgd run as root to keep them)", path)
			case fi.Mode()&os.ModeSetgid != 0:
				warn.Warn("setuid", "%s is setgid: under no_new_privs, which mptcpgd run needs without CAP_SYS_ADMIN, "+
					"it runs without its privileges (run mptcpgd run as root to keep them)", path)
			}
		}
		if n, err := unix.Getxattr(path, "security.capability", nil); err == nil && n > 0 {
			warn.Warn("filecaps", "%s has file capabilities: under no_new_privs, which mptcpgd run needs without "+
				"CAP_SYS_ADMIN, it runs without them (run mptcpgd run as root to keep them)", path)
		}
	}
	enabled, err := os.ReadFile("/proc/sys/net/mptcp/enabled")
	_, netErr := os.Stat("/proc/sys/net")
	switch {
	case errors.Is(err, os.ErrNotExist) && netErr == nil:
		// Only where /proc/sys is visible: systemd's ProcSubset=pid hides it.
		warn.Warn("nokernel", "this kernel has no MPTCP (no /proc/sys/net/mptcp): the program runs on plain TCP")
	case err == nil && strings.TrimSpace(string(enabled)) == "0":
		warn.Warn(mptcpize.KeyMPTCPDisabled, "%s", mptcpize.DisabledText)
	}
}
