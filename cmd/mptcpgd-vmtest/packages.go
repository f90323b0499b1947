package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// kernelTestImports are the packages through which a test reaches the
// kernel: a test package that imports one of them is a kernel test package.
var kernelTestImports = []string{
	"github.com/mptcpgd/mptcpgd/internal/lab",
	"github.com/mptcpgd/mptcpgd/internal/daemonlab",
}

// guestTag is the build tag of tests that run only in the systemd guest.
const guestTag = "guest"

// testPackage is a package whose test binary runs in a guest.
type testPackage struct {
	ImportPath string
	// Rel is the package's directory relative to the module's root.
	Rel string
}

// Name names the package's binary and log: its directory with dashes
// ("pkg-netlinkmptcp").
func (p testPackage) Name() string {
	if p.Rel == "." {
		return "root"
	}
	return strings.ReplaceAll(p.Rel, "/", "-")
}

// listedPackage is what `go list -json` says of a package, the fields used.
type listedPackage struct {
	ImportPath     string
	Dir            string
	TestGoFiles    []string
	XTestGoFiles   []string
	TestImports    []string
	XTestImports   []string
	IgnoredGoFiles []string
}

// listPackages runs `go list -json ./...` in the module at root.
func listPackages(root string) ([]listedPackage, error) {
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list ./...: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("go list ./...: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// kernelTestPackages are the packages with tests that use the lab (or are
// the lab), in go list's order.
func kernelTestPackages(root string, listed []listedPackage) []testPackage {
	var out []testPackage
	for _, p := range listed {
		if len(p.TestGoFiles)+len(p.XTestGoFiles) == 0 {
			continue
		}
		uses := slices.Contains(kernelTestImports, p.ImportPath)
		for _, imp := range kernelTestImports {
			uses = uses || slices.Contains(p.TestImports, imp) || slices.Contains(p.XTestImports, imp)
		}
		if uses {
			out = append(out, testPackage{ImportPath: p.ImportPath, Rel: relDir(root, p.Dir)})
		}
	}
	return out
}

// guestTestPackages are the packages with test files built only with the
// guest tag (a `//go:build guest` line), which go list reports as ignored.
func guestTestPackages(root string, listed []listedPackage) ([]testPackage, error) {
	var out []testPackage
	for _, p := range listed {
		for _, f := range p.IgnoredGoFiles {
			if !strings.HasSuffix(f, "_test.go") {
				continue
			}
			tagged, err := hasBuildTag(filepath.Join(p.Dir, f), guestTag)
			if err != nil {
				return nil, err
			}
			if tagged {
				out = append(out, testPackage{ImportPath: p.ImportPath, Rel: relDir(root, p.Dir)})
				break
			}
		}
	}
	return out, nil
}

// hasBuildTag reports whether the file's //go:build line is exactly tag.
func hasBuildTag(path, tag string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if expr, ok := strings.CutPrefix(line, "//go:build "); ok {
			return strings.TrimSpace(expr) == tag, nil
		}
		if line != "" && !strings.HasPrefix(line, "//") {
			return false, nil
		}
	}
	return false, s.Err()
}

func relDir(root, dir string) string {
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return dir
	}
	return filepath.ToSlash(rel)
}

// selectPackages keeps the packages whose directory matches pat.
func selectPackages(pkgs []testPackage, pat *regexp.Regexp) []testPackage {
	var out []testPackage
	for _, p := range pkgs {
		if pat.MatchString(p.Rel) {
			out = append(out, p)
		}
	}
	return out
}

// buildTests compiles each package's test binary into dir as NAME.test,
// static (CGO_ENABLED=0), so that it runs on any guest.
func buildTests(root string, pkgs []testPackage, dir string, tags ...string) error {
	for _, p := range pkgs {
		args := []string{"test", "-c", "-o", filepath.Join(dir, p.Name()+".test")}
		if len(tags) > 0 {
			args = append(args, "-tags", strings.Join(tags, ","))
		}
		if err := goCommand(root, append(args, p.ImportPath)...); err != nil {
			return err
		}
	}
	return nil
}

// goCommand runs the go tool in root with CGO_ENABLED=0.
func goCommand(root string, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}
