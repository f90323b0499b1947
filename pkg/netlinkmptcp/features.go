package netlinkmptcp

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Features are the parts of the MPTCP API a kernel has. ProbeFeatures asks
// the kernel where that has no side effect; FeaturesFor knows them by
// version.
type Features struct {
	// Major and Minor are the kernel's version.
	Major, Minor int
	// Events: the mptcp_pm_events group and SET_FLAGS (5.12). Probed: the
	// family's multicast groups.
	Events bool
	// UserChosenIDs: ADD_ADDR honours the ID attribute (5.12).
	UserChosenIDs bool
	// Ports: endpoints with a PORT (5.12).
	Ports bool
	// Fullmesh: FlagFullmesh (5.15).
	Fullmesh bool
	// Implicit: the kernel makes FlagImplicit endpoints (5.18).
	Implicit bool
	// UserspacePM: the userspace path manager and its token commands
	// (5.19). Probed: the family's commands.
	UserspacePM bool
	// ListenerEvents: EventListenerCreated and EventListenerClosed (6.2).
	ListenerEvents bool
	// TokenInGetAddr: GET_ADDR takes a TOKEN (6.9). Probed: the command's
	// policy.
	TokenInGetAddr bool
	// UserspaceSubflowIfIndex: a subflow the userspace path manager creates
	// is bound to the local endpoint's IF_IDX, and its SUB_ESTABLISHED
	// event carries it (6.13; stable kernels such as Debian's 6.12 have it
	// too, 6.1 does not).
	UserspaceSubflowIfIndex bool
	// Laminar: FlagLaminar (6.18).
	Laminar bool
	// ByteCounters: struct mptcp_info counts the connection's bytes sent,
	// received, acknowledged and retransmitted (6.5). Probed: the length of
	// MPTCP_INFO.
	ByteCounters bool
	// SubflowsTotal: struct mptcp_info counts all subflows, the initial one
	// included (6.10). Probed as ByteCounters.
	SubflowsTotal bool
}

// version is a kernel version, comparable with atLeast.
type version struct{ major, minor int }

func (v version) atLeast(major, minor int) bool {
	return v.major > major || v.major == major && v.minor >= minor
}

// FeaturesFor returns the features of Linux major.minor.
func FeaturesFor(major, minor int) Features {
	v := version{major, minor}
	return Features{
		Major:                   major,
		Minor:                   minor,
		Events:                  v.atLeast(5, 12),
		UserChosenIDs:           v.atLeast(5, 12),
		Ports:                   v.atLeast(5, 12),
		Fullmesh:                v.atLeast(5, 15),
		Implicit:                v.atLeast(5, 18),
		UserspacePM:             v.atLeast(5, 19),
		ListenerEvents:          v.atLeast(6, 2),
		TokenInGetAddr:          v.atLeast(6, 9),
		UserspaceSubflowIfIndex: v.atLeast(6, 13),
		Laminar:                 v.atLeast(6, 18),
		ByteCounters:            v.atLeast(6, 5),
		SubflowsTotal:           v.atLeast(6, 10),
	}
}

// KernelFeatures returns the features of the running kernel, from the
// release uname(2) reports. Distribution kernels that backport MPTCP work
// have more than their version says; this reports what the version promises
// (ProbeFeatures asks the kernel).
func KernelFeatures() (Features, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return Features{}, fmt.Errorf("read kernel release: %w", os.NewSyscallError("uname", err))
	}
	release := unix.ByteSliceToString(u.Release[:])
	major, minor, err := ParseRelease(release)
	if err != nil {
		return Features{}, err
	}
	return FeaturesFor(major, minor), nil
}

// ParseRelease reads the major and minor version from a kernel release such
// as "6.18.44-fc-v669" or "5.15.0-91-generic".
func ParseRelease(release string) (major, minor int, err error) {
	fields := strings.SplitN(release, ".", 3)
	if len(fields) < 2 {
		return 0, 0, fmt.Errorf("kernel release %q: want MAJOR.MINOR", release)
	}
	major, err = strconv.Atoi(fields[0])
	if err != nil || major < 0 {
		return 0, 0, fmt.Errorf("kernel release %q: major version %q is not a number", release, fields[0])
	}
	// The minor version may run straight into a suffix: "6.1-rc1".
	digits := strings.IndexFunc(fields[1], func(r rune) bool { return r < '0' || r > '9' })
	if digits < 0 {
		digits = len(fields[1])
	}
	if digits == 0 {
		return 0, 0, fmt.Errorf("kernel release %q: minor version %q is not a number", release, fields[1])
	}
	minor, err = strconv.Atoi(fields[1][:digits])
	if err != nil {
		return 0, 0, fmt.Errorf("kernel release %q: minor version: %w", release, err)
	}
	return major, minor, nil
}

// flagVersions says which kernel brought each endpoint flag.
var flagVersions = []struct {
	flag         Flags
	major, minor int
}{
	{FlagSignal, 5, 7},
	{FlagSubflow, 5, 7},
	{FlagBackup, 5, 7},
	{FlagFullmesh, 5, 15},
	{FlagImplicit, 5, 18},
	{FlagLaminar, 6, 18},
}

// CheckFlags returns nil when the kernel knows every flag of flags, else an
// error naming the first flag it lacks and the version that brought it.
// Newer kernels drop flags they do not know without a word, so ask first.
func (f Features) CheckFlags(flags Flags) error {
	v := version{f.Major, f.Minor}
	known := Flags(0)
	for _, fv := range flagVersions {
		known |= fv.flag
		if flags&fv.flag != 0 && !v.atLeast(fv.major, fv.minor) {
			return fmt.Errorf("endpoint flag %s needs Linux %d.%d or later; this kernel is %d.%d",
				fv.flag, fv.major, fv.minor, f.Major, f.Minor)
		}
	}
	if unknown := flags &^ known; unknown != 0 {
		return errors.New("endpoint flags " + unknown.String() + " are unknown to this package")
	}
	return nil
}
