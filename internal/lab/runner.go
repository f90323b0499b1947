package lab

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Runner plays the part of `go test` for programs that drive the lab (the
// demo, the bench): it collects cleanups and runs them at the end, also
// after a failure or Ctrl-C, so nothing is left behind. Each piece of work
// runs in a Scope of its own, whose cleanups run when that work ends.
type Runner struct {
	name    string
	verbose bool
	mu      sync.Mutex
	scopes  []*Scope
	failed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	done    sync.Once
}

// fatal is the panic value of a failed piece of work.
type fatal string

// NewRunner returns a runner; name prefixes its messages, and verbose
// prints the lab's Logf lines to standard error.
func NewRunner(name string, verbose bool) *Runner {
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{name: name, verbose: verbose, ctx: ctx, cancel: cancel}
}

// scope opens a TB whose cleanups run on close, or at the runner's
// teardown if the program is interrupted first.
func (r *Runner) scope(name string) *Scope {
	s := &Scope{r: r, name: name}
	r.mu.Lock()
	r.scopes = append(r.scopes, s)
	r.mu.Unlock()
	return s
}

func (r *Runner) fail() {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
}

// Failed says whether anything failed so far.
func (r *Runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Teardown closes every scope still open, newest first, once.
func (r *Runner) Teardown() {
	r.done.Do(func() {
		r.cancel()
		r.mu.Lock()
		ss := r.scopes
		r.scopes = nil
		r.mu.Unlock()
		for i := len(ss) - 1; i >= 0; i-- {
			ss[i].close()
		}
	})
}

// HandleSignals tears down and exits on Ctrl-C or SIGTERM; run it in a
// goroutine of its own.
func (r *Runner) HandleSignals() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	<-ch
	fmt.Fprintf(os.Stderr, "\n%s: interrupted, tearing the lab down\n", r.name)
	r.Teardown()
	os.Exit(130)
}

// Run runs fn in a new scope and closes it afterwards. A fatal panic (the
// lab's Fatal) is returned as an error; any other panic is a bug and is
// re-raised after the teardown.
func (r *Runner) Run(name string, fn func(s *Scope)) (err error) {
	s := r.scope(name)
	defer func() {
		v := recover()
		s.close()
		if v == nil {
			return
		}
		if f, ok := v.(fatal); ok {
			r.fail()
			err = fmt.Errorf("%s: %s", name, string(f))
			return
		}
		r.Teardown()
		panic(v)
	}()
	fn(s)
	return nil
}

// Scope is a TB for one piece of work.
type Scope struct {
	r        *Runner
	name     string
	mu       sync.Mutex
	cleanups []func()
	once     sync.Once
}

var _ TB = (*Scope)(nil)

func (s *Scope) Helper() {}

func (s *Scope) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

func (s *Scope) Fatal(args ...any) { panic(fatal(fmt.Sprint(args...))) }

func (s *Scope) Fatalf(format string, args ...any) { panic(fatal(fmt.Sprintf(format, args...))) }

func (s *Scope) Errorf(format string, args ...any) {
	s.r.fail()
	fmt.Fprintf(os.Stderr, "%s: %s: "+format+"\n", append([]any{s.r.name, s.name}, args...)...)
}

// Logf prints progress to standard error when the runner is verbose, so
// that standard output carries only the program's own story.
func (s *Scope) Logf(format string, args ...any) {
	if s.r.verbose {
		fmt.Fprintf(os.Stderr, "%s: %s: "+format+"\n", append([]any{s.r.name, s.name}, args...)...)
	}
}

func (s *Scope) Skip(args ...any) { panic(fatal("cannot run: " + fmt.Sprint(args...))) }

func (s *Scope) Failed() bool { return s.r.Failed() }

func (s *Scope) TempDir() string {
	dir, err := os.MkdirTemp("", "mptcpgd-"+s.r.name+"-")
	if err != nil {
		s.Fatal(err)
	}
	s.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Name is the scope's name, its parents' included ("reaction/mptcpd").
func (s *Scope) Name() string { return s.name }

// Context is done when the program is interrupted.
func (s *Scope) Context() context.Context { return s.r.ctx }

// close runs the scope's cleanups, newest first, once.
func (s *Scope) close() {
	s.once.Do(func() {
		s.mu.Lock()
		cs := s.cleanups
		s.cleanups = nil
		s.mu.Unlock()
		for i := len(cs) - 1; i >= 0; i-- {
			cs[i]()
		}
	})
}

// Sub runs fn with a child scope whose cleanups (a daemon, say) run when fn
// returns; the parent's (the lab) stay.
func (s *Scope) Sub(name string, fn func(c *Scope)) {
	c := s.r.scope(s.name + "/" + name)
	defer c.close()
	fn(c)
}
