package main

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/mptcpgd/mptcpgd/internal/runlab"
	"github.com/mptcpgd/mptcpgd/internal/vm"
)

// The kernel guest's view (scripts/vm/init): the host's root is its root,
// the work share (run.sh, bin/) is mounted read-only on workMount, the out
// share (results) on outMount.
const (
	workMount = "/run/vmtest"
	outMount  = "/run/vmtest-out"
)

// kernelRun is one `kernels` run: the test binaries, built once, run on
// each kernel in turn.
type kernelRun struct {
	opts
	pkgs []testPackage
	// dir holds work/ (shared with the guests: run.sh, bin/) and an out
	// directory per kernel.
	dir, work string
}

// runKernels boots each kernel series in turn and runs the kernel test
// packages in it.
func runKernels(ctx context.Context, o opts, series []string) ([]guestResults, error) {
	listed, err := listPackages(o.root)
	if err != nil {
		return nil, err
	}
	r := kernelRun{opts: o, pkgs: selectPackages(kernelTestPackages(o.root, listed), o.packages)}
	if len(r.pkgs) == 0 {
		return nil, fmt.Errorf("no kernel test packages found under %s", o.root)
	}
	if r.dir, err = os.MkdirTemp("", "mptcpgd-vmtest-"); err != nil {
		return nil, err
	}
	defer os.RemoveAll(r.dir)
	r.work = filepath.Join(r.dir, "work")
	bin := filepath.Join(r.work, "bin")
	o.progress("building %d test binaries (CGO_ENABLED=0) and mptcpgd", len(r.pkgs))
	if err := buildTests(o.root, r.pkgs, bin); err != nil {
		return nil, err
	}
	if err := goCommand(o.root, "build", "-o", filepath.Join(bin, "mptcpgd"), "./cmd/mptcpgd"); err != nil {
		return nil, err
	}
	// The guests have no Go toolchain: the programs that `mptcpgd run`'s
	// tests wrap are built here.
	if err := os.Mkdir(filepath.Join(bin, "runlab"), 0o755); err != nil {
		return nil, err
	}
	if err := runlab.BuildTools(filepath.Join(bin, "runlab")); err != nil {
		return nil, err
	}

	var runs []guestResults
	for _, s := range series {
		if ctx.Err() != nil {
			break
		}
		g, err := r.kernel(ctx, s)
		if err != nil {
			g = guestResults{Guest: s, Err: err}
		}
		runs = append(runs, g)
	}
	return runs, ctx.Err()
}

// kernel runs every package on the newest Debian kernel of series.
func (r kernelRun) kernel(ctx context.Context, series string) (guestResults, error) {
	pkg, err := resolveKernel(series)
	if err != nil {
		return guestResults{}, err
	}
	r.progress("Linux %s: %s %s", series, pkg.Name, pkg.Version)
	k, err := unpackKernel(r.root, r.cache, pkg)
	if err != nil {
		return guestResults{}, err
	}
	initrd, err := r.initramfs(k)
	if err != nil {
		return guestResults{}, err
	}

	out := filepath.Join(r.dir, "out-"+k.Release)
	if err := os.Mkdir(out, 0o755); err != nil {
		return guestResults{}, err
	}
	run := guestRun{
		Out: outMount,
		Env: append([]string{"CI=true", "MPTCPGD_BIN=" + path.Join(workMount, "bin", "mptcpgd"),
			runlab.PrebuiltEnv + "=" + path.Join(workMount, "bin", "runlab")}, r.env...),
		Setup: keepNetfilterHooks,
	}
	for _, p := range r.pkgs {
		run.Jobs = append(run.Jobs, guestJob{
			Name:  p.Name(),
			Label: p.Rel,
			Dir:   filepath.Join(r.root, p.Rel),
			Argv: append([]string{path.Join(workMount, "bin", p.Name()+".test"),
				"-test.v", "-test.timeout=" + r.testTimeout.String()}, r.testArgs...),
		})
	}
	if err := os.WriteFile(filepath.Join(r.work, "repo"), []byte(r.root), 0o644); err != nil {
		return guestResults{}, err
	}
	m := vm.Machine{
		Kernel: k.Image,
		Initrd: initrd,
		Append: "console=ttyS0 panic=-1 quiet",
		Shares: []vm.Share{
			{Tag: "hostroot", Path: "/", ReadOnly: true},
			{Tag: "modules", Path: filepath.Join(k.Root, "lib", "modules"), ReadOnly: true},
			{Tag: "work", Path: r.work, ReadOnly: true},
			{Tag: "out", Path: out},
			{Tag: "repo", Path: r.root, ReadOnly: true},
		},
	}
	g, err := r.boot(ctx, k.Release, m, run, r.work, out)
	if err != nil || ctx.Err() != nil {
		return g, err
	}
	if why := g.secondBootReason(); why != "" {
		return r.bootAgain(ctx, k.Release, m, run, out, g, why)
	}
	return g, nil
}

// keepNetfilterHooks registers a base chain on every IPv4, IPv6 and
// ingress hook in the guest's own namespace, where no test runs, for the
// whole run. The kernel turns a hook on and off with a jump label, which it
// patches in place through an int3 while other CPUs run the code; under
// software emulation with a thread per CPU, a CPU forwarding a packet then
// sometimes traps on that int3 after the patching is over, and the kernel
// panics ("Oops: int3" in ip_forward, Debian's 6.12: both boots of a test
// that added and deleted a forward chain during a ping flood, within 80 s).
// With a chain of its own on each hook, the tests' tables (the rejoin tests'
// middlebox, rtnl's deaf ingress) never turn a hook on or off.
const keepNetfilterHooks = `nft -f - <<'EOF' || echo "vmtest: netfilter's hooks are not kept on: a test that adds or deletes a chain may crash this kernel under emulation"
table inet vmtest_keep_hooks {
	chain prerouting { type filter hook prerouting priority 0; }
	chain input { type filter hook input priority 0; }
	chain forward { type filter hook forward priority 0; }
	chain output { type filter hook output priority 0; }
	chain postrouting { type filter hook postrouting priority 0; }
}
table netdev vmtest_keep_hooks {
	chain ingress { type filter hook ingress device lo priority 0; }
}
EOF
`

// bootAgain boots the guest once more for the packages that the first boot
// left without a result: a guest that stopped early never got to its tests,
// and Debian's 6.12 under software emulation panicked in its own allocator
// in an interrupt, once in many runs, in whichever package ran at the time.
// The table says why and keeps the first console, so the second boot hides
// nothing.
func (r kernelRun) bootAgain(ctx context.Context, release string, m vm.Machine, run guestRun, out string, first guestResults, why string) (guestResults, error) {
	logs := r.logDir(release)
	kept := filepath.Join(logs, "console-first-boot.log")
	if err := os.Rename(filepath.Join(logs, "console.log"), kept); err != nil {
		return first, err
	}
	r.progress("Linux %s: %s; booting it once more for the %d packages without a result", release, why, first.withoutResult())
	for _, line := range first.ConsoleTail {
		r.progress("  | %s", line)
	}
	second, err := r.boot(ctx, release, m, run.only(first.Results), r.work, out)
	if err != nil {
		return first, err
	}
	return first.retried(second, why, kept), nil
}

// initramfs builds (cached) the kernel guest's initramfs for k.
func (r kernelRun) initramfs(k unpackedKernel) (string, error) {
	digest, err := recipeDigest(r.root, "initramfs.sh", "init")
	if err != nil {
		return "", err
	}
	dir, err := r.cache.Get("initramfs", k.Name+"_"+k.Version+"_"+digest, func(dir string) error {
		return runScript(r.root, "initramfs.sh", k.Root, filepath.Join(dir, "initrd.gz"))
	})
	return filepath.Join(dir, "initrd.gz"), err
}
