package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewestKernelPackage(t *testing.T) {
	search := `linux-image-6.1.0-9-amd64-unsigned - Linux 6.1 for 64-bit PCs
linux-image-6.1.0-57-amd64-unsigned - Linux 6.1 for 64-bit PCs
linux-image-6.1.0-57-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
linux-image-6.1.0-57-rt-amd64-unsigned - Linux 6.1 for 64-bit PCs, PREEMPT_RT
linux-image-6.12.9+deb12-amd64-unsigned - Linux 6.12 for 64-bit PCs
linux-image-6.12.113+deb12-amd64-unsigned - Linux 6.12 for 64-bit PCs
linux-image-6.12.113+deb12-cloud-amd64-unsigned - Linux 6.12 for x86-64 cloud
`
	tests := map[string]string{
		"6.1":  "linux-image-6.1.0-57-amd64-unsigned",
		"6.12": "linux-image-6.12.113+deb12-amd64-unsigned",
		"6.2":  "",
	}
	for series, want := range tests {
		if got := newestPackage(search, kernelPackagePattern(series)); got != want {
			t.Errorf("newest %s package = %q, want %q", series, got, want)
		}
	}
}

func TestCompareNatural(t *testing.T) {
	ordered := []string{"6.1.0-9", "6.1.0-10", "6.1.0-57", "6.1.1-1", "6.12.0-1"}
	for i := 1; i < len(ordered); i++ {
		if compareNatural(ordered[i-1], ordered[i]) >= 0 || compareNatural(ordered[i], ordered[i-1]) <= 0 {
			t.Errorf("%s and %s are not in order", ordered[i-1], ordered[i])
		}
	}
	if compareNatural("6.1.0-9", "6.1.0-9") != 0 {
		t.Error("a version is not equal to itself")
	}
}

func TestKernelTestPackages(t *testing.T) {
	root := "/src"
	listed := []listedPackage{
		{ImportPath: "github.com/mptcpgd/mptcpgd/pkg/pm", Dir: "/src/pkg/pm", TestGoFiles: []string{"a_test.go"},
			TestImports: []string{"github.com/mptcpgd/mptcpgd/internal/lab"}},
		{ImportPath: "github.com/mptcpgd/mptcpgd/e2e", Dir: "/src/e2e", XTestGoFiles: []string{"b_test.go"},
			XTestImports: []string{"github.com/mptcpgd/mptcpgd/internal/daemonlab"}},
		{ImportPath: "github.com/mptcpgd/mptcpgd/internal/lab", Dir: "/src/internal/lab", TestGoFiles: []string{"c_test.go"}},
		{ImportPath: "github.com/mptcpgd/mptcpgd/pkg/config", Dir: "/src/pkg/config", TestGoFiles: []string{"d_test.go"}},
		// Uses the lab but has no tests of its own.
		{ImportPath: "github.com/mptcpgd/mptcpgd/internal/daemonlab", Dir: "/src/internal/daemonlab",
			TestImports: []string{"github.com/mptcpgd/mptcpgd/internal/lab"}},
	}
	var got []string
	for _, p := range kernelTestPackages(root, listed) {
		got = append(got, p.Rel+"="+p.Name())
	}
	want := []string{"pkg/pm=pkg-pm", "e2e=e2e", "internal/lab=internal-lab"}
	if !slices.Equal(got, want) {
		t.Errorf("kernel test packages %v, want %v", got, want)
	}
	if sel := selectPackages(kernelTestPackages(root, listed), regexp.MustCompile(`^pkg/`)); len(sel) != 1 || sel[0].Rel != "pkg/pm" {
		t.Errorf("selected %v, want pkg/pm", sel)
	}
}

func TestGuestTestPackages(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("guest_test.go", "// Copyright\n\n//go:build guest\n\npackage x\n")
	write("other_test.go", "//go:build linux\n\npackage x\n")
	write("late_test.go", "package x\n\n//go:build guest\n")
	listed := []listedPackage{
		{ImportPath: "x/with", Dir: dir, IgnoredGoFiles: []string{"other_test.go", "guest_test.go"}},
		{ImportPath: "x/without", Dir: dir, IgnoredGoFiles: []string{"other_test.go", "late_test.go"}},
	}
	got, err := guestTestPackages(filepath.Dir(dir), listed)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ImportPath != "x/with" {
		t.Errorf("guest test packages %v, want x/with only", got)
	}
}

// TestRunScriptInAShell runs the guest's script with sh on this machine:
// each job's exit status, times and output land where readResults looks.
func TestRunScriptInAShell(t *testing.T) {
	out := t.TempDir()
	work := t.TempDir()
	run := guestRun{
		Out:   out,
		Env:   []string{"GREETING=it's here"},
		Setup: "echo 'set up first' >" + shellQuote(filepath.Join(work, "setup")) + "\n",
		Jobs: []guestJob{
			{Name: "pass", Label: "pkg/pass", Dir: work, Argv: []string{"sh", "-c", `echo "$GREETING" in "$(pwd)"; cat setup; echo "--- FAIL: TestNotReally" >/dev/null`}},
			{Name: "fail", Label: "pkg/fail", Dir: work, Argv: []string{"sh", "-c", "echo '=== RUN   TestOK'; echo '    ok_test.go:3: a log line'; " +
				"echo '=== RUN   TestX/sub'; echo '    x_test.go:12: got 1, want 2'; echo '--- FAIL: TestX (0.00s)'; echo '    --- FAIL: TestX/sub (0.00s)'; exit 1"}},
		},
	}
	script := filepath.Join(work, "run.sh")
	if err := os.WriteFile(script, []byte(run.Script()), 0o755); err != nil {
		t.Fatal(err)
	}
	var console bytes.Buffer
	cmd := exec.Command("sh", script)
	cmd.Stdout, cmd.Stderr = &console, &console
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, console.String())
	}
	if !strings.Contains(console.String(), "vmtest: fail: exit status 1") {
		t.Errorf("console lacks the progress lines:\n%s", console.String())
	}
	results := readResults(out, append(run.Jobs, guestJob{Name: "never", Label: "pkg/never"}))
	if r := results[0]; r.Status != "ok" || r.Took <= 0 || r.Took > time.Minute || len(r.Failed) != 0 {
		t.Errorf("pass: %+v", r)
	}
	if log, _ := os.ReadFile(results[0].Log); !strings.Contains(string(log), "it's here in "+work) {
		t.Errorf("pass's log %q: the environment or the directory is wrong", log)
	} else if !strings.Contains(string(log), "set up first") {
		t.Errorf("pass's log %q: the setup did not run before the first job", log)
	}
	if r := results[1]; r.Status != "FAIL" || !slices.Equal(r.Failed, []string{"TestX", "TestX/sub"}) || !slices.Equal(r.Errors, []string{"x_test.go:12: got 1, want 2"}) {
		t.Errorf("fail: %+v", r)
	}
	if r := results[2]; r.Status != "no result" {
		t.Errorf("a job the guest never ran: %+v", r)
	}
}

func TestWriteTable(t *testing.T) {
	runs := []guestResults{
		{Guest: "6.1.0-57-amd64", Wall: 3 * time.Minute, Results: []result{
			{Label: "pkg/pm", Status: "ok", Took: 61 * time.Second},
			{Label: "e2e", Status: "FAIL", Took: 90 * time.Second, Failed: []string{"TestX"}, Log: "/logs/e2e.log"},
		}},
		{Guest: "6.12.113+deb12-amd64", Err: errors.New("guest still running at its deadline (30m0s): killed"), Results: []result{
			{Label: "pkg/pm", Status: "ok"}, {Label: "e2e", Status: "no result"},
		}},
		{Guest: "6.13.0-1-amd64", Results: []result{{Label: "pkg/pm", Status: "no result"}, {Label: "e2e", Status: "no result"}},
			ConsoleTail: []string{"vmtest: mount 9p out on /host/run/vmtest-out failed"}},
	}
	runs[0].Results[1].Errors = []string{"e2e_test.go:40: eth2 carried nothing"}
	var b bytes.Buffer
	writeTable(&b, runs)
	for _, want := range []string{
		"6.1.0-57-amd64        pkg/pm", "1m1s", "(whole guest, boot included)  FAIL",
		"guest still running at its deadline", "e2e: FAIL; log /logs/e2e.log\n  TestX\n    e2e_test.go:40: eth2 carried nothing",
		"6.12.113+deb12-amd64 e2e: no result",
		"6.13.0-1-amd64: none of its 2 packages ran: its console ended with:\n  | vmtest: mount 9p out on /host/run/vmtest-out failed",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	if !runs[0].failed() || !runs[1].failed() || (guestResults{Results: []result{{Status: "ok"}}}).failed() {
		t.Error("failed() is wrong")
	}
}

func TestProgressFilter(t *testing.T) {
	var b bytes.Buffer
	p := &progressFilter{w: &b}
	for _, chunk := range []string{"[  1.0] boot\n[ 40.1] sh[2]: vmtest: e2e: st", "arted\nnoise\n", "vmtest: done"} {
		if _, err := p.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if b.String() != "guest: e2e: started\n" {
		t.Errorf("progress %q, want only the finished vmtest line", b.String())
	}
}

func TestFailedTestsPutsTheTestsOwnErrorsFirst(t *testing.T) {
	var log strings.Builder
	log.WriteString("=== RUN   TestA\n=== RUN   TestA/static\n")
	for i := range 8 {
		log.WriteString("    logger.go:146: 2026-12-01T10:46:29Z\tINFO\tline " + string(rune('0'+i)) + "\n")
	}
	log.WriteString("    routing_kernel_test.go:119: eth2 sent 3 bytes\n")
	log.WriteString("--- FAIL: TestA (9.00s)\n    --- FAIL: TestA/static (9.00s)\n=== RUN   TestB\n    b_test.go:1: passing noise\n--- PASS: TestB (0.00s)\n")
	path := filepath.Join(t.TempDir(), "pkg.log")
	if err := os.WriteFile(path, []byte(log.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	failed, messages := failedTests(path)
	if !slices.Equal(failed, []string{"TestA", "TestA/static"}) {
		t.Errorf("failed = %q", failed)
	}
	if len(messages) != maxErrors || messages[0] != "routing_kernel_test.go:119: eth2 sent 3 bytes" || !strings.Contains(messages[1], "line 0") {
		t.Errorf("messages = %q; want the test's error first, then the first log lines", messages)
	}
}

func TestASecondBootAfterAKernelPanic(t *testing.T) {
	console := filepath.Join(t.TempDir(), "console.log")
	if err := os.WriteFile(console, []byte("guest: e2e: started\n[  131.2] Kernel panic - not syncing: Fatal exception in interrupt\n[  131.3] Kernel Offset: disabled\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := kernelPanic(console); got != "Kernel panic - not syncing: Fatal exception in interrupt" {
		t.Errorf("kernelPanic = %q", got)
	}
	if got := kernelPanic(filepath.Join(t.TempDir(), "none")); got != "" {
		t.Errorf("kernelPanic of no console = %q", got)
	}

	run := guestRun{Jobs: []guestJob{{Name: "pm", Label: "pkg/pm"}, {Name: "e2e", Label: "e2e"}, {Name: "rtnl", Label: "pkg/rtnl"}}}
	first := guestResults{Guest: "6.12", Wall: time.Minute, Panic: "Kernel panic - not syncing: x", Results: []result{
		{Label: "pkg/pm", Status: "ok"}, {Label: "e2e", Status: "no result"}, {Label: "pkg/rtnl", Status: "no result"},
	}}
	if got := run.only(first.Results).Jobs; len(got) != 2 || got[0].Label != "e2e" || got[1].Label != "pkg/rtnl" {
		t.Errorf("the second boot runs %v; want e2e and pkg/rtnl", got)
	}
	second := guestResults{Guest: "6.12", Wall: 2 * time.Minute, Results: []result{{Label: "e2e", Status: "ok"}, {Label: "pkg/rtnl", Status: "FAIL"}}}
	why := first.secondBootReason()
	if why != "its kernel panicked: Kernel panic - not syncing: x" {
		t.Errorf("secondBootReason = %q", why)
	}
	g := first.retried(second, why, "/logs/console-first-boot.log")
	if want := []string{"ok", "ok", "FAIL"}; !slices.Equal([]string{g.Results[0].Status, g.Results[1].Status, g.Results[2].Status}, want) {
		t.Errorf("merged results %+v; want statuses %v", g.Results, want)
	}
	if g.Wall != 3*time.Minute || g.Panic != "" || !g.failed() {
		t.Errorf("merged guest: wall %s, panic %q, failed %t", g.Wall, g.Panic, g.failed())
	}
	var b bytes.Buffer
	writeTable(&b, []guestResults{g})
	if want := "6.12: its kernel panicked: Kernel panic - not syncing: x (console kept in /logs/console-first-boot.log): the packages it left without a result (2) ran in a second boot"; !strings.Contains(b.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, b.String())
	}

	// A second panic leaves its packages without a result, and its console shows.
	again := guestResults{Guest: "6.12", Panic: "Kernel panic - not syncing: y", ConsoleTail: []string{"Kernel panic - not syncing: y"},
		Results: []result{{Label: "e2e", Status: "ok"}, {Label: "pkg/rtnl", Status: "no result"}}}
	b.Reset()
	writeTable(&b, []guestResults{first.retried(again, why, "/logs/console-first-boot.log")})
	if want := "6.12: its kernel panicked; its console ended with:\n  | Kernel panic - not syncing: y"; !strings.Contains(b.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, b.String())
	}
}

func TestSecondBootOnlyForAPanicOrABootFailure(t *testing.T) {
	none := []result{{Label: "pkg/pm", Status: "no result"}, {Label: "e2e", Status: "no result"}}
	some := []result{{Label: "pkg/pm", Status: "FAIL"}, {Label: "e2e", Status: "no result"}}
	all := []result{{Label: "pkg/pm", Status: "FAIL"}, {Label: "e2e", Status: "ok"}}
	for _, c := range []struct {
		name string
		g    guestResults
		want string
	}{
		{"stopped during boot", guestResults{Wall: 14 * time.Second, Results: none}, "it stopped after 14s without running a package"},
		{"hung in its first package", guestResults{Wall: 12 * time.Minute, Results: none}, ""},
		{"a package hung after others ran", guestResults{Wall: 30 * time.Second, Results: some}, ""},
		{"panicked during boot", guestResults{Wall: 9 * time.Second, Panic: "Kernel panic - x", Results: none}, "its kernel panicked: Kernel panic - x"},
		{"panicked late", guestResults{Wall: 9 * time.Minute, Panic: "Kernel panic - x", Results: some}, "its kernel panicked: Kernel panic - x"},
		{"panicked at power-off", guestResults{Wall: 9 * time.Minute, Panic: "Kernel panic - x", Results: all}, ""},
		{"no packages", guestResults{Wall: time.Second}, ""},
	} {
		if got := c.g.secondBootReason(); got != c.want {
			t.Errorf("%s: secondBootReason = %q, want %q", c.name, got, c.want)
		}
	}

	// A boot failure's second boot runs everything and says so.
	first := guestResults{Guest: "6.1", Wall: 14 * time.Second, Results: none, ConsoleTail: []string{"qemu: could not load kernel"}}
	second := guestResults{Guest: "6.1", Wall: 5 * time.Minute, Results: all}
	g := first.retried(second, first.secondBootReason(), "/logs/console-first-boot.log")
	if len(g.Results) != 2 || g.Results[0].Status != "FAIL" || g.Results[1].Status != "ok" || g.Wall != 5*time.Minute+14*time.Second || g.ConsoleTail != nil {
		t.Errorf("merged guest %+v; want the second boot's results and both walls", g)
	}
	var b bytes.Buffer
	writeTable(&b, []guestResults{g})
	if want := "6.1: it stopped after 14s without running a package (console kept in /logs/console-first-boot.log): the packages it left without a result (2) ran in a second boot"; !strings.Contains(b.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, b.String())
	}
}
