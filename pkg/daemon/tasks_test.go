package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/logging"
)

func TestRunTasksEndsAllWhenOneFails(t *testing.T) {
	stopped := make(chan string, 3)
	wait := func(name string) task {
		return task{name, func(ctx context.Context) error {
			<-ctx.Done()
			stopped <- name
			return nil
		}}
	}
	err := runTasks(context.Background(), logging.Nop(),
		wait("control socket"),
		task{"path manager", func(context.Context) error { return errors.New("read links: permission denied") }},
		wait("notifier"),
	)
	if err == nil || !strings.Contains(err.Error(), "path manager: read links: permission denied") {
		t.Errorf("err = %v, want the failed task named with its cause", err)
	}
	if len(stopped) != 2 {
		t.Errorf("%d other tasks stopped, want both", len(stopped))
	}
}

func TestRunTasksAnUnexpectedReturnIsAFailure(t *testing.T) {
	err := runTasks(context.Background(), logging.Nop(),
		task{"connection view", func(context.Context) error { return nil }},
		task{"notifier", func(ctx context.Context) error { <-ctx.Done(); return nil }},
	)
	if err == nil || !strings.Contains(err.Error(), "connection view: stopped unexpectedly") {
		t.Errorf("err = %v, want the task that returned named", err)
	}
}

func TestRunTasksStopIsNoFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := runTasks(ctx, logging.Nop(),
		task{"path manager", func(ctx context.Context) error { <-ctx.Done(); return errors.New("save state: disk full") }},
		task{"notifier", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
	)
	if err != nil {
		t.Errorf("err = %v: what tasks return while stopping is logged, not returned", err)
	}
}
