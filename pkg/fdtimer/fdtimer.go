// Package fdtimer is a one-shot timer on a timerfd, which the runtime's
// network poller waits on like any socket.
//
// Why not time.Timer: when a runtime timer fires after a long sleep, the
// runtime's monitor thread (sysmon) wakes at the deadline on a precise
// futex, while the thread that waits in epoll wakes up to 0.1% later (the
// kernel's slack for poll timeouts, 30 ms on a 30 s timer); until the
// timer has run, the monitor polls every 20 µs, then backs off: some 60
// context switches for one tick of an idle daemon. A timerfd is not a
// runtime timer, so the monitor sleeps through it.
package fdtimer

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Timer fires once on C after it was set. No value from before a Reset or
// Stop is received after it, as with Go's own timers since 1.23.
type Timer struct {
	mu sync.Mutex
	f  *os.File
	rc syscall.RawConn
	c  chan time.Time
}

// New returns a timer that fires d from now (d <= 0: not set). Close
// releases it.
func New(d time.Duration) (*Timer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create timerfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	t := &Timer{f: f, rc: rc, c: make(chan time.Time, 1)}
	t.Reset(d)
	go t.run()
	return t, nil
}

// C delivers the time the timer fired.
func (t *Timer) C() <-chan time.Time { return t.c }

// Reset sets the timer to fire d from now, dropping a value not received.
func (t *Timer) Reset(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.set(d)
}

// Stop unsets the timer, dropping a value not received.
func (t *Timer) Stop() { t.Reset(0) }

// set arms (d > 0) or disarms the timerfd and drains c; t.mu is held.
// Setting a timerfd clears its expiry count, so nothing read afterwards
// is from before.
func (t *Timer) set(d time.Duration) {
	var spec unix.ItimerSpec
	if d > 0 {
		spec.Value = unix.NsecToTimespec(int64(d))
	}
	_ = t.rc.Control(func(fd uintptr) { _ = unix.TimerfdSettime(int(fd), 0, &spec, nil) })
	select {
	case <-t.c:
	default:
	}
}

// Close releases the timer's descriptor; it fires no more.
func (t *Timer) Close() { _ = t.f.Close() }

// run reads expirations until the timer is closed. Each read and its
// delivery happen under t.mu, so a Reset is either before both or after
// both.
func (t *Timer) run() {
	var buf [8]byte
	_ = t.rc.Read(func(fd uintptr) bool {
		t.mu.Lock()
		defer t.mu.Unlock()
		// A raw read: the runtime's monitor is not woken for it.
		n, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		if errno != 0 || n != 8 || binary.NativeEndian.Uint64(buf[:]) == 0 {
			return errno != 0 && errno != unix.EAGAIN && errno != unix.EINTR
		}
		select {
		case t.c <- time.Now():
		default:
		}
		return false
	})
}
