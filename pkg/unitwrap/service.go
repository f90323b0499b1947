package unitwrap

import (
	"strings"
)

// service is what a unit's [Service] sections, applied in order, say about
// running its program under mptcpgd run.
type service struct {
	execStart []string
	// typ, notifyAccess, killMode, killSignal, restartKillSignal,
	// sendSIGHUP and pidFile are the last values assigned, "" for none.
	typ, notifyAccess, killMode, killSignal, restartKillSignal, sendSIGHUP, pidFile string
	// syscallFilter: a SystemCallFilter= is in effect.
	syscallFilter bool
	families      familyFilter
}

// apply adds one file's assignments.
func (s *service) apply(as []assignment) {
	last := map[string]*string{
		"Type": &s.typ, "NotifyAccess": &s.notifyAccess, "KillMode": &s.killMode, "KillSignal": &s.killSignal,
		"RestartKillSignal": &s.restartKillSignal, "SendSIGHUP": &s.sendSIGHUP, "PIDFile": &s.pidFile,
	}
	for _, a := range as {
		if a.section != "Service" {
			continue
		}
		switch a.key {
		case "ExecStart":
			if a.value == "" {
				s.execStart = nil
			} else {
				s.execStart = append(s.execStart, a.value)
			}
		case "SystemCallFilter":
			s.syscallFilter = a.value != ""
		case "RestrictAddressFamilies":
			s.families.apply(a.value)
		default:
			if p, ok := last[a.key]; ok {
				*p = a.value
			}
		}
	}
}

// familyFilter is RestrictAddressFamilies= as systemd merges it: the first
// assignment after a reset makes an allow-list, or a deny-list with ~; a
// later one adds to it if of the same kind and removes from it if not.
type familyFilter struct {
	set, allow bool
	members    map[string]bool
}

func (f *familyFilter) apply(value string) {
	if value == "" {
		*f = familyFilter{}
		return
	}
	if value == "none" {
		*f = familyFilter{set: true, allow: true, members: map[string]bool{}}
		return
	}
	invert := strings.HasPrefix(value, "~")
	if !f.set {
		*f = familyFilter{set: true, allow: !invert, members: map[string]bool{}}
	}
	for _, af := range strings.Fields(strings.TrimPrefix(value, "~")) {
		if invert != f.allow {
			f.members[af] = true
		} else {
			delete(f.members, af)
		}
	}
}

// allows says whether sockets of family af may be created.
func (f familyFilter) allows(af string) bool {
	return !f.set || f.allow == f.members[af]
}

// none says that no socket family at all is allowed.
func (f familyFilter) none() bool {
	return f.set && f.allow && len(f.members) == 0
}
