package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// guestJob is one test binary the guest runs.
type guestJob struct {
	// Name names its files; Label is what the table shows (the package).
	Name, Label string
	// Dir is where it runs, as the guest sees it: the package's source
	// directory, as `go test` does, for testdata.
	Dir string
	// Argv is the command, as the guest sees it.
	Argv []string
}

// guestRun is what a guest does, written as the shell script it runs as
// root: each job in turn, its output, exit status and start and end times
// in Out, and a line on the console before and after each.
type guestRun struct {
	// Out is the results directory, as the guest sees it.
	Out string
	// Env are the variables every job gets (CI=true among them).
	Env []string
	// Setup is shell run once before the jobs.
	Setup string
	Jobs  []guestJob
}

// only returns r with the jobs that have no result in results.
func (r guestRun) only(results []result) guestRun {
	var jobs []guestJob
	for _, j := range r.Jobs {
		if slices.ContainsFunc(results, func(res result) bool { return res.Label == j.Label && res.Status == "no result" }) {
			jobs = append(jobs, j)
		}
	}
	r.Jobs = jobs
	return r
}

// Script is the shell script for the guest.
func (r guestRun) Script() string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Written by mptcpgd-vmtest for one guest run.\n")
	b.WriteString("export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root\n")
	for _, e := range r.Env {
		fmt.Fprintf(&b, "export %s\n", shellQuote(e))
	}
	fmt.Fprintf(&b, "out=%s\nmkdir -p \"$out\"\nuname -r >\"$out/kernel\"\n", shellQuote(r.Out))
	b.WriteString(`echo "vmtest: running on $(uname -r)"
job() {
	name=$1 dir=$2
	shift 2
	echo "vmtest: $name: started"
	start=$(date +%s.%N)
	(cd "$dir" && exec "$@") >"$out/$name.log" 2>&1 </dev/null
	rc=$?
	end=$(date +%s.%N)
	echo "$start $end" >"$out/$name.time"
	echo "$rc" >"$out/$name.rc"
	echo "vmtest: $name: exit status $rc"
}
`)
	b.WriteString(r.Setup)
	for _, j := range r.Jobs {
		args := []string{"job", j.Name, j.Dir}
		args = append(args, j.Argv...)
		for i, a := range args {
			args[i] = shellQuote(a)
		}
		b.WriteString(strings.Join(args, " ") + "\n")
	}
	b.WriteString("sync\n")
	return b.String()
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// result is how one job ended.
type result struct {
	// Label is the job's (its package).
	Label string
	// Status is "ok", "FAIL" or "no result" (the guest never finished it).
	Status string
	Took   time.Duration
	// Failed are the tests that failed ("--- FAIL: TestX"), from the log;
	// Errors the first of their messages ("file_test.go:12: ...").
	Failed, Errors []string
	// Log is the job's output on the host.
	Log string
}

// readResults reads what the guest wrote to dir for each job.
func readResults(dir string, jobs []guestJob) []result {
	var out []result
	for _, j := range jobs {
		r := result{Label: j.Label, Status: "no result", Log: filepath.Join(dir, j.Name+".log")}
		if rc, err := os.ReadFile(filepath.Join(dir, j.Name+".rc")); err == nil {
			r.Status = "FAIL"
			if strings.TrimSpace(string(rc)) == "0" {
				r.Status = "ok"
			}
		}
		if t, err := os.ReadFile(filepath.Join(dir, j.Name+".time")); err == nil {
			r.Took = parseTimes(string(t))
		}
		r.Failed, r.Errors = failedTests(r.Log)
		out = append(out, r)
	}
	return out
}

// parseTimes reads "START END" in seconds since the epoch.
func parseTimes(s string) time.Duration {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0
	}
	start, err1 := strconv.ParseFloat(f[0], 64)
	end, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || end < start {
		return 0
	}
	return time.Duration((end - start) * float64(time.Second))
}

// maxErrors is how many test messages a failed package shows in the table:
// the first say why, the rest are in its log.
const maxErrors = 6

// testMessage is a go test message line: "    file_test.go:12: text".
var testMessage = regexp.MustCompile(`^\s+[\w.-]+\.go:\d+: `)

// failedTests lists the "--- FAIL: Name" lines of a go test -v log, and a
// panic or timeout line if the binary died; and the first messages the
// failed tests logged, each attributed by the "=== RUN/NAME/CONT Name" line
// above it.
func failedTests(log string) (failed, messages []string) {
	f, err := os.Open(log)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	type message struct{ test, text string }
	var all []message
	current := ""
	for s.Scan() {
		line := s.Text()
		if testMessage.MatchString(line) {
			all = append(all, message{current, shorten(strings.TrimSpace(line), 240)})
			continue
		}
		line = strings.TrimSpace(line)
		for _, p := range []string{"=== RUN ", "=== NAME ", "=== CONT "} {
			if name, ok := strings.CutPrefix(line, p); ok {
				current = strings.TrimSpace(name)
			}
		}
		if name, ok := strings.CutPrefix(line, "--- FAIL: "); ok {
			failed = append(failed, strings.Fields(name)[0])
		}
		if strings.HasPrefix(line, "panic: ") {
			failed = append(failed, line)
		}
	}
	// The test's own errors say why; the daemon's log lines (zaptest's
	// logger.go) before them only say what happened, so they come after.
	for _, own := range []bool{true, false} {
		for _, m := range all {
			if len(messages) < maxErrors && slices.Contains(failed, m.test) && own != strings.HasPrefix(m.text, "logger.go:") {
				messages = append(messages, m.text)
			}
		}
	}
	return failed, messages
}

// shorten cuts s to at most n bytes, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + " [...]"
}

// keepLogs moves the jobs' logs from the work share to dir and points the
// results at them.
func keepLogs(results []result, dir string) error {
	for i, r := range results {
		dst := filepath.Join(dir, filepath.Base(r.Log))
		if _, err := os.Stat(r.Log); err != nil {
			results[i].Log = ""
			continue
		}
		if err := os.Rename(r.Log, dst); err != nil {
			if err := copyFile(r.Log, dst); err != nil {
				return err
			}
		}
		results[i].Log = dst
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
