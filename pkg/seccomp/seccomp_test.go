package seccomp

import (
	"sync"
	"testing"
	"time"
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

// Wait reports the same events whether they were there when it looked or
// came while it blocked. A pipe stands in for the listener: readable is a
// pending notification, a closed writer a filter without users.
func TestWait(t *testing.T) {
	write := func(fd int) {
		if _, err := unix.Write(fd, []byte{1, 0, 0, 0, 0, 0, 0, 0}); err != nil {
			t.Error(err)
		}
	}
	cases := []struct {
		name string
		act  func(e ends)
		want Event
	}{
		{"pending", func(e ends) { write(e.writer) }, Pending},
		{"unused", func(e ends) { e.closeWriter() }, Unused},
		{"stopped", func(e ends) { write(e.stop) }, Stopped},
		{"nothing", func(ends) {}, Timeout},
	}
	for _, c := range cases {
		for _, later := range []bool{false, true} {
			if later && c.want == Timeout {
				continue
			}
			name := c.name + "/at-once"
			if later {
				name = c.name + "/while-blocked"
			}
			t.Run(name, func(t *testing.T) {
				var p [2]int
				if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
					t.Fatal(err)
				}
				stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
				if err != nil {
					t.Fatal(err)
				}
				// The writer is closed once, by the case or at the end,
				// never a descriptor number that was given out again.
				e := ends{writer: p[1], stop: stop, closeWriter: sync.OnceFunc(func() { unix.Close(p[1]) })}
				t.Cleanup(func() { unix.Close(p[0]); e.closeWriter(); unix.Close(stop) })
				if later {
					go func() { time.Sleep(50 * time.Millisecond); c.act(e) }()
				} else {
					c.act(e)
				}
				got, err := NewListener(p[0]).Wait(stop, 500)
				if err != nil || got != c.want {
					t.Errorf("Wait = %v, %v; want %v", got, err, c.want)
				}
			})
		}
	}
}

// ends are what a TestWait case acts on: the pipe's writer and the stop
// eventfd.
type ends struct {
	writer, stop int
	closeWriter  func()
}
