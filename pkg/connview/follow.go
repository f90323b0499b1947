package connview

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/mptcpgd/mptcpgd/pkg/logging"
	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
	"github.com/mptcpgd/mptcpgd/pkg/sockdiag"
)

// EventSource delivers path-manager events; *netlinkmptcp.Events is one.
type EventSource interface {
	// Run reads events into h until ctx is done or reading fails.
	Run(ctx context.Context, h netlinkmptcp.EventHandler) error
}

// receiveRetryPause is how long Follow waits after reading failed before it
// reads again.
var receiveRetryPause = time.Second

// Follow keeps v in line with the events from src until ctx is done; the
// daemon runs it as a task of its own. It first reads the connections
// that already exist with rebuild (sockdiag.ListMPTCP in the namespace of
// src), then applies every event, logging each change at debug level.
//
// When events were lost, v is marked incomplete and read again with
// rebuild; success is logged once at info level. When rebuild fails, v stays
// incomplete (until events are lost again) and the failure is logged once
// at warning level until a rebuild succeeds. When reading fails, v is marked
// incomplete, Follow waits a moment and reads again, rebuilding v first.
func Follow(ctx context.Context, src EventSource, rebuild func() ([]sockdiag.Connection, error), v *View, log *logging.Logger) {
	f := follower{rebuild: rebuild, v: v, log: log}
	f.rebuildView("", logging.DebugLevel)
	// A connection opened from now on is not in that read: it comes in by
	// its events, its joins observed.
	v.markFollowing()
	go f.rechecks(ctx)
	failing, retries := false, 0
	for {
		if failing {
			// Only the first rebuild of a run of failures is news.
			level := logging.DebugLevel
			if retries++; retries == 1 {
				level = logging.InfoLevel
			}
			f.rebuildView("after failed receives", level)
		}
		f.delivered = false
		err := src.Run(ctx, &f)
		if ctx.Err() != nil {
			return
		}
		if f.delivered {
			// Reading worked for a while: this failure starts a new run.
			failing, retries = false, 0
		}
		v.MarkIncomplete(fmt.Sprintf("receiving MPTCP events failed (%v)", err))
		if failing {
			log.Debug("receiving MPTCP events failed again", logging.Error(err))
		} else {
			log.Warn("receiving MPTCP events failed; the connection view is incomplete until they are received again", logging.Error(err))
		}
		failing = true
		select {
		case <-ctx.Done():
			return
		case <-time.After(receiveRetryPause):
		}
	}
}

type follower struct {
	rebuild     func() ([]sockdiag.Connection, error)
	v           *View
	log         *logging.Logger
	warnedStale bool // the last rebuild failed and was logged
	delivered   bool // the current Run handed over events or a loss
}

// rebuildView reads v from the kernel and logs success at level. why is
// empty for the first read.
func (f *follower) rebuildView(why string, level zapcore.Level) {
	conns, err := f.rebuild()
	if err != nil {
		if !f.warnedStale {
			f.log.Warn("reading MPTCP connections from the kernel failed; the connection view stays incomplete",
				logging.String("reason", f.v.Snapshot().IncompleteReason), logging.Error(err))
			f.warnedStale = true
		}
		return
	}
	f.warnedStale = false
	f.v.Rebuild(conns)
	if why == "" {
		f.log.Debug("read the MPTCP connections from the kernel", logging.Int("connections", len(conns)))
		return
	}
	f.log.Log(level, "rebuilt the MPTCP connection view "+why, logging.Int("connections", len(conns)))
}

// rechecks serves Recheck until ctx is done: the kernel is listed beside
// the event loop, and only what the view had before the listing began is
// dropped (Prune).
func (f *follower) rechecks(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.v.recheck:
		}
		seq := f.v.Seq()
		conns, err := f.rebuild()
		if err != nil {
			f.log.Debug("checking the connection view against the kernel failed", logging.Error(err))
			continue
		}
		if n := f.v.Prune(conns, seq); n > 0 {
			f.log.Info("dropped from the connection view what the kernel closed without an event", logging.Int("dropped", n))
		}
	}
}

// Events applies a batch of events (netlinkmptcp.EventHandler).
func (f *follower) Events(evs []netlinkmptcp.Event) {
	f.delivered = true
	for i := range evs {
		f.apply(&evs[i])
	}
}

// Lost marks the view incomplete and reads it again from the kernel.
func (f *follower) Lost(err error) {
	f.delivered = true
	f.v.MarkIncomplete(fmt.Sprintf("MPTCP events were lost (%v)", err))
	f.rebuildView("after lost events", logging.InfoLevel)
}

// apply applies one event and logs the change.
func (f *follower) apply(ev *netlinkmptcp.Event) {
	debug := f.log.Core().Enabled(logging.DebugLevel)
	change, changed := f.v.apply(ev, debug)
	if !debug {
		return
	}
	if ce := f.log.Check(logging.DebugLevel, change); ce != nil {
		ce.Write(eventFields(*ev, changed)...)
	}
}

// eventFields are the log fields of an event: the token as hex, the local
// address (logging.FieldAddr), the endpoint id of a subflow's local address,
// and the device it is bound to.
func eventFields(ev netlinkmptcp.Event, changed bool) []logging.Field {
	fields := []logging.Field{logging.Stringer("event", ev.Type), logging.Bool("changed", changed)}
	if ev.Token != 0 {
		fields = append(fields, logging.String("token", fmt.Sprintf("%08x", ev.Token)))
	}
	if local := unmap(ev.Local); local.Addr().IsValid() {
		fields = append(fields, logging.Stringer(logging.FieldAddr, local.Addr()))
	}
	if remote := unmap(ev.Remote); remote.Addr().IsValid() {
		fields = append(fields, logging.Stringer("remote", remote))
	}
	switch ev.Type {
	case netlinkmptcp.EventSubEstablished, netlinkmptcp.EventSubClosed, netlinkmptcp.EventSubPriority:
		fields = append(fields, logging.Uint8(logging.FieldEndpointID, ev.LocalID))
	}
	if ev.IfIndex != 0 {
		fields = append(fields, logging.Int32(logging.FieldIfindex, ev.IfIndex))
	}
	return fields
}
