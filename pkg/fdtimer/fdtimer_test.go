package fdtimer

import (
	"testing"
	"time"
)

// Waits are bounded generously; nothing here asserts speed.
const patience = 5 * time.Second

func newTimer(t *testing.T, d time.Duration) *Timer {
	t.Helper()
	tm, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tm.Close)
	return tm
}

func TestFires(t *testing.T) {
	tm := newTimer(t, time.Millisecond)
	select {
	case <-tm.C():
	case <-time.After(patience):
		t.Fatal("the timer did not fire")
	}
	// Once: it does not fire again until reset.
	select {
	case <-tm.C():
		t.Fatal("the timer fired twice")
	case <-time.After(50 * time.Millisecond):
	}
	tm.Reset(time.Millisecond)
	select {
	case <-tm.C():
	case <-time.After(patience):
		t.Fatal("the timer did not fire after Reset")
	}
}

// A value that fired before Reset or Stop is not received after it.
func TestNoStaleValue(t *testing.T) {
	tm := newTimer(t, time.Millisecond)
	deadline := time.Now().Add(patience)
	for len(tm.c) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the timer did not fire")
		}
		time.Sleep(time.Millisecond)
	}
	tm.Reset(time.Hour)
	select {
	case <-tm.C():
		t.Fatal("a value from before Reset was received")
	case <-time.After(50 * time.Millisecond):
	}
	tm.Reset(time.Millisecond)
	tm.Stop()
	select {
	case <-tm.C():
		t.Fatal("a stopped timer fired")
	case <-time.After(50 * time.Millisecond):
	}
}

func TestNotSetUntilReset(t *testing.T) {
	tm := newTimer(t, 0)
	select {
	case <-tm.C():
		t.Fatal("a timer made with 0 fired")
	case <-time.After(50 * time.Millisecond):
	}
}

// Close ends the goroutine that reads the descriptor.
func TestClose(t *testing.T) {
	tm, err := New(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { tm.run(); close(done) }()
	tm.Close()
	select {
	case <-done:
	case <-time.After(patience):
		t.Fatal("reading went on after Close")
	}
	tm.Reset(time.Millisecond) // no panic on a closed timer
}
