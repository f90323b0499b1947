package lab

import "syscall"

// AsUser runs fn with the process's effective uid set to uid, which drops
// root's capabilities (file permissions apply again) until fn returns. It
// changes every thread of the process: tests that use it must not run in
// parallel with others.
func AsUser(tb TB, uid int, fn func()) {
	tb.Helper()
	Require(tb)
	if err := syscall.Setresuid(-1, uid, -1); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		if err := syscall.Setresuid(-1, 0, -1); err != nil {
			panic(err)
		}
	}()
	fn()
}
