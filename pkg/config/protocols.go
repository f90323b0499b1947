package config

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// RoutingDaemons are the route protocol numbers the kernel's uapi
// (rtnetlink.h) gives to routing programs: routes and rules carrying one of
// them belong to that program, so none can be our tag.
var RoutingDaemons = map[uint8]string{
	8: "gated", 9: "ra", 10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp",
	15: "ntk", 16: "dhcp", 17: "mrouted", 18: "keepalived", 42: "babel", 99: "openr",
	186: "bgp", 187: "isis", 188: "ospf", 189: "rip", 192: "eigrp",
}

// OurProtocolName is the name `make install` gives our protocol number in
// rt_protos.d, so that `ip route` says proto mptcpgd.
const OurProtocolName = "mptcpgd"

// ProtocolFiles are where iproute2 names route protocols: the files of
// Debian's iproute2 in /etc, and of newer ones in /usr/lib, each with its
// .d directory.
var ProtocolFiles = []string{"/etc/iproute2/rt_protos", "/usr/lib/iproute2/rt_protos", "/usr/share/iproute2/rt_protos"}

// RouteProtocols reads the protocol names iproute2 knows on this host from
// files (each "NUMBER NAME" per line, # comments) and their .d directories'
// *.conf files, in ProtocolFiles' form. Missing files are fine.
func RouteProtocols(files []string) (map[uint8]string, error) {
	names := map[uint8]string{}
	for _, f := range files {
		paths := []string{f}
		more, _ := filepath.Glob(filepath.Join(f+".d", "*.conf"))
		paths = append(paths, more...)
		for _, p := range paths {
			if err := readProtocols(p, names); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return names, err
			}
		}
	}
	return names, nil
}

func readProtocols(path string, into map[uint8]string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		n, err := strconv.ParseUint(fields[0], 0, 8)
		if err != nil {
			continue
		}
		into[uint8(n)] = fields[1]
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}
