package config

import (
	"fmt"
	"math"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// checker turns a decoded file into a Config, collecting every problem.
type checker struct {
	file string
	doc  *document
	errs []*Error
}

func (c *checker) failAt(key string, line int, format string, args ...any) {
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Key: key, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) fail(key string, format string, args ...any) {
	c.failAt(key, c.doc.lines[key], format, args...)
}

// elemLine is the line of element i of the array at key.
func (c *checker) elemLine(key string, i int) int {
	if lines := c.doc.elemLines[key]; i < len(lines) {
		return lines[i]
	}
	return c.doc.lines[key]
}

// describe shows a decoded value in an error message.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return quote(v)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprint(v)
	}
}

func (c *checker) config(f *file) *Config {
	cfg := Default()
	c.daemon(f.Daemon, &cfg.Daemon)
	c.log(f.Log, &cfg.Log)
	c.limits(f.Limits, &cfg.Limits)
	flagsOK := c.endpoints(f.Endpoints, &cfg.Endpoints)
	matched := map[string]int{} // match -> first entry with it
	for i, fi := range f.Interface {
		in := c.iface(i+1, fi, cfg.Endpoints.Flags, flagsOK)
		c.repeatedMatch(i+1, in.Match, matched)
		cfg.Interfaces = append(cfg.Interfaces, in)
	}
	c.routing(f.Routing, &cfg.Routing)
	c.rejoin(f.Rejoin, &cfg.Rejoin)
	c.networkManager(f.NM, &cfg.NetworkManager)
	c.metrics(f.Metrics, &cfg.Metrics)
	return cfg
}

func (c *checker) networkManager(f fileNM, n *NetworkManager) {
	const key = "networkmanager.mptcp_devices"
	if s, ok := c.str(key, f.MPTCPDevices, `"leave" or "manage"`); ok {
		switch s {
		case NMLeave, NMManage:
			n.MPTCPDevices = s
		default:
			c.fail(key, `unknown value %s (want "leave" or "manage")`, quote(s))
		}
	}
}

func (c *checker) metrics(f fileMetrics, m *Metrics) {
	if s, ok := c.str("metrics.textfile", f.Textfile, "a file path"); ok && s != "" {
		switch {
		case !path.IsAbs(s) || path.Clean(s) != s:
			c.fail("metrics.textfile", "%s is not a clean absolute path", quote(s))
		case !strings.HasSuffix(s, ".prom") || path.Base(s) == ".prom":
			c.fail("metrics.textfile", "%s does not end in .prom, which node_exporter's textfile collector reads", quote(s))
		default:
			m.Textfile = s
		}
	}
	c.duration("metrics.textfile_interval", f.TextfileInterval, time.Second, time.Hour, &m.TextfileInterval)
	if s, ok := c.str("metrics.listen", f.Listen, `an address and port such as "127.0.0.1:9477"`); ok && s != "" {
		ap, err := netip.ParseAddrPort(s)
		switch {
		case err != nil:
			c.fail("metrics.listen", `%s is not an address and port (want e.g. "127.0.0.1:9477" or "[2001:db8::1]:9477")`, quote(s))
		case ap.Port() == 0:
			c.fail("metrics.listen", "%s has port 0: give the port Prometheus scrapes", quote(s))
		case ap.Addr().Zone() != "":
			c.fail("metrics.listen", "%s has a zone: listen on an address without one", quote(s))
		default:
			m.Listen = ap
		}
	}
}

func (c *checker) rejoin(f fileRejoin, r *Rejoin) {
	c.duration("rejoin.gateway_timeout", f.GatewayTimeout, 0, 10*time.Minute, &r.GatewayTimeout)
	c.duration("rejoin.join_timeout", f.JoinTimeout, time.Second, 2*time.Minute, &r.JoinTimeout)
	c.duration("rejoin.retry_max", f.RetryMax, time.Second, time.Hour, &r.RetryMax)
}

// duration sets *dst from v when v is present and a duration within
// lo..hi.
func (c *checker) duration(key string, v any, lo, hi time.Duration, dst *time.Duration) {
	s, ok := c.str(key, v, `a duration such as "30s"`)
	if !ok {
		return
	}
	switch d, err := time.ParseDuration(s); {
	case err != nil:
		c.fail(key, `%s is not a duration (want e.g. "5s" or "1m")`, quote(s))
	case d < lo || d > hi:
		c.fail(key, "%s is out of range (%v..%v)", quote(s), lo, hi)
	default:
		*dst = d
	}
}

func (c *checker) daemon(f fileDaemon, d *Daemon) {
	if s, ok := c.str("daemon.resync_interval", f.ResyncInterval, `a duration such as "30s"`); ok {
		switch dur, err := time.ParseDuration(s); {
		case err != nil:
			c.fail("daemon.resync_interval", `%s is not a duration (want e.g. "30s" or "5m", or "0s" to disable)`, quote(s))
		case dur < 0:
			c.fail("daemon.resync_interval", `%s is negative (want e.g. "30s" or "5m", or "0s" to disable)`, quote(s))
		case dur > 0 && dur < MinResyncInterval:
			c.fail("daemon.resync_interval", `%s is below the minimum of %v (or "0s" to disable)`, quote(s), MinResyncInterval)
		default:
			d.ResyncInterval = dur
		}
	}
	c.boolean("daemon.cleanup_on_exit", f.CleanupOnExit, &d.CleanupOnExit)
}

func (c *checker) log(f fileLog, l *Log) {
	if s, ok := c.str("log.level", f.Level, "a level"); ok {
		if err := CheckLevel(s); err != nil {
			c.fail("log.level", "%v", err)
		} else {
			l.Level = s
		}
	}
	if s, ok := c.str("log.format", f.Format, "a format"); ok {
		switch s {
		case FormatAuto, FormatJournal, FormatJSON, FormatConsole:
			l.Format = s
		default:
			c.fail("log.format", "unknown format %s (want auto, journal, json or console)", quote(s))
		}
	}
}

func (c *checker) limits(f fileLimits, l *Limits) {
	const key = "limits.subflows"
	switch v := f.Subflows.(type) {
	case nil:
	case string:
		if v != "auto" {
			c.fail(key, `want 0..8 or "auto", got %s`, quote(v))
			break
		}
		l.Subflows, l.SubflowsAuto = 0, true
	case int64:
		if v < 0 || v > netlinkmptcp.MaxLimit {
			c.fail(key, `%d is out of range (0..8 or "auto")`, v)
			break
		}
		l.Subflows = uint32(v)
	default:
		c.fail(key, `want 0..8 or "auto", got %s`, describe(v))
	}
	if n, ok := c.integer("limits.add_addr_accepted", f.AddAddrAccepted, 0, netlinkmptcp.MaxLimit, "0..8"); ok {
		l.AddAddrAccepted = uint32(n)
	}
}

// endpoints fills e, and reports whether the flags, if given, are valid.
func (c *checker) endpoints(f fileEndpoints, e *Endpoints) bool {
	flags, flagsOK := c.flags("endpoints.flags", f.Flags)
	if flagsOK && f.Flags != nil {
		e.Flags = flags
	}
	if families, ok := c.strs("endpoints.families", f.Families); ok {
		c.families(families, e)
	}
	if globs, ok := c.strs("endpoints.include", f.Include); ok && c.globs("endpoints.include", globs) {
		e.Include = globs
	}
	if globs, ok := c.strs("endpoints.exclude", f.Exclude); ok && c.globs("endpoints.exclude", globs) {
		e.Exclude = globs
	}
	c.boolean("endpoints.skip_link_local", f.SkipLinkLocal, &e.SkipLinkLocal)
	c.boolean("endpoints.skip_ula", f.SkipULA, &e.SkipULA)
	c.boolean("endpoints.skip_temporary", f.SkipTemporary, &e.SkipTemporary)
	c.boolean("endpoints.require_default_route", f.RequireDefaultRoute, &e.RequireDefaultRoute)
	return flagsOK
}

func (c *checker) families(names []string, e *Endpoints) {
	const key = "endpoints.families"
	if len(names) == 0 {
		c.fail(key, `empty (want "ipv4", "ipv6" or both)`)
		return
	}
	var v4, v6 bool
	for i, name := range names {
		switch name {
		case "ipv4":
			v4 = true
		case "ipv6":
			v6 = true
		default:
			c.failAt(key, c.elemLine(key, i), `unknown family %s (want "ipv4", "ipv6" or both)`, quote(name))
			return
		}
	}
	e.IPv4, e.IPv6 = v4, v6
}

// flags parses a list of flag names. It reports false after a problem.
func (c *checker) flags(key string, v any) (netlinkmptcp.Flags, bool) {
	names, ok := c.strs(key, v)
	if !ok {
		return 0, v == nil
	}
	var flags netlinkmptcp.Flags
	for i, name := range names {
		if name == "implicit" {
			c.failAt(key, c.elemLine(key, i), `"implicit" marks endpoints the kernel makes itself; it cannot be configured`)
			return 0, false
		}
		flag, err := netlinkmptcp.ParseFlag(name)
		if err != nil {
			c.failAt(key, c.elemLine(key, i), "unknown flag %s (want signal, subflow, backup, fullmesh or laminar)", quote(name))
			return 0, false
		}
		flags |= flag
	}
	if flags&netlinkmptcp.FlagSignal != 0 && flags&netlinkmptcp.FlagFullmesh != 0 {
		c.fail(key, "signal and fullmesh cannot be combined (the kernel refuses it)")
		return 0, false
	}
	return flags, true
}

// globs checks interface name patterns. It reports false after a problem.
func (c *checker) globs(key string, globs []string) bool {
	for i, g := range globs {
		if !c.glob(key, c.elemLine(key, i), g) {
			return false
		}
	}
	return true
}

func (c *checker) glob(key string, line int, g string) bool {
	if g == "" {
		c.failAt(key, line, "empty pattern (want an interface name or glob)")
		return false
	}
	if _, err := path.Match(g, ""); err != nil {
		c.failAt(key, line, "bad pattern %s: %v", quote(g), err)
		return false
	}
	return true
}

func (c *checker) iface(n int, f fileInterface, defaultFlags netlinkmptcp.Flags, defaultFlagsOK bool) Interface {
	entry := fmt.Sprintf("interface[%d]", n)
	key := func(name string) string { return entry + "." + name }
	in := Interface{Manage: true}

	if f.Match == nil {
		c.failAt(key("match"), c.doc.lines[entry], "missing (want an interface name or glob)")
	} else if s, ok := c.str(key("match"), f.Match, "an interface name or glob"); ok && c.glob(key("match"), c.doc.lines[key("match")], s) {
		in.Match = s
	}

	flags, flagsOK := c.flags(key("flags"), f.Flags)
	if flagsOK && f.Flags != nil {
		in.Flags = &flags
	}
	in.Gateway4 = c.gateway(key("gateway4"), f.Gateway4, netip.Addr.Is4, "IPv4")
	in.Gateway6 = c.gateway(key("gateway6"), f.Gateway6, func(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }, "IPv6")

	if port, ok := c.integer(key("port"), f.Port, 0, math.MaxUint16, "0..65535"); ok {
		in.Port = uint16(port)
		effective, effectiveOK, from := defaultFlags, defaultFlagsOK, " (from endpoints.flags)"
		if f.Flags != nil {
			effective, effectiveOK, from = flags, flagsOK, ""
		}
		if port != 0 && effectiveOK && effective&netlinkmptcp.FlagSignal == 0 {
			c.fail(key("port"), "%d needs the signal flag, but flags are %s%s", port, effective, from)
		}
	}
	if prio, ok := c.integer(key("priority"), f.Priority, math.MinInt32, math.MaxInt32, "-2147483648..2147483647"); ok {
		in.Priority = int(prio)
	}
	c.boolean(key("manage"), f.Manage, &in.Manage)
	c.boolean(key("onlink"), f.OnLink, &in.OnLink)
	if in.OnLink && f.Gateway4 == nil && f.Gateway6 == nil {
		c.fail(key("onlink"), "applies to configured gateways, but the entry has neither gateway4 nor gateway6")
	}
	return in
}

// repeatedMatch refuses an entry whose match an earlier entry has: the
// first entry that matches an interface decides, so the later one would
// silently never apply.
func (c *checker) repeatedMatch(n int, match string, first map[string]int) {
	if match == "" {
		return
	}
	prev, ok := first[match]
	if !ok {
		first[match] = n
		return
	}
	key := fmt.Sprintf("interface[%d].match", n)
	c.fail(key, "%s is also the match of interface[%d] on line %d; the first entry that matches decides, so this one would never apply: merge the two",
		quote(match), prev, c.doc.lines[fmt.Sprintf("interface[%d].match", prev)])
}

// gateway parses a gateway address of the family is tests. An absent
// gateway, or one with a problem, is the zero Addr.
func (c *checker) gateway(key string, v any, is func(netip.Addr) bool, family string) netip.Addr {
	s, ok := c.str(key, v, "an "+family+" address")
	if !ok {
		return netip.Addr{}
	}
	addr, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		c.fail(key, "%s is not an IP address", quote(s))
	case addr.Zone() != "":
		c.fail(key, "%s has a zone: leave it out, the interface is implied", quote(s))
	case !is(addr):
		c.fail(key, "%s is not an %s address", quote(s), family)
	case addr.IsUnspecified() || addr.IsMulticast():
		c.fail(key, "%s is not a unicast address", quote(s))
	default:
		return addr
	}
	return netip.Addr{}
}

func (c *checker) routing(f fileRouting, r *Routing) {
	c.boolean("routing.enabled", f.Enabled, &r.Enabled)
	// Tables 253-255 are the kernel's default, main and local; the ifindex
	// added to table_base is a positive int32.
	if n, ok := c.integer("routing.table_base", f.TableBase, 256, 1<<31,
		"256..2147483648, so that table_base + ifindex misses the kernel's tables 0-255 and fits in 32 bits"); ok {
		r.TableBase = uint32(n)
	}
	if n, ok := c.integer("routing.rule_priority", f.RulePriority, 1, 32765,
		"1..32765, so that our rules come before the main table's at 32766"); ok {
		r.RulePriority = uint32(n)
	}
	if n, ok := c.integer("routing.protocol", f.Protocol, 5, 255, "5..255; 0-4 are the kernel's own"); ok {
		if name, taken := RoutingDaemons[uint8(n)]; taken {
			c.fail("routing.protocol", "%d is %s's: what carries it is not ours (want a number no program uses, such as the default 177)", n, name)
		} else {
			r.Protocol = uint8(n)
		}
	}
}

// boolean sets *dst from v when v is present and a boolean.
func (c *checker) boolean(key string, v any, dst *bool) {
	if v == nil {
		return
	}
	b, ok := v.(bool)
	if !ok {
		c.fail(key, "want true or false, got %s", describe(v))
		return
	}
	*dst = b
}

// str returns v when it is present and a string; want describes what the
// key holds, for the error when it is not a string.
func (c *checker) str(key string, v any, want string) (string, bool) {
	if v == nil {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		c.fail(key, "want %s, got %s", want, describe(v))
	}
	return s, ok
}

// integer returns v when it is present, an integer and within lo..hi;
// bounds describes the range for the error when it is not.
func (c *checker) integer(key string, v any, lo, hi int64, bounds string) (int64, bool) {
	if v == nil {
		return 0, false
	}
	n, ok := v.(int64)
	switch {
	case !ok:
		c.fail(key, "want an integer, got %s", describe(v))
	case n < lo || n > hi:
		c.fail(key, "%d is out of range (%s)", n, bounds)
		ok = false
	}
	return n, ok
}

// strs returns v when it is present and an array of strings. An empty array
// is an empty, not nil, slice.
func (c *checker) strs(key string, v any) ([]string, bool) {
	if v == nil {
		return nil, false
	}
	elems, ok := v.([]any)
	if !ok {
		c.fail(key, "want an array of strings, got %s", describe(v))
		return nil, false
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		s, ok := e.(string)
		if !ok {
			c.failAt(key, c.elemLine(key, i), "want an array of strings, got %s in it", describe(e))
			return nil, false
		}
		out[i] = s
	}
	return out, true
}
