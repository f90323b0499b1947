// Package procsock tells, for running processes, which of their TCP
// sockets are MPTCP sockets: it matches the socket inodes in
// /proc/PID/fd with the kernel's socket diagnostics of the process's
// network namespace, so that a user can check `mptcpgd run` without
// tcpdump.
package procsock

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

// Process is one process's sockets.
type Process struct {
	PID  int
	Comm string
	// Sockets are its TCP and MPTCP sockets that the kernel lists.
	Sockets []sockdiag.Socket
	// Unlisted counts its other sockets: UDP, unix, netlink, and TCP or
	// MPTCP sockets that are not yet bound and listening or connecting.
	Unlisted int
	// Err says why the process could not be looked at (gone, or not
	// ours to read without privileges).
	Err error
}

// Counts returns how many of p's listed sockets are MPTCP sockets, and
// how many are listed at all.
func (p Process) Counts() (mptcp, all int) {
	for _, s := range p.Sockets {
		if s.MPTCP {
			mptcp++
		}
	}
	return mptcp, len(p.Sockets)
}

// Find returns the PIDs that args name: a number is a PID, anything else a
// command name (/proc/PID/comm, or the base name of the executable).
func Find(args []string) ([]int, error) {
	var pids []int
	all, err := allPIDs()
	if err != nil {
		return nil, err
	}
	for _, a := range args {
		if pid, err := strconv.Atoi(a); err == nil {
			pids = append(pids, pid)
			continue
		}
		found := false
		for _, pid := range all {
			if comm(pid) == a || filepath.Base(exe(pid)) == a {
				pids = append(pids, pid)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("no process named %q", a)
		}
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// WithDescendants adds every descendant of pids: the workers of a server,
// or the program that `mptcpgd run` started when its PID is given.
func WithDescendants(pids []int) ([]int, error) {
	all, err := allPIDs()
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, pid := range all {
		if ppid := parentOf(pid); ppid > 0 {
			children[ppid] = append(children[ppid], pid)
		}
	}
	seen := map[int]bool{}
	var out []int
	var walk func(int)
	walk = func(pid int) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		out = append(out, pid)
		for _, c := range children[pid] {
			walk(c)
		}
	}
	for _, pid := range pids {
		walk(pid)
	}
	slices.Sort(out)
	return out, nil
}

// Inspect reports the sockets of each process. The kernel is asked once
// per network namespace.
func Inspect(pids []int) []Process {
	lists := map[string][]sockdiag.Socket{}
	var out []Process
	for _, pid := range pids {
		p := Process{PID: pid, Comm: comm(pid)}
		inodes, err := socketInodes(pid)
		if err == nil {
			var sockets []sockdiag.Socket
			sockets, err = namespaceSockets(pid, lists)
			p.Sockets, p.Unlisted = match(inodes, sockets)
		}
		p.Err = err
		out = append(out, p)
	}
	return out
}

// match picks the listed sockets whose inodes are among inodes, and
// counts the inodes that are not listed.
func match(inodes []uint32, sockets []sockdiag.Socket) ([]sockdiag.Socket, int) {
	byInode := make(map[uint32]sockdiag.Socket, len(sockets))
	for _, s := range sockets {
		byInode[s.Inode] = s
	}
	var found []sockdiag.Socket
	unlisted := 0
	for _, ino := range inodes {
		if s, ok := byInode[ino]; ok {
			found = append(found, s)
		} else {
			unlisted++
		}
	}
	slices.SortFunc(found, func(a, b sockdiag.Socket) int {
		return cmp.Or(cmp.Compare(a.State, b.State), a.Local.Compare(b.Local), cmp.Compare(a.Inode, b.Inode))
	})
	return found, unlisted
}

// namespaceSockets lists the sockets of pid's network namespace, once per
// namespace.
func namespaceSockets(pid int, lists map[string][]sockdiag.Socket) ([]sockdiag.Socket, error) {
	path := fmt.Sprintf("/proc/%d/ns/net", pid)
	id, err := os.Readlink(path)
	if err != nil {
		return nil, fmt.Errorf("network namespace of pid %d: %w", pid, err)
	}
	if s, ok := lists[id]; ok {
		return s, nil
	}
	ns, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("network namespace of pid %d: %w", pid, err)
	}
	defer ns.Close()
	s, err := sockdiag.ListSockets(&sockdiag.Config{NetNS: int(ns.Fd())})
	if err != nil {
		return nil, err
	}
	lists[id] = s
	return s, nil
}

// socketInodes lists the inodes of pid's socket descriptors.
func socketInodes(pid int) ([]uint32, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("descriptors of pid %d: %w", pid, err)
	}
	var inodes []uint32
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if n, ok := strings.CutPrefix(target, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(n, "]"), 10, 32); err == nil {
				inodes = append(inodes, uint32(ino))
			}
		}
	}
	return inodes, nil
}

func allPIDs() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

func exe(pid int) string {
	p, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return p
}

// parentOf reads the parent PID from /proc/PID/stat, whose second field
// (the command) may hold spaces and parentheses: the fields after the last
// ")" are "state ppid ...".
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}
