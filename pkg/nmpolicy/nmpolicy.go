// Package nmpolicy decides, as NetworkManager (1.40+) does, whether it
// manages MPTCP endpoints on a device, and says why: from the device's
// applied profile, NetworkManager.conf's default and the kernel's sysctl.
// It reads nothing itself; pkg/nmdbus gathers what it decides on.
//
// The rules are NetworkManager's (nm-device.c, connection.mptcp-flags in
// nm-settings-nmcli(5)): the profile's flags, else the [connection] default
// connection.mptcp-flags of NetworkManager.conf, else "enabled,subflow".
// "disabled" wins over every other flag; any other flag implies "enabled".
// Enabled handling stays off while net.mptcp.enabled is 0 unless
// "also-without-sysctl" is set, and applies only to the address families for
// which NetworkManager configured a default route on the device unless
// "also-without-default-route" is set.
package nmpolicy

import (
	"fmt"
	"strings"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/bitnames"
)

// Flags are connection.mptcp-flags (NMMptcpFlags).
type Flags uint32

// NetworkManager's flag bits.
const (
	Disabled                Flags = 0x1
	Enabled                 Flags = 0x2
	AlsoWithoutSysctl       Flags = 0x4
	AlsoWithoutDefaultRoute Flags = 0x8
	Signal                  Flags = 0x10
	Subflow                 Flags = 0x20
	Backup                  Flags = 0x40
	Fullmesh                Flags = 0x80
	Laminar                 Flags = 0x100
)

// BuiltinDefault is what NetworkManager uses when neither the profile nor
// NetworkManager.conf sets the flags.
const BuiltinDefault = Enabled | Subflow

var flagNames = []bitnames.Name{
	{Bit: uint32(Disabled), Word: "disabled"}, {Bit: uint32(Enabled), Word: "enabled"},
	{Bit: uint32(AlsoWithoutSysctl), Word: "also-without-sysctl"},
	{Bit: uint32(AlsoWithoutDefaultRoute), Word: "also-without-default-route"},
	{Bit: uint32(Signal), Word: "signal"}, {Bit: uint32(Subflow), Word: "subflow"},
	{Bit: uint32(Backup), Word: "backup"}, {Bit: uint32(Fullmesh), Word: "fullmesh"},
	{Bit: uint32(Laminar), Word: "laminar"},
}

// String writes the flags as nmcli does: "enabled,subflow"; unknown bits in
// hexadecimal.
func (f Flags) String() string { return bitnames.Format(uint32(f), flagNames) }

// normalize is what NetworkManager does to flags before it uses them:
// "disabled" alone when set, else unknown bits dropped and "enabled" added;
// "signal" with "fullmesh" loses "fullmesh", which the kernel refuses.
func normalize(f Flags) Flags {
	if f&Disabled != 0 {
		return Disabled
	}
	known := Flags(0)
	for _, n := range flagNames {
		known |= Flags(n.Bit)
	}
	f = f&known | Enabled
	if f&(Signal|Fullmesh) == Signal|Fullmesh {
		f &^= Fullmesh
	}
	return f
}

// Device is what NetworkManager has applied to one device.
type Device struct {
	// Interface is the device's (IP) interface name.
	Interface string
	// Profile is the applied connection's name (connection.id); empty when
	// no connection is applied, and then NetworkManager configures nothing.
	Profile string
	// ProfileFlags is the profile's connection.mptcp-flags; 0 means unset.
	ProfileFlags Flags
	// DefaultRoute4 and DefaultRoute6: NetworkManager configured a default
	// route on the device for the family.
	DefaultRoute4, DefaultRoute6 bool
	// Activating: the connection is being activated; its addresses and
	// routes are on their way.
	Activating bool
}

// Host is what applies to every device.
type Host struct {
	// ConfFlags is NetworkManager.conf's connection.mptcp-flags default; 0
	// when unset. ConfSource names the file that set it.
	ConfFlags  Flags
	ConfSource string
	// SysctlEnabled: net.mptcp.enabled is 1.
	SysctlEnabled bool
}

// Verdict is whether NetworkManager manages MPTCP endpoints on a device.
type Verdict struct {
	// On: NetworkManager adds and removes MPTCP endpoints on the device,
	// for IPv4 and IPv6 as said.
	On         bool
	IPv4, IPv6 bool
	// Flags are the effective flags, normalized.
	Flags Flags
	// Reason says where the flags come from and what they mean here,
	// e.g. "profile 'wired1' has mptcp-flags enabled,subflow".
	Reason string
}

// Decide says whether NetworkManager manages MPTCP endpoints on d.
func Decide(d Device, h Host) Verdict {
	if d.Profile == "" {
		return Verdict{Reason: "no connection applied"}
	}
	var origin string
	flags := d.ProfileFlags
	switch {
	case flags != 0:
		origin = fmt.Sprintf("profile %s has mptcp-flags %s", Quote(d.Profile), flags)
	case h.ConfFlags != 0:
		flags = h.ConfFlags
		origin = fmt.Sprintf("profile %s takes mptcp-flags %s from %s", Quote(d.Profile), flags, h.ConfSource)
	default:
		flags = BuiltinDefault
		origin = fmt.Sprintf("profile %s takes NetworkManager's default mptcp-flags %s", Quote(d.Profile), flags)
	}
	v := Verdict{Flags: normalize(flags)}
	switch {
	case v.Flags&Disabled != 0:
		v.Reason = origin
	case v.Flags&AlsoWithoutSysctl == 0 && !h.SysctlEnabled:
		v.Reason = origin + ", off while net.mptcp.enabled is 0"
	case v.Flags&AlsoWithoutDefaultRoute != 0:
		v.On, v.IPv4, v.IPv6 = true, true, true
		v.Reason = origin
	case d.Activating && !d.DefaultRoute4 && !d.DefaultRoute6:
		// Its address comes a moment before its default route: taken as
		// NetworkManager's until the activation says otherwise, so that
		// nobody writes an endpoint NetworkManager removes a moment later.
		v.On, v.IPv4, v.IPv6 = true, true, true
		v.Reason = origin + " (activating)"
	default:
		v.IPv4, v.IPv6 = d.DefaultRoute4, d.DefaultRoute6
		v.On = v.IPv4 || v.IPv6
		switch {
		case !v.On:
			v.Reason = origin + ", off without a default route from NetworkManager"
		case !v.IPv6:
			v.Reason = origin + " (IPv4 only: NetworkManager gave it no IPv6 default route)"
		case !v.IPv4:
			v.Reason = origin + " (IPv6 only: NetworkManager gave it no IPv4 default route)"
		default:
			v.Reason = origin
		}
	}
	return v
}

// DisableCommand is the command that turns NetworkManager's MPTCP handling
// off for a profile; it takes effect at the profile's next activation
// (`nmcli device reapply IFACE` applies it now).
func DisableCommand(profile string) string {
	return "nmcli connection modify " + Quote(profile) + " connection.mptcp-flags disabled"
}

// Quote quotes a profile name for a POSIX shell: single quotes, with each
// single quote written '\”.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Report is what NetworkManager does with MPTCP on this host.
type Report struct {
	// Running: NetworkManager answers on the system bus.
	Running bool   `json:"running"`
	Version string `json:"version,omitempty"`
	// Devices are its devices with a connection applied, by interface.
	Devices []DeviceVerdict `json:"devices,omitempty"`
	// ReadAt is when the read that made the report began: what
	// NetworkManager did before that, it shows.
	ReadAt time.Time `json:"-"`
}

// DeviceVerdict is the verdict on one device.
type DeviceVerdict struct {
	Interface string `json:"interface"`
	Profile   string `json:"profile"`
	On        bool   `json:"on"`
	Flags     string `json:"flags"`
	Reason    string `json:"reason"`
}

// MPTCPOn returns the devices on which NetworkManager manages MPTCP.
func (r Report) MPTCPOn() []DeviceVerdict {
	var out []DeviceVerdict
	for _, d := range r.Devices {
		if d.On {
			out = append(out, d)
		}
	}
	return out
}

// Left says, per interface, why it is left to NetworkManager: those on
// which NetworkManager manages MPTCP.
func (r Report) Left() map[string]string {
	left := map[string]string{}
	for _, d := range r.MPTCPOn() {
		left[d.Interface] = "left to NetworkManager: " + d.Reason
	}
	return left
}
