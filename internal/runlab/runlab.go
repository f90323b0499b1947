// Package runlab builds the programs that the tests and benchmarks of
// `mptcpgd run` wrap: sockprobe (C, dynamically linked), gosock (Go,
// static) and gosock386 (the same for 32-bit x86), and a copy of mptcpgd,
// in a directory that every user may read, so that an unprivileged user
// can run them too. See testdata/ for what each program does.
package runlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
	"github.com/mptcpgd/mptcpgd/internal/lab"
)

var (
	once     sync.Once
	dir      string
	tools    map[string]string
	buildErr error
)

// PrebuiltEnv names a directory holding sockprobe, gosock and gosock386
// already built (BuildTools): the qemu guests have no Go toolchain.
const PrebuiltEnv = "MPTCPGD_RUNLAB_TOOLS"

// Tool returns the path of one of the programs: "mptcpgd", "sockprobe",
// "gosock" or "gosock386". They are built (or copied from PrebuiltEnv)
// once per process; call Cleanup at its end.
func Tool(tb lab.TB, name string) string {
	tb.Helper()
	once.Do(func() { build(tb) })
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return tools[name]
}

// Cleanup removes the programs, and the mptcpgd binary daemonlab built
// for them.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
	daemonlab.Cleanup()
}

func build(tb lab.TB) {
	d, err := os.MkdirTemp("", "mptcpgd-runlab-")
	if err == nil {
		dir, err = d, os.Chmod(d, 0o755)
	}
	if err != nil {
		buildErr = err
		return
	}
	tools = map[string]string{}
	if pre := os.Getenv(PrebuiltEnv); pre != "" {
		buildErr = copyTools(pre, dir)
	} else {
		buildErr = BuildTools(dir)
	}
	if buildErr != nil {
		return
	}
	for _, name := range toolNames {
		tools[name] = filepath.Join(dir, name)
	}
	bin, err := os.ReadFile(daemonlab.Binary(tb))
	if err == nil {
		tools["mptcpgd"] = filepath.Join(dir, "mptcpgd")
		err = os.WriteFile(tools["mptcpgd"], bin, 0o755)
	}
	buildErr = err
}

var toolNames = []string{"sockprobe", "gosock", "gosock386"}

// BuildTools compiles sockprobe, gosock and gosock386 into dir.
func BuildTools(dir string) error {
	_, here, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(here), "testdata")
	steps := []struct {
		name string
		cmd  *exec.Cmd
		env  []string
	}{
		{"sockprobe", exec.Command("gcc", "-O2", "-Wall", "-pthread", "-o", filepath.Join(dir, "sockprobe"), "sockprobe.c"), nil},
		{"gosock", exec.Command("go", "build", "-o", filepath.Join(dir, "gosock"), "./gosock"), []string{"CGO_ENABLED=0"}},
		{"gosock386", exec.Command("go", "build", "-o", filepath.Join(dir, "gosock386"), "./gosock"), []string{"CGO_ENABLED=0", "GOARCH=386"}},
	}
	for _, s := range steps {
		s.cmd.Dir = src
		s.cmd.Env = append(os.Environ(), s.env...)
		if out, err := s.cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v: %s", s.name, err, out)
		}
	}
	return nil
}

// copyTools copies the prebuilt programs into dir, which every user may
// read (the directory they were built in need not be).
func copyTools(from, dir string) error {
	for _, name := range toolNames {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			return fmt.Errorf("prebuilt %s (%s): %w", name, PrebuiltEnv, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// Command returns the path of a program a test needs. Without it the test
// is skipped, or fails under CI=true, where scripts/deps.sh has run.
func Command(tb lab.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("needs %s (scripts/deps.sh installs it)", name)
		}
		tb.Skip("needs " + name + " (scripts/deps.sh installs it)")
	}
	return p
}
