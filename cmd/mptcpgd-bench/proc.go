package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// userHZ is the unit of utime and stime in /proc/PID/stat: USER_HZ, 100
// on every Linux architecture Go supports.
const userHZ = 100

// procSnapshot is what /proc says about a daemon the bench started.
type procSnapshot struct {
	// cpu is utime+stime of the whole process (all threads, the exited
	// ones included), in USER_HZ ticks.
	cpu time.Duration
	// rssKiB is VmRSS, anonKiB and fileKiB its anonymous (heap, stacks)
	// and file-backed (the mapped binary) parts.
	rssKiB, anonKiB, fileKiB int
	// switches is voluntary plus nonvoluntary context switches, summed over
	// the threads that exist now: each one is a wakeup.
	switches int
	threads  int
	// perThread is each thread's switches, by thread id.
	perThread map[string]int
}

func readProc(pid int) (procSnapshot, error) {
	var p procSnapshot
	dir := fmt.Sprintf("/proc/%d", pid)
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return p, err
	}
	// The command name may hold spaces and parentheses: fields start
	// after the last ')'. utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(stat), ')')
	f := strings.Fields(string(stat)[i+1:])
	if len(f) < 13 {
		return p, fmt.Errorf("%s/stat: short: %q", dir, stat)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return p, fmt.Errorf("%s/stat: bad utime/stime in %q", dir, stat)
	}
	p.cpu = time.Duration(ut+st) * time.Second / userHZ
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return p, err
	}
	p.rssKiB = statusField(string(status), "VmRSS:")
	p.anonKiB, p.fileKiB = statusField(string(status), "RssAnon:"), statusField(string(status), "RssFile:")
	tasks, err := os.ReadDir(filepath.Join(dir, "task"))
	if err != nil {
		return p, err
	}
	p.perThread = map[string]int{}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, "task", t.Name(), "status"))
		if err != nil {
			continue // the thread exited meanwhile
		}
		n := statusField(string(b), "voluntary_ctxt_switches:") + statusField(string(b), "nonvoluntary_ctxt_switches:")
		p.perThread[t.Name()] = n
		p.switches += n
		p.threads++
	}
	return p, nil
}

// statusField is the number after key in a /proc status file, 0 if absent.
func statusField(status, key string) int {
	for line := range strings.Lines(status) {
		if rest, ok := strings.CutPrefix(line, key); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return 0
}

func mustProc(s *lab.Scope, d daemon) procSnapshot {
	p, err := readProc(d.PID())
	if err != nil {
		s.Fatalf("read /proc of %s (pid %d): %v", d.Name(), d.PID(), err)
	}
	return p
}

func mib(kib int) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// threadDeltas is how many switches each thread of after made since
// before, the busiest first; threads that exist only in after count from 0.
func threadDeltas(before, after procSnapshot) []int {
	var out []int
	for tid, n := range after.perThread {
		out = append(out, n-before.perThread[tid])
	}
	slices.SortFunc(out, func(a, b int) int { return b - a })
	return out
}
