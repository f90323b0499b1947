// Package capability tells which Linux capabilities the process has, so
// that a command can say what it needs before failing at every step.
package capability

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// NetAdmin reports whether the process has CAP_NET_ADMIN in its effective
// set: what writing endpoints, limits, rules and routes needs.
func NetAdmin() (bool, error) {
	return effective(unix.CAP_NET_ADMIN)
}

func effective(capability int) (bool, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false, fmt.Errorf("read the process's capabilities: %w", err)
	}
	return data[capability/32].Effective&(1<<(capability%32)) != 0, nil
}
