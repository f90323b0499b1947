package netlinkmptcp

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"golang.org/x/sys/unix"
)

// Kernel tests: real netlink in fresh namespaces. They never run in
// parallel: the kernel's generic-netlink lock is host-wide.

// TestIntegrationPermission drops CAP_NET_ADMIN on one thread and checks the
// errors of a write command and of joining the event group.
func TestIntegrationPermission(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "perm")
	cfg := nsConfig(t, ns)
	errc := make(chan [2]error, 1)
	go func() {
		// The thread keeps its reduced capabilities and is never unlocked:
		// it exits with this goroutine.
		runtime.LockOSThread()
		if err := dropNetAdmin(); err != nil {
			errc <- [2]error{err, err}
			return
		}
		var errs [2]error
		if c, err := Dial(cfg); err != nil {
			errs[0] = err
		} else {
			_, errs[0] = c.AddEndpoint(Endpoint{Addr: netip.MustParseAddr("192.0.2.1")})
			c.Close()
		}
		if ev, err := ListenEvents(cfg); err != nil {
			errs[1] = err
		} else {
			ev.Close()
		}
		errc <- errs
	}()
	errs := <-errc
	if !errors.Is(errs[0], ErrPermission) {
		t.Errorf("AddEndpoint without CAP_NET_ADMIN: %v, want ErrPermission", errs[0])
	}
	if !errors.Is(errs[1], ErrPermission) || !strings.Contains(errs[1].Error(), "CAP_NET_ADMIN") {
		t.Errorf("ListenEvents without CAP_NET_ADMIN: %v, want ErrPermission naming CAP_NET_ADMIN", errs[1])
	}
}

// dropNetAdmin removes CAP_NET_ADMIN from the calling thread's effective set.
func dropNetAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

func TestIntegrationCheckEnabled(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "sysctl")
	check := func() error {
		var err error
		if doErr := ns.Do(func() error { err = CheckEnabled(); return nil }); doErr != nil {
			t.Fatal(doErr)
		}
		return err
	}
	if err := check(); err != nil {
		t.Errorf("CheckEnabled() in a new namespace: %v, want nil", err)
	}
	ns.Sysctl("net.mptcp.enabled", "0")
	if err := check(); !errors.Is(err, ErrDisabled) || !strings.Contains(err.Error(), "net.mptcp.enabled=1") {
		t.Errorf("CheckEnabled() with net.mptcp.enabled=0: %v, want ErrDisabled saying how to enable it", err)
	}
}

func TestIntegrationKernelFeatures(t *testing.T) {
	lab.Require(t)
	f, err := KernelFeatures()
	if err != nil {
		t.Fatal(err)
	}
	// Dial works on every kernel the features call eventful.
	ns := lab.New(t, "features")
	cfg := nsConfig(t, ns)
	dial(t, cfg)
	if f.Events {
		ev, err := ListenEvents(cfg)
		if err != nil {
			t.Fatalf("features say events, ListenEvents: %v", err)
		}
		ev.Close()
	}
}

// TestIntegrationProbeFeatures asks the kernel. On the kernels this project
// runs (Debian's 6.1 and 6.12, the host's) what is probed is what the
// version says; a difference is a backport or a broken probe, and either
// is worth a look.
func TestIntegrationProbeFeatures(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "probe")
	cfg := nsConfig(t, ns)
	got := probe(t, cfg)
	want := FeaturesFor(got.Major, got.Minor)
	if got != want {
		t.Errorf("probed features of Linux %d.%d:\n %+v\nwant, by version:\n %+v", got.Major, got.Minor, got, want)
	}
	n, err := mptcpInfoSize()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Linux %d.%d: struct mptcp_info is %d bytes; lacks %q", got.Major, got.Minor, n, got.Missing())
	// Probing took no endpoint and changed no limit.
	c := dial(t, cfg)
	if eps, err := c.Endpoints(); err != nil || len(eps) != 0 {
		t.Errorf("endpoints after probing: %v, %v; want none", eps, err)
	}
	if l, err := c.Limits(); err != nil || l != (Limits{Subflows: 2}) {
		t.Errorf("limits after probing: %v, %v; want the defaults", l, err)
	}
}

// TestIntegrationConcurrentUse shares one Client between goroutines: every
// reply must reach the goroutine that asked (run with -race).
func TestIntegrationConcurrentUse(t *testing.T) {
	lab.Require(t)
	ns := lab.New(t, "concurrent")
	c := dial(t, nsConfig(t, ns))
	want := addEndpoint(t, c, Endpoint{ID: 5, Addr: netip.MustParseAddr("192.0.2.5"), Flags: FlagSubflow})
	setLimits(t, c, 3, 4)

	errc := make(chan error, 8)
	for range 8 {
		go func() {
			for range 50 {
				if l, err := c.Limits(); err != nil || l != (Limits{Subflows: 3, AddAddrAccepted: 4}) {
					errc <- fmt.Errorf("Limits() = %v, %v", l, err)
					return
				}
				if e, err := c.Endpoint(5); err != nil || e != want {
					errc <- fmt.Errorf("Endpoint(5) = %v, %v", e, err)
					return
				}
				if eps, err := c.Endpoints(); err != nil || len(eps) != 1 || eps[0] != want {
					errc <- fmt.Errorf("Endpoints() = %v, %v", eps, err)
					return
				}
			}
			errc <- nil
		}()
	}
	for range 8 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}
