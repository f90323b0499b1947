package pm

import (
	"net/netip"

	"github.com/mptcpgd/mptcpgd/pkg/logging"
)

// WarningKind says what a warning is about.
type WarningKind string

// Warning kinds.
const (
	// WarnNoGateway: a broadcast interface has no gateway for a family, so
	// its table gets no default route (set gateway4/gateway6).
	WarnNoGateway WarningKind = "no-gateway"
	// WarnARPSettings: NICs share a subnet without the ARP sysctls that
	// keep each one answering for its own address.
	WarnARPSettings WarningKind = "arp-settings"
	// WarnRouteConflict: a route we want would replace one that is not
	// ours, so it is not written.
	WarnRouteConflict WarningKind = "route-conflict"
	// WarnNoRecord: show could not read the ownership record.
	WarnNoRecord WarningKind = "no-ownership-record"
)

// Warning is a condition an administrator should fix.
type Warning struct {
	Kind WarningKind `json:"kind"`
	// Iface and Addr are what the warning is about, where it is about one
	// interface or address.
	Iface   string     `json:"iface,omitempty"`
	Addr    netip.Addr `json:"addr,omitzero"`
	Message string     `json:"message"`
}

func (w Warning) String() string { return w.Message }

// warningLog logs each warning once while it lasts, and again if it comes
// back after it went away.
type warningLog struct {
	log    *logging.Logger
	active map[Warning]bool
}

func (l *warningLog) update(ws []Warning) {
	now := make(map[Warning]bool, len(ws))
	for _, w := range ws {
		now[w] = true
		if l.active[w] {
			continue
		}
		f := []logging.Field{logging.String("kind", string(w.Kind))}
		if w.Iface != "" {
			f = append(f, logging.String(logging.FieldIface, w.Iface))
		}
		if w.Addr.IsValid() {
			f = append(f, logging.Stringer(logging.FieldAddr, w.Addr))
		}
		l.log.Warn(w.Message, f...)
	}
	l.active = now
}
