package seccomp

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctlSize is the argument size an ioctl number encodes (_IOC_SIZE).
func ioctlSize(req uint) uintptr { return uintptr(req>>16) & 0x3fff }

// The structures must have the sizes the kernel's ioctl numbers encode,
// and the argument offsets those of struct seccomp_data.
func TestLayoutMatchesTheKernel(t *testing.T) {
	cases := []struct {
		name string
		size uintptr
		req  uint
	}{
		{"seccomp_notif", unsafe.Sizeof(Notif{}), unix.SECCOMP_IOCTL_NOTIF_RECV},
		{"seccomp_notif_resp", unsafe.Sizeof(notifResp{}), unix.SECCOMP_IOCTL_NOTIF_SEND},
		{"seccomp_notif_addfd", unsafe.Sizeof(notifAddFD{}), unix.SECCOMP_IOCTL_NOTIF_ADDFD},
	}
	for _, c := range cases {
		if c.size != ioctlSize(c.req) {
			t.Errorf("struct %s: %d bytes, the ioctl says %d", c.name, c.size, ioctlSize(c.req))
		}
	}
	// SECCOMP_IOW(4, __u64): ADDFD's direction and type, number 4, 8 bytes.
	if want := unix.SECCOMP_IOCTL_NOTIF_ADDFD&^(0x3fff<<16|0xff) | 8<<16 | 4; ioctlNotifSetFlags != want {
		t.Errorf("SECCOMP_IOCTL_NOTIF_SET_FLAGS = %#x, want %#x", ioctlNotifSetFlags, want)
	}
	if off := unsafe.Offsetof(Data{}.Args); off != offsetArgs {
		t.Errorf("seccomp_data.args at %d, want %d", off, offsetArgs)
	}
	if unsafe.Offsetof(Data{}.Arch) != OffsetArch || unsafe.Offsetof(Data{}.Nr) != OffsetNr {
		t.Error("seccomp_data.nr or .arch misplaced")
	}
	var d Data
	d.Args[2] = 0x1122334455667788
	low := *(*uint32)(unsafe.Add(unsafe.Pointer(&d), OffsetArgLow(2)))
	if low != 0x55667788 {
		t.Errorf("OffsetArgLow(2) reads %#x, want the low half 0x55667788", low)
	}
}
