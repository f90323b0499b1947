package lab

import (
	"os"
	"strings"
	"testing"
)

func TestNamespaceLifecycle(t *testing.T) {
	Require(t)
	var name string
	t.Run("inner", func(t *testing.T) {
		a := New(t, "a")
		b := New(t, "b")
		name = a.Name
		Veth(a, "va", b, "vb")
		a.IP("addr", "add", "192.0.2.1/24", "dev", "va")
		b.IP("addr", "add", "192.0.2.2/24", "dev", "vb")
		if out := a.MustExec("ping", "-c1", "-W2", "192.0.2.2"); !strings.Contains(out, "1 received") {
			t.Fatalf("ping across veth failed: %s", out)
		}
		var inside string
		if err := a.Do(func() error {
			b, err := os.ReadFile("/proc/thread-self/net/dev")
			inside = string(b)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(inside, "va:") {
			t.Fatalf("Do did not run inside %s: /proc/thread-self/net/dev has no va:\n%s", a.Name, inside)
		}
	})
	if _, err := os.Stat(netnsDir + "/" + name); !os.IsNotExist(err) {
		t.Fatalf("namespace %s still exists after its test ended (stat: %v)", name, err)
	}
}

func TestDoRecoversPanic(t *testing.T) {
	n := New(t, "p")
	err := n.Do(func() error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Do() = %v, want the panic as an error", err)
	}
}

// TestDoLeavesNoThreadInside checks that threads come back from the
// namespace even when fn panics: a thread left inside could be the main
// thread, which would put the whole test process "inside" the namespace.
func TestDoLeavesNoThreadInside(t *testing.T) {
	n := New(t, "p")
	home, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		_ = n.Do(func() error { panic("boom") })
		_ = n.Do(func() error { return nil })
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		ns, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
		if err == nil && ns != home {
			t.Errorf("thread %s is in %s after Do returned, want %s", task.Name(), ns, home)
		}
	}
}
