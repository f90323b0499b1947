package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAccelFor(t *testing.T) {
	intel := "processor\t: 0\nflags\t\t: fpu vme de pse vmx sse\n"
	amd := "processor\t: 0\nflags\t\t: fpu svm sse\n"
	none := "processor\t: 0\nflags\t\t: fpu sse hypervisor\n"
	tests := []struct {
		cpuinfo string
		kvm     bool
		want    string
	}{
		{intel, true, "kvm"},
		{amd, true, "kvm"},
		{intel, false, "tcg"},
		// A /dev/kvm without hardware virtualisation (a paravirtual backend)
		// hangs or fails: software emulation instead.
		{none, true, "tcg"},
		{"model name\t: vmx-like cpu\nflags\t: fpu\n", true, "tcg"},
	}
	for _, tt := range tests {
		got := accelFor(tt.cpuinfo, tt.kvm)
		if got.Name != tt.want {
			t.Errorf("accelFor(%q, %v) = %s, want %s", tt.cpuinfo, tt.kvm, got.Name, tt.want)
		}
		if tt.want == "tcg" && !slices.Contains(got.Args, "tcg,thread=multi") {
			t.Errorf("TCG args %v lack multi-threaded translation", got.Args)
		}
	}
}

func TestCacheBuildsOnceAndKeepsFailuresOut(t *testing.T) {
	c := Cache{Dir: t.TempDir()}
	builds := 0
	build := func(dir string) error {
		builds++
		return os.WriteFile(filepath.Join(dir, "artifact"), []byte("x"), 0o644)
	}
	for range 2 {
		dir, err := c.Get("kernel", "a/b c", build)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "artifact")); err != nil {
			t.Fatal(err)
		}
	}
	if builds != 1 {
		t.Errorf("built %d times, want once", builds)
	}
	if _, err := c.Get("kernel", "broken", func(string) error { return errors.New("no network") }); err == nil {
		t.Fatal("a failed build returned no error")
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "kernel", "broken")); !os.IsNotExist(err) {
		t.Errorf("a failed build left its directory: %v", err)
	}
	// Only the newest few keys of a kind stay.
	for _, k := range []string{"k1", "k2", "k3", "k4"} {
		if _, err := c.Get("kernel", k, build); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(c.Dir, "kernel"))
	if len(entries) != keepPerKind {
		t.Errorf("%d artifacts of one kind kept, want %d", len(entries), keepPerKind)
	}
}

func TestDigestSeparatesParts(t *testing.T) {
	if Digest([]byte("ab"), []byte("c")) == Digest([]byte("a"), []byte("bc")) {
		t.Error("Digest(ab, c) == Digest(a, bc)")
	}
}

func TestMachineArgs(t *testing.T) {
	m := Machine{Kernel: "/k", Initrd: "/i", Append: "console=ttyS0", Disk: "/d,1.img", CPUs: 2, MemoryMiB: 4096,
		Accel:  Accel{Args: []string{"-accel", "tcg"}},
		Shares: []Share{{Tag: "root", Path: "/", ReadOnly: true}, {Tag: "out", Path: "/tmp/o"}}}
	args := m.args()
	for _, want := range []string{
		"-no-reboot", "4096M", "file=/d,,1.img,format=raw,if=virtio,snapshot=on",
		"local,path=/,mount_tag=root,security_model=none,multidevs=remap,readonly=on",
		"local,path=/tmp/o,mount_tag=out,security_model=none,multidevs=remap",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("qemu args %q lack %q", args, want)
		}
	}
}

// TestRunKillsTheGuestAndItsChildren stands in for qemu with a script that
// never powers off and starts a child: at the deadline both are gone.
func TestRunKillsTheGuestAndItsChildren(t *testing.T) {
	dir := t.TempDir()
	fake := "#!/bin/sh\nsleep 300 &\necho $! >" + filepath.Join(dir, "child") + "\nwait\n"
	if err := os.WriteFile(filepath.Join(dir, "qemu-system-x86_64"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	m := Machine{Kernel: "/k", CPUs: 1, MemoryMiB: 64, Console: io.Discard, Timeout: 500 * time.Millisecond}
	if err := m.Run(context.Background()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Run = %v, want ErrTimeout", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the guest's child %d still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive says whether pid runs (a zombie waiting for its reaper does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}
