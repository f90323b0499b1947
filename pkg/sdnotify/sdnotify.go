// Package sdnotify tells systemd how the daemon is doing, with the sd_notify
// protocol of a Type=notify service: ready, reloading, stopping, a status
// line, and watchdog keep-alives.
package sdnotify

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Notifier sends state changes to the socket systemd names in NOTIFY_SOCKET.
// The zero value is ready to use. Without NOTIFY_SOCKET (not started by
// systemd, or not Type=notify) every method does nothing and returns nil.
type Notifier struct{}

// Enabled reports whether systemd listens for notifications, that is whether
// NOTIFY_SOCKET is set.
func (Notifier) Enabled() bool { return os.Getenv("NOTIFY_SOCKET") != "" }

// Ready reports that start-up or a reload has finished, with a status line
// (none when status is empty).
func (n Notifier) Ready(status string) error {
	if status == "" {
		return n.send(daemon.SdNotifyReady)
	}
	return n.send(daemon.SdNotifyReady + "\n" + statusLine(status))
}

// Status sets the one-line status systemctl status shows.
func (n Notifier) Status(status string) error { return n.send(statusLine(status)) }

// Reloading reports that the daemon has started to reload its configuration;
// Ready ends the reload. systemd wants the CLOCK_MONOTONIC time of the reload
// in the same message, to tell this reload from an earlier one.
func (n Notifier) Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("read CLOCK_MONOTONIC for %s: %w", daemon.SdNotifyReloading, err)
	}
	usec := ts.Sec*1_000_000 + ts.Nsec/1_000
	return n.send(daemon.SdNotifyReloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10))
}

// Stopping reports that the daemon has begun to shut down.
func (n Notifier) Stopping() error { return n.send(daemon.SdNotifyStopping) }

// Watchdog tells systemd's watchdog that the daemon is alive.
func (n Notifier) Watchdog() error { return n.send(daemon.SdNotifyWatchdog) }

// WatchdogInterval returns how often to call Watchdog: half of the unit's
// WatchdogSec, as systemd recommends. It returns false when the watchdog is
// off, meant for another process (WATCHDOG_PID), or its setting is malformed.
func (Notifier) WatchdogInterval() (time.Duration, bool) {
	timeout, err := daemon.SdWatchdogEnabled(false)
	if err != nil || timeout <= 0 {
		return 0, false
	}
	return timeout / 2, true
}

// send sends state as one datagram. NOTIFY_SOCKET stays set, so that every
// later notification reaches systemd too.
func (Notifier) send(state string) error {
	if _, err := daemon.SdNotify(false, state); err != nil {
		first, _, _ := strings.Cut(state, "\n")
		return fmt.Errorf("notify systemd %s: %w", first, err)
	}
	return nil
}

// statusLine keeps a status to one line: a newline would start another
// assignment in the message.
func statusLine(status string) string {
	return "STATUS=" + strings.ReplaceAll(status, "\n", " ")
}
