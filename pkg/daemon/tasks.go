package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/mptcpgd/mptcpgd/pkg/logging"
)

// task is one long-running part of the daemon: the path manager, the
// connection view's follower, the control socket, systemd's notifier, the
// reloader.
type task struct {
	name string
	// run works until ctx is done. An error, or a return while the daemon
	// still runs, ends the daemon.
	run func(ctx context.Context) error
}

// runTasks runs the tasks until ctx is done or one of them stops: the
// first to stop early ends the others, and its error is returned so that
// systemd restarts the daemon. What the tasks return while stopping is
// logged, not returned.
func runTasks(ctx context.Context, log *logging.Logger, tasks ...task) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, t := range tasks {
		wg.Go(func() {
			err := t.run(ctx)
			if ctx.Err() != nil {
				if err != nil && !errors.Is(err, context.Canceled) {
					log.Error(t.name+" failed while stopping", logging.Error(err))
				}
				return
			}
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			once.Do(func() {
				first = fmt.Errorf("%s: %w", t.name, err)
				log.Error("a part of the daemon failed; stopping", logging.String("task", t.name), logging.Error(err))
			})
			cancel()
		})
	}
	wg.Wait()
	return first
}
