package pm

import (
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/fdtimer"
)

// Clock is the engine's time. The daemon uses the real one; tests use a
// fake one and drive hold-downs, gateway waits and backoffs without
// sleeping.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now.
	NewTimer(d time.Duration) Timer
}

// Timer fires once on C after it was (re)set. As with Go's own timers since
// 1.23, no value from before a Reset or Stop is received after it. Close
// releases it for good.
type Timer interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
	Close()
}

// RealClock is the system's clock.
type RealClock struct{}

// Now returns the current time.
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer returns a timer on a timerfd (package fdtimer says why), or a
// time.Timer if the kernel will not make one.
func (RealClock) NewTimer(d time.Duration) Timer {
	t, err := fdtimer.New(d)
	if err != nil {
		return realTimer{time.NewTimer(d)}
	}
	return t
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time   { return t.t.C }
func (t realTimer) Reset(d time.Duration) { t.t.Reset(d) }
func (t realTimer) Stop()                 { t.t.Stop() }
func (t realTimer) Close()                { t.t.Stop() }
