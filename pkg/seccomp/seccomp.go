// Package seccomp is the kernel's seccomp user-notification API
// (seccomp_unotify(2), Linux 5.0+; adding descriptors 5.9+): a filter whose
// SECCOMP_RET_USER_NOTIF verdicts stop the calling thread until a
// supervisor, holding the filter's listener descriptor, answers for it.
//
// golang.org/x/sys/unix has the constants and the ioctl numbers but not the
// structures; those are declared here from include/uapi/linux/seccomp.h.
package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Data is struct seccomp_data: the system call a notification is about.
type Data struct {
	// Nr is the system call number of Arch's table.
	Nr int32
	// Arch is the calling convention, an AUDIT_ARCH_* value.
	Arch               uint32
	InstructionPointer uint64
	// Args are the call's arguments as the registers held them; an int
	// argument is the low 32 bits.
	Args [6]uint64
}

// Notif is struct seccomp_notif.
type Notif struct {
	// ID names the notification in the answer; it is valid until then.
	ID uint64
	// Pid is the thread that made the call, in the listener's PID
	// namespace (0 if it is not visible there).
	Pid   uint32
	Flags uint32
	Data  Data
}

// notifResp is struct seccomp_notif_resp.
type notifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// notifAddFD is struct seccomp_notif_addfd.
type notifAddFD struct {
	ID         uint64
	Flags      uint32
	SrcFD      uint32
	NewFD      uint32
	NewFDFlags uint32
}

// Offsets in struct seccomp_data for filter programs.
const (
	OffsetNr   = 0
	OffsetArch = 4
	offsetArgs = 16
)

// OffsetArgLow is the offset of the low 32 bits of argument i (0..5), where
// an int argument lives, in struct seccomp_data.
func OffsetArgLow(i int) uint32 {
	off := uint32(offsetArgs + 8*i)
	if !littleEndian {
		off += 4
	}
	return off
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// flagWaitKillableRecv is SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux
// 5.19): once the supervisor has received a notification, only a fatal
// signal interrupts the waiting thread, so an answer is never lost to a
// signal the program handles and restarts the call after.
const flagWaitKillableRecv = unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV

// ErrGone says the notification no longer exists: the thread that made the
// call was interrupted by a signal or exited before the answer.
var ErrGone = errors.New("the notifying thread is gone")

// InstallListener installs prog as a seccomp filter for every thread of
// the calling process and returns the filter's listener. The filter stays
// across fork and execve. Unless the caller has CAP_SYS_ADMIN, it must have
// set no_new_privs first (SetNoNewPrivs).
func InstallListener(prog []unix.SockFilter) (*Listener, error) {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// TSYNC_ESRCH lets TSYNC and NEW_LISTENER go together (Linux 5.7):
	// a thread that cannot be synchronized fails the call with ESRCH
	// instead of returning its id where the listener would be.
	base := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH)
	fd, err := seccompSetFilter(base|flagWaitKillableRecv, &fprog)
	if errors.Is(err, unix.EINVAL) {
		// Before Linux 5.19; a handled signal may then interrupt a
		// call while its answer is under way (see Supervisor).
		fd, err = seccompSetFilter(base, &fprog)
	}
	if err != nil {
		return nil, fmt.Errorf("install seccomp filter with a listener: %w", err)
	}
	return &Listener{fd: fd}, nil
}

func seccompSetFilter(flags uintptr, fprog *unix.SockFprog) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(fprog)))
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// SetNoNewPrivs sets no_new_privs for the calling thread, which lets an
// unprivileged process install a filter; execve then grants no privileges
// (setuid, setgid, file capabilities). InstallListener's thread
// synchronization carries it to the other threads.
func SetNoNewPrivs() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return nil
}

// Listener is a filter's listener descriptor.
type Listener struct {
	fd int
}

// NewListener wraps a listener descriptor received from another process.
func NewListener(fd int) *Listener { return &Listener{fd: fd} }

// FD is the listener's descriptor, for handing it to another process.
func (l *Listener) FD() int { return l.fd }

// Close closes the descriptor. Once every copy is closed, calls waiting
// for an answer and later calls the filter sends fail with ENOSYS.
func (l *Listener) Close() error { return unix.Close(l.fd) }

// ioctlNotifSetFlags is SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_IOW(4,
// __u64) (Linux 6.6), which x/sys/unix does not define.
const ioctlNotifSetFlags = 0x40082104

// SyncWakeUp asks the kernel to wake the supervisor and the notifying
// thread on the CPU of the one that wakes the other (Linux 6.6+): the two
// take turns, so a notification and its answer then cost no cross-CPU
// wakeup. Older kernels refuse it (EINVAL), and only the speed differs.
func (l *Listener) SyncWakeUp() error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(l.fd), ioctlNotifSetFlags, unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
	if errno != 0 {
		return fmt.Errorf("seccomp listener: synchronous wake-up: %w", errno)
	}
	return nil
}

// Event is what Wait saw.
type Event int

const (
	// Pending: a notification waits to be received.
	Pending Event = iota
	// Unused: no process uses the filter any more (Linux 5.8+).
	Unused
	// Stopped: the stop descriptor became readable.
	Stopped
	// Timeout: none of these within the timeout.
	Timeout
)

// Wait blocks until stop (an eventfd or pipe, -1 for none) becomes
// readable, a notification is pending, or the filter has no users left,
// and says which, in that order of preference. timeout is in
// milliseconds, -1 for none.
func (l *Listener) Wait(stop, timeout int) (Event, error) {
	fds := []unix.PollFd{{Fd: int32(l.fd), Events: unix.POLLIN}, {Fd: int32(stop), Events: unix.POLLIN}}
	if stop < 0 {
		fds = fds[:1]
	}
	// A program that makes sockets in a row has its next call waiting by
	// the time the last one is answered: look first without blocking.
	n, err := pollNow(fds)
	for blocked := false; ; blocked = true {
		switch {
		case errors.Is(err, unix.EINTR):
		case err != nil:
			return 0, fmt.Errorf("poll seccomp listener: %w", err)
		case n > 0:
			if ev, ok, err := readyEvent(fds); ok {
				return ev, err
			}
		case blocked:
			return Timeout, nil
		}
		n, err = unix.Poll(fds, timeout)
	}
}

// readyEvent reads what poll reported in fds; ok is false when none of
// Wait's events is there.
func readyEvent(fds []unix.PollFd) (ev Event, ok bool, err error) {
	switch {
	case len(fds) > 1 && fds[1].Revents != 0:
		return Stopped, true, nil
	case fds[0].Revents&unix.POLLIN != 0:
		return Pending, true, nil
	case fds[0].Revents&unix.POLLHUP != 0:
		return Unused, true, nil
	case fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0:
		return 0, true, fmt.Errorf("poll seccomp listener: events %#x", fds[0].Revents)
	}
	return 0, false, nil
}

// pollNow polls fds with a timeout of 0.
//
// It, AddFD and the answers are raw system calls, outside the Go runtime's
// bookkeeping for calls that may block, which cost about 3 µs of every
// converted socket() (docs/benchmarks.md). A raw call holds its P and
// delays a stop-the-world until it returns, so only calls that return
// at once are made raw: this poll, SEND, and ADDFD, which waits only for
// the notifying thread, already woken, to install the descriptor.
func pollNow(fds []unix.PollFd) (int, error) {
	var now unix.Timespec
	// ppoll: arm64 has no poll.
	n, _, errno := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)), uintptr(unsafe.Pointer(&now)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// Receive reads the next notification into n. Call it after Wait says one
// is pending: before Linux 6.6 it blocks until one arrives, even when
// every process using the filter has gone. ErrGone means the notification
// was withdrawn between the two.
func (l *Listener) Receive(n *Notif) error {
	*n = Notif{} // the kernel refuses a structure that is not zeroed
	for {
		err := l.ioctl(unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(n))
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOENT):
			return ErrGone
		case err != nil:
			return fmt.Errorf("receive seccomp notification: %w", err)
		}
		return nil
	}
}

// AddFD installs a duplicate of src in the notifying process as its lowest
// free descriptor, close-on-exec if cloexec, and returns its number there.
// It does not answer the notification: Respond with the number does.
// Unlike the atomic SECCOMP_ADDFD_FLAG_SEND, a signal that interrupts this
// ioctl leaves the notification unanswered and the ioctl is restarted;
// with SEND, such an interruption answers the call with 0.
func (l *Listener) AddFD(id uint64, src int, cloexec bool) (int, error) {
	req := notifAddFD{ID: id, SrcFD: uint32(src)}
	if cloexec {
		req.NewFDFlags = unix.O_CLOEXEC
	}
	r, err := l.rawIoctl(unix.SECCOMP_IOCTL_NOTIF_ADDFD, unsafe.Pointer(&req))
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return -1, ErrGone
	}
	if err != nil {
		return -1, fmt.Errorf("add descriptor to notifying process: %w", err)
	}
	return r, nil
}

// Respond answers the notification: the call returns val, or fails with
// errno when errno is not 0.
func (l *Listener) Respond(id uint64, val int64, errno unix.Errno) error {
	resp := notifResp{ID: id, Val: val, Error: -int32(errno)}
	if errno != 0 {
		resp.Val = 0
	}
	return l.send(&resp)
}

// Continue answers the notification by letting the kernel run the call as
// if the filter had allowed it.
func (l *Listener) Continue(id uint64) error {
	return l.send(&notifResp{ID: id, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE})
}

func (l *Listener) send(resp *notifResp) error {
	_, err := l.rawIoctl(unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(resp))
	if errors.Is(err, unix.ENOENT) {
		return ErrGone
	}
	if err != nil {
		return fmt.Errorf("answer seccomp notification: %w", err)
	}
	return nil
}

// ioctl may block (RECV). It passes arg to the kernel as a pointer:
// converted to uintptr in the Syscall call itself, as unsafe.Pointer's
// rules require.
func (l *Listener) ioctl(req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(l.fd), req, uintptr(arg))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
}

// rawIoctl is for the requests that return at once (see pollNow).
func (l *Listener) rawIoctl(req uintptr, arg unsafe.Pointer) (int, error) {
	for {
		r, _, errno := unix.RawSyscall(unix.SYS_IOCTL, uintptr(l.fd), req, uintptr(arg))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(r), nil
	}
}
