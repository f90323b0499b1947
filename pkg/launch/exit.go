package launch

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Exit ends this process as the program ended: with its exit code, or
// killed by the same signal (without a core file of its own), so that a
// shell or systemd sees what it would have seen without the wrapper.
func Exit(st Status) {
	if st.Signal == 0 {
		os.Exit(st.Code)
	}
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	runtime.LockOSThread()
	if setDisposition(st.Signal, sigDefault) == nil {
		var set unix.Sigset_t
		set.Val[(st.Signal-1)/64] = 1 << ((st.Signal - 1) % 64)
		_ = unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil)
		_ = unix.Tgkill(unix.Getpid(), unix.Gettid(), st.Signal)
	}
	// A signal whose default action does not end a process.
	os.Exit(128 + int(st.Signal))
}
