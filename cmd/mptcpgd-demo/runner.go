package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// runner plays the part of a test for the lab (lab.TB): it collects
// cleanups and runs them at the end, also after a failure or Ctrl-C, so the
// demo never leaves namespaces or processes behind.
type runner struct {
	mu       sync.Mutex
	cleanups []func()
	failed   bool
	done     sync.Once
	cancel   context.CancelFunc
	context  context.Context
}

// fatal is the panic value that stops the demo.
type fatal string

func newRunner() *runner {
	ctx, cancel := context.WithCancel(context.Background())
	return &runner{context: ctx, cancel: cancel}
}

func (r *runner) ctx() context.Context { return r.context }

func (r *runner) Helper() {}

func (r *runner) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *runner) Fatal(args ...any) { panic(fatal(fmt.Sprint(args...))) }

func (r *runner) Fatalf(format string, args ...any) { panic(fatal(fmt.Sprintf(format, args...))) }

func (r *runner) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...)
}

// Logf is quiet: the demo prints its own story.
func (r *runner) Logf(string, ...any) {}

func (r *runner) Skip(args ...any) { panic(fatal("cannot run the demo: " + fmt.Sprint(args...))) }

func (r *runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *runner) TempDir() string {
	dir, err := os.MkdirTemp("", "mptcpgd-demo-")
	if err != nil {
		r.Fatal(err)
	}
	r.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// recover turns a fatal panic into an exit code; other panics are bugs and
// are re-raised after the teardown.
func (r *runner) recover(code *int) {
	v := recover()
	if v == nil {
		if r.Failed() {
			*code = 1
		}
		return
	}
	if f, ok := v.(fatal); ok {
		fmt.Fprintf(os.Stderr, "demo: %s\n", f)
		*code = 1
		return
	}
	r.teardown()
	panic(v)
}

// teardown runs the cleanups, newest first, once.
func (r *runner) teardown() {
	r.done.Do(func() {
		r.cancel()
		r.mu.Lock()
		cs := r.cleanups
		r.cleanups = nil
		r.mu.Unlock()
		for i := len(cs) - 1; i >= 0; i-- {
			cs[i]()
		}
	})
}

// onSignal tears down and exits on Ctrl-C or SIGTERM.
func (r *runner) onSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	<-ch
	fmt.Fprintln(os.Stderr, "\ndemo: interrupted, tearing the lab down")
	r.teardown()
	os.Exit(130)
}
