package launch

import (
	"golang.org/x/sys/unix"
)

// terminal is mptcpgd run's controlling terminal, found on standard
// input, output or error.
type terminal struct {
	fd int
	// pgrp is mptcpgd run's process group; foreground says it owned the
	// terminal at start.
	pgrp       int
	foreground bool
}

// findTerminal returns the controlling terminal, or nil without one: a
// terminal that is not the controlling one answers TIOCGPGRP with ENOTTY.
func findTerminal() *terminal {
	for fd := 0; fd <= 2; fd++ {
		owner, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
		if err != nil {
			continue
		}
		pgrp := unix.Getpgrp()
		return &terminal{fd: fd, pgrp: pgrp, foreground: owner == pgrp}
	}
	return nil
}

// owner is the process group in the terminal's foreground, -1 if unknown.
func (t *terminal) owner() int {
	pgrp, err := unix.IoctlGetInt(t.fd, unix.TIOCGPGRP)
	if err != nil {
		return -1
	}
	return pgrp
}

// give puts pgrp in the foreground. mptcpgd run ignores SIGTTOU with a
// terminal, so this works from the background too; a terminal that hung
// up refuses, which changes nothing for anyone.
func (t *terminal) give(pgrp int) {
	_ = unix.IoctlSetPointerInt(t.fd, unix.TIOCSPGRP, pgrp)
}
