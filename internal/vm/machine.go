package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Share is a host directory the guest mounts over 9p by its tag.
type Share struct {
	Tag      string
	Path     string
	ReadOnly bool
}

// Machine is a guest to boot.
type Machine struct {
	// Kernel, Initrd and Append are the kernel image, its initramfs and
	// its command line.
	Kernel, Initrd, Append string
	// Disk, if set, is a raw image attached as /dev/vda and opened
	// copy-on-write: the guest's writes are discarded when it stops, so
	// every boot starts from the same image.
	Disk string
	// Shares are mounted by the guest; their inode numbers are remapped
	// so that a share spanning several host file systems (the host's
	// root) keeps them apart.
	Shares []Share
	// CPUs and MemoryMiB size the guest.
	CPUs, MemoryMiB int
	// Accel is how qemu runs it.
	Accel Accel
	// Console receives the guest's serial console.
	Console io.Writer
	// Timeout bounds the whole run, boot to power-off.
	Timeout time.Duration
}

// args are qemu's arguments for m.
func (m Machine) args() []string {
	a := []string{
		"-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none",
		"-serial", "stdio",
		"-smp", fmt.Sprint(m.CPUs), "-m", fmt.Sprintf("%dM", m.MemoryMiB),
		"-kernel", m.Kernel, "-append", m.Append,
	}
	a = append(a, m.Accel.Args...)
	if m.Initrd != "" {
		a = append(a, "-initrd", m.Initrd)
	}
	if m.Disk != "" {
		a = append(a, "-drive", "file="+qemuEscape(m.Disk)+",format=raw,if=virtio,snapshot=on")
	}
	for _, s := range m.Shares {
		opt := "local,path=" + qemuEscape(s.Path) + ",mount_tag=" + s.Tag + ",security_model=none,multidevs=remap"
		if s.ReadOnly {
			opt += ",readonly=on"
		}
		a = append(a, "-virtfs", opt)
	}
	return a
}

// qemuEscape doubles commas, qemu's escape inside an option value.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// ErrTimeout is the error of a guest that was still running at its
// deadline; it was killed.
var ErrTimeout = errors.New("guest still running at its deadline")

// Run boots m and waits until the guest powers off. The guest is killed,
// with every process qemu started, when ctx ends, when m.Timeout passes
// (ErrTimeout), and when the calling process dies (a parent-death signal),
// so that no qemu outlives the run.
func (m Machine) Run(ctx context.Context) error {
	if m.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.Timeout)
		defer cancel()
	}
	cmd := exec.Command("qemu-system-x86_64", m.args()...)
	cmd.Stdout = m.Console
	cmd.Stderr = m.Console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the thread that started qemu
		// ends, so that thread stays locked to this goroutine, which lives
		// until qemu has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start qemu: %w", err)
	}
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("qemu: %w", err)
		}
		return nil
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%w (%s): killed", ErrTimeout, m.Timeout)
		}
		return fmt.Errorf("guest killed: %w", ctx.Err())
	}
}
