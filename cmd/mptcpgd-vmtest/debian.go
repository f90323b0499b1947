package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mptcpgd/mptcpgd/internal/vm"
)

// kernelPackage is a Debian kernel image package.
type kernelPackage struct {
	// Series is what was asked for: "6.1", "6.12".
	Series string
	// Name is the package, e.g. linux-image-6.1.0-57-amd64-unsigned.
	Name string
	// Version is its Debian version, e.g. 6.1.192-3.
	Version string
}

// kernelPackagePattern matches the generic amd64 image packages of a
// series ("6.1.0-57", "6.12.113+deb12"), not the cloud or rt flavours.
func kernelPackagePattern(series string) *regexp.Regexp {
	return regexp.MustCompile(`^linux-image-` + regexp.QuoteMeta(series) + `\.[0-9]+(-[0-9]+)?(\+deb[0-9]+)?-amd64-unsigned$`)
}

var aptUpdate sync.Once

// resolveKernel finds the newest generic amd64 kernel package of series
// that apt knows, running apt-get update once if it knows none.
func resolveKernel(series string) (kernelPackage, error) {
	pat := kernelPackagePattern(series)
	for attempt := 0; ; attempt++ {
		out, err := exec.Command("apt-cache", "search", "--names-only", pat.String()).Output()
		if err != nil {
			return kernelPackage{}, fmt.Errorf("apt-cache search %s: %w", pat, err)
		}
		if name := newestPackage(string(out), pat); name != "" {
			version, err := candidateVersion(name)
			if err != nil {
				return kernelPackage{}, err
			}
			return kernelPackage{Series: series, Name: name, Version: version}, nil
		}
		if attempt > 0 {
			return kernelPackage{}, fmt.Errorf("apt knows no kernel package for Linux %s (%s)", series, pat)
		}
		aptUpdate.Do(func() { _ = exec.Command("apt-get", "update", "-qq").Run() })
	}
}

// newestPackage picks, from apt-cache search output, the matching package
// with the highest version in its name.
func newestPackage(search string, pat *regexp.Regexp) string {
	var names []string
	for line := range strings.Lines(search) {
		name, _, _ := strings.Cut(line, " - ")
		if name = strings.TrimSpace(name); pat.MatchString(name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return slices.MaxFunc(names, compareNatural)
}

// compareNatural compares strings with their runs of digits as numbers:
// 6.1.0-9 before 6.1.0-57.
func compareNatural(a, b string) int {
	for a != "" && b != "" {
		da, db := leadingDigits(a), leadingDigits(b)
		if da != "" && db != "" {
			na, _ := strconv.Atoi(da)
			nb, _ := strconv.Atoi(db)
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			if a[0] < b[0] {
				return -1
			}
			return 1
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// candidateVersion is the version apt would download of name.
func candidateVersion(name string) (string, error) {
	out, err := exec.Command("apt-cache", "show", "--no-all-versions", name).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache show %s: %w", name, err)
	}
	s := bufio.NewScanner(bytes.NewReader(out))
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Version: "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("apt-cache show %s: no Version", name)
}

// scripts is the directory of the shell recipes the guests are built with.
func scripts(root string) string { return filepath.Join(root, "scripts", "vm") }

// recipeDigest digests the named files of the scripts directory, for keys.
func recipeDigest(root string, files ...string) (string, error) {
	var parts [][]byte
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(scripts(root), f))
		if err != nil {
			return "", err
		}
		parts = append(parts, []byte(f), b)
	}
	return vm.Digest(parts...), nil
}

// runScript runs a recipe of the scripts directory, its output going to
// standard error (it is the build's progress).
func runScript(root, name string, args ...string) error {
	cmd := exec.Command(filepath.Join(scripts(root), name), args...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// unpackedKernel is a kernel package unpacked in the cache: Root holds its
// boot/ and lib/modules/RELEASE/ (with depmod's files).
type unpackedKernel struct {
	kernelPackage
	Root    string
	Release string
	Image   string
}

// unpackKernel downloads and unpacks pkg (never installing it), cached.
func unpackKernel(root string, cache vm.Cache, pkg kernelPackage) (unpackedKernel, error) {
	digest, err := recipeDigest(root, "kernel.sh")
	if err != nil {
		return unpackedKernel{}, err
	}
	dir, err := cache.Get("kernel", pkg.Name+"_"+pkg.Version+"_"+digest, func(dir string) error {
		return runScript(root, "kernel.sh", pkg.Name, dir)
	})
	if err != nil {
		return unpackedKernel{}, err
	}
	k := unpackedKernel{kernelPackage: pkg, Root: filepath.Join(dir, "root")}
	releases, err := os.ReadDir(filepath.Join(k.Root, "lib", "modules"))
	if err != nil || len(releases) != 1 {
		return unpackedKernel{}, fmt.Errorf("%s: want one release under lib/modules: %v", dir, err)
	}
	k.Release = releases[0].Name()
	k.Image = filepath.Join(k.Root, "boot", "vmlinuz-"+k.Release)
	return k, nil
}
