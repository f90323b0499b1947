package main

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/mptcpgd/mptcpgd/internal/vm"
)

// The systemd guest's view (scripts/vm/rootfs-customize.sh).
const (
	guestRepo = "/mnt/repo"
	guestWork = "/mnt/work"
	guestOut  = "/mnt/out"
	// systemdSeries is the kernel of the systemd guest: Debian 12's own.
	systemdSeries = "6.1"
	// guestTestPattern selects the guest tests of a test binary built with
	// the guest tag, which also holds the package's ordinary tests.
	guestTestPattern = "^TestGuest"
)

// runSystemd boots the Debian 12 guest with systemd as PID 1 and runs the
// guest tests (files tagged guest, tests named TestGuest*) of every package
// that has some.
func runSystemd(ctx context.Context, o opts) (guestResults, error) {
	listed, err := listPackages(o.root)
	if err != nil {
		return guestResults{}, err
	}
	pkgs, err := guestTestPackages(o.root, listed)
	if err != nil {
		return guestResults{}, err
	}
	pkgs = selectPackages(pkgs, o.packages)
	if len(pkgs) == 0 {
		return guestResults{}, fmt.Errorf("no guest tests (//go:build %s) found under %s", guestTag, o.root)
	}
	if _, err := os.Stat(filepath.Join(o.root, "bin", "mptcpgd")); err != nil {
		return guestResults{}, fmt.Errorf("the guest installs bin/mptcpgd with make install: run make build first: %w", err)
	}
	image, err := systemdImage(o)
	if err != nil {
		return guestResults{}, err
	}

	dir, err := os.MkdirTemp("", "mptcpgd-vmtest-")
	if err != nil {
		return guestResults{}, err
	}
	defer os.RemoveAll(dir)
	work, out := filepath.Join(dir, "work"), filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return guestResults{}, err
	}
	o.progress("building %d guest test binaries (-tags %s, CGO_ENABLED=0)", len(pkgs), guestTag)
	if err := buildTests(o.root, pkgs, filepath.Join(work, "bin"), guestTag); err != nil {
		return guestResults{}, err
	}
	run := guestRun{
		Out: guestOut,
		Env: append([]string{"CI=true", "MPTCPGD_REPO=" + guestRepo}, o.env...),
	}
	runPattern := guestTestPattern
	if o.run != "" {
		runPattern = o.run
	}
	for _, p := range pkgs {
		run.Jobs = append(run.Jobs, guestJob{
			Name:  p.Name(),
			Label: p.Rel,
			Dir:   path.Join(guestRepo, p.Rel),
			Argv: append([]string{path.Join(guestWork, "bin", p.Name()+".test"),
				"-test.v", "-test.timeout=" + o.testTimeout.String(),
				"-test.run=" + runPattern}, o.testArgs...),
		})
	}
	m := vm.Machine{
		Kernel: filepath.Join(image, "vmlinuz"),
		Initrd: filepath.Join(image, "initrd.img"),
		Disk:   filepath.Join(image, "rootfs.img"),
		Append: "root=/dev/vda console=ttyS0 panic=-1 quiet",
		Shares: []vm.Share{
			{Tag: "repo", Path: o.root, ReadOnly: true},
			{Tag: "work", Path: work, ReadOnly: true},
			{Tag: "out", Path: out},
		},
	}
	return o.boot(ctx, "systemd (Debian 12)", m, run, work, out)
}

// systemdImage builds (cached) the Debian 12 image with Debian's 6.1
// kernel and the packages of scripts/vm/guest-packages.
func systemdImage(o opts) (string, error) {
	pkg, err := resolveKernel(systemdSeries)
	if err != nil {
		return "", err
	}
	digest, err := recipeDigest(o.root, "rootfs.sh", "rootfs-customize.sh", "guest-packages")
	if err != nil {
		return "", err
	}
	return o.cache.Get("rootfs", "bookworm_"+pkg.Name+"_"+pkg.Version+"_"+digest, func(dir string) error {
		o.progress("building the Debian 12 image with mmdebstrap (a few minutes; cached in %s)", o.cache.Dir)
		return runScript(o.root, "rootfs.sh", pkg.Name, dir)
	})
}
