package daemon

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/mptcpgd/mptcpgd/pkg/srcroute"
)

// readARP reads an interface's effective ARP settings: the kernel uses the
// larger of conf/all and conf/IFACE for arp_ignore and arp_announce, and
// either for arp_filter. An unreadable value counts as 0.
func readARP(ifname string) srcroute.ARP {
	v := func(dev, key string) int {
		b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + dev + "/" + key)
		if err != nil {
			return 0
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	return srcroute.ARP{
		Ignore:   max(v("all", "arp_ignore"), v(ifname, "arp_ignore")),
		Announce: max(v("all", "arp_announce"), v(ifname, "arp_announce")),
		Filter:   v("all", "arp_filter") == 1 || v(ifname, "arp_filter") == 1,
	}
}

// processAlive tells whether a process exists; EPERM means it does, but
// belongs to someone else.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
