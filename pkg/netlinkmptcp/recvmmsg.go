package netlinkmptcp

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// multiReceiver reads many datagrams with one raw recvmmsg(2): a busy
// server's events come a few per wake-up, and a raw call does not involve
// the runtime's monitor thread.
type multiReceiver struct {
	hdrs []mmsghdr
	iovs []unix.Iovec
	buf  []byte
	size int
}

// mmsghdr is struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

func newMultiReceiver(slots, size int) *multiReceiver {
	r := &multiReceiver{hdrs: make([]mmsghdr, slots), iovs: make([]unix.Iovec, slots), buf: make([]byte, slots*size), size: size}
	for i := range slots {
		r.iovs[i].Base = &r.buf[i*size]
		r.iovs[i].SetLen(size)
		r.hdrs[i].hdr.Iov = &r.iovs[i]
		r.hdrs[i].hdr.SetIovlen(1)
	}
	return r
}

// receive reads what is queued, up to a datagram per slot, without
// waiting.
func (r *multiReceiver) receive(fd uintptr) (int, syscall.Errno) {
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)),
		unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// datagram returns the i-th datagram of the last receive, and whether the
// kernel cut it to fit its slot.
func (r *multiReceiver) datagram(i int) ([]byte, bool) {
	h := &r.hdrs[i]
	return r.buf[i*r.size : i*r.size+int(h.len)], h.hdr.Flags&unix.MSG_TRUNC != 0
}
