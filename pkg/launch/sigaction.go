//go:build amd64 || arm64

package launch

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelSigaction is the kernel's struct sigaction for rt_sigaction(2) on
// amd64 and arm64 (include/linux/signal_types.h with SA_RESTORER).
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// Raw dispositions: os/signal can only return a signal to the disposition
// the process started with, and both uses below need a given one.
const (
	sigDefault uintptr = 0 // SIG_DFL
	sigIgnore  uintptr = 1 // SIG_IGN
)

// setDisposition sets sig to SIG_DFL or SIG_IGN behind the Go runtime's
// back. Only for a process about to execve or to die: the runtime's view of
// the signal is wrong afterwards.
func setDisposition(sig syscall.Signal, handler uintptr) error {
	act := kernelSigaction{handler: handler}
	_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
