package nmdbus

import (
	"context"
	"errors"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/mptcpgd/mptcpgd/pkg/nmpolicy"
)

// Settle is how long Watch waits after a signal for the rest of its burst:
// one activation emits dozens (state changes, new IP configurations, their
// properties); it reads at the first and once after them all.
const Settle = 500 * time.Millisecond

// CallTimeout bounds one Read: NetworkManager answers at once unless it is
// stuck, and a stuck NetworkManager must not stall who waits for the read.
const CallTimeout = 5 * time.Second

// ErrClosed says the bus connection was lost.
var ErrClosed = errors.New("the D-Bus system bus connection closed")

// Watch calls onChange with what NetworkManager does now, then again after
// each read, until ctx is done or the bus connection is lost (ErrClosed).
// It reads after every signal NetworkManager emits (a device's StateChanged,
// PropertiesChanged of devices and IP configurations) and its name's owner,
// so it sees NetworkManager start and stop, and at once whenever refresh
// receives; it does not poll. A read that fails is tried again at the next
// signal; onError hears of it. Every read is reported, changed or not: its
// ReadAt says up to when NetworkManager's work is known.
func (r *Reader) Watch(ctx context.Context, refresh <-chan struct{}, onChange func(nmpolicy.Report), onError func(error)) error {
	if err := r.conn.AddMatchSignal(dbus.WithMatchSender(busName)); err != nil {
		return err
	}
	if err := r.conn.AddMatchSignal(dbus.WithMatchInterface("org.freedesktop.DBus"),
		dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, busName)); err != nil {
		return err
	}
	signals := make(chan *dbus.Signal, 64)
	r.conn.Signal(signals)
	defer r.conn.RemoveSignal(signals)

	read := func() {
		rctx, cancel := context.WithTimeout(ctx, CallTimeout)
		defer cancel()
		rep, err := r.Read(rctx)
		if err != nil {
			onError(err)
			return
		}
		onChange(rep)
	}
	read()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	settling := false
	for {
		select {
		case _, ok := <-signals:
			if !ok {
				return ErrClosed
			}
			if !settling {
				// The first signal of a burst is read at once too: a
				// device starting to activate is known before its
				// address comes.
				read()
			}
			settling = true
			settle.Reset(Settle)
		case <-settle.C:
			settling = false
			read()
		case <-refresh:
			read()
		case <-ctx.Done():
			return nil
		}
	}
}
