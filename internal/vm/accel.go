// Package vm boots throwaway qemu guests for the test runs that need a
// kernel or an init system other than the host's: it chooses qemu's
// accelerator, starts a guest with its shares and its console in a file,
// and kills it on every way out (the guest powered off, the time ran out,
// the caller was interrupted or died). It also keeps what the guests are
// built from (kernels, initramfs, root filesystems) in a cache.
package vm

import (
	"os"
	"strings"
)

// Accel is how qemu runs the guest's code.
type Accel struct {
	// Name is "kvm" or "tcg", for messages.
	Name string
	// Args are qemu's arguments for it.
	Args []string
}

// HostAccel is KVM when /dev/kvm exists and the CPU announces hardware
// virtualisation, else software emulation.
func HostAccel() Accel {
	cpuinfo, _ := os.ReadFile("/proc/cpuinfo")
	_, err := os.Stat("/dev/kvm")
	return accelFor(string(cpuinfo), err == nil)
}

// accelFor decides from /proc/cpuinfo and the presence of /dev/kvm. A
// /dev/kvm without vmx or svm among the CPU flags is a paravirtual backend
// on which guests hang (Linux 6.1) or stop with an emulation error (6.12),
// so only the flag makes KVM usable.
func accelFor(cpuinfo string, kvmDevice bool) Accel {
	if kvmDevice && hasVirtFlag(cpuinfo) {
		return Accel{Name: "kvm", Args: []string{"-accel", "kvm", "-cpu", "host"}}
	}
	return Accel{Name: "tcg", Args: []string{"-accel", "tcg,thread=multi", "-cpu", "max"}}
}

// hasVirtFlag reports whether a "flags" line of cpuinfo has vmx or svm.
func hasVirtFlag(cpuinfo string) bool {
	for line := range strings.Lines(cpuinfo) {
		key, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		for _, f := range strings.Fields(value) {
			if f == "vmx" || f == "svm" {
				return true
			}
		}
	}
	return false
}
