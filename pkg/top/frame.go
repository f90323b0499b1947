// Package top is `mptcpgd top`: a live view of the host's interfaces as
// the daemon sees them, refreshed from its control socket. Frames are built
// from two samples (the daemon's status and its metrics) by pure functions;
// Run draws them on a terminal, or prints them as plain lines elsewhere.
package top

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mptcpgd/mptcpgd/pkg/daemonmetrics"
	"github.com/mptcpgd/mptcpgd/pkg/metrics"
	"github.com/mptcpgd/mptcpgd/pkg/pm"
)

// Sample is what one refresh reads from the daemon.
type Sample struct {
	At      time.Time
	Status  pm.Status
	Metrics []metrics.Family
}

// Row is one interface.
type Row struct {
	Interface string
	// State is "active", "withdrawn", "waiting" or "not managed"; Why
	// says why, "" when nothing is amiss.
	State, Why string
	Endpoints  int
	Subflows   int
	// SendRate and RecvRate are bytes per second over MPTCP subflows
	// since the previous sample; negative before there is one.
	SendRate, RecvRate float64
	Joins, Failures    float64
	Retries            float64
}

// Frame is one refresh.
type Frame struct {
	At      time.Time
	Rows    []Row
	Clients float64
	Servers float64
	Missing float64
}

// Build makes the frame of cur, with rates since prev (nil: none yet).
// Rows are the managed interfaces, and every other interface that carried
// MPTCP subflows, by name.
func Build(prev *Sample, cur Sample) Frame {
	v := index(cur.Metrics)
	f := Frame{At: cur.At, Clients: v.get(daemonmetrics.NameConnections, "client"),
		Servers: v.get(daemonmetrics.NameConnections, "server"), Missing: v.get(daemonmetrics.NameMissing, "")}
	rows := map[string]*Row{}
	row := func(name string) *Row {
		if r, ok := rows[name]; ok {
			return r
		}
		r := &Row{Interface: name, State: "not managed", SendRate: -1, RecvRate: -1}
		rows[name] = r
		return r
	}
	for _, st := range cur.Status.Interfaces {
		if !st.Managed {
			continue
		}
		r := row(st.Link.Name)
		r.State = "active"
		if st.Withdrawn != "" {
			r.State, r.Why = "withdrawn", st.Withdrawn
		}
	}
	for _, ms := range cur.Status.Missing {
		if r, ok := rows[ms.IfName]; ok && r.State == "active" {
			r.State, r.Why = "waiting", ms.Reason
		}
	}
	for _, name := range v.interfaces() {
		r := row(name)
		r.Endpoints = int(v.get(daemonmetrics.NameEndpoints, name))
		r.Subflows = int(v.get(daemonmetrics.NameSubflows, name))
		r.Joins = v.get(daemonmetrics.NameJoins, name)
		r.Failures = v.sum(daemonmetrics.NameJoinFailures, name)
		r.Retries = v.get(daemonmetrics.NameJoinRetries, name)
		if r.State == "active" && r.Endpoints == 0 {
			r.State, r.Why = "waiting", "no endpoint yet"
		}
	}
	if prev != nil {
		pv := index(prev.Metrics)
		dt := cur.At.Sub(prev.At).Seconds()
		for name, r := range rows {
			if dt <= 0 {
				break
			}
			r.SendRate = max(0, v.get(daemonmetrics.NameSentBytes, name)-pv.get(daemonmetrics.NameSentBytes, name)) / dt
			r.RecvRate = max(0, v.get(daemonmetrics.NameReceivedBytes, name)-pv.get(daemonmetrics.NameReceivedBytes, name)) / dt
		}
	}
	for _, r := range rows {
		f.Rows = append(f.Rows, *r)
	}
	slices.SortFunc(f.Rows, func(a, b Row) int { return cmp.Compare(a.Interface, b.Interface) })
	return f
}

// values are a sample's metrics by name and interface label.
type values map[string]map[string][]metrics.Sample

func index(fams []metrics.Family) values {
	v := values{}
	for _, f := range fams {
		m := map[string][]metrics.Sample{}
		for _, s := range f.Samples {
			m[s.Labels["interface"]] = append(m[s.Labels["interface"]], s)
		}
		v[f.Name] = m
	}
	return v
}

// get is the value of the series of name for iface (or side, for the
// connections), 0 if there is none.
func (v values) get(name, label string) float64 {
	if name == daemonmetrics.NameConnections {
		for _, s := range v[name][""] {
			if s.Labels["side"] == label {
				return s.Value
			}
		}
		return 0
	}
	if ss := v[name][label]; len(ss) > 0 {
		return ss[0].Value
	}
	return 0
}

// sum adds the series of name for iface over its other labels.
func (v values) sum(name, iface string) float64 {
	var t float64
	for _, s := range v[name][iface] {
		t += s.Value
	}
	return t
}

// interfaces names every interface a per-interface gauge or byte counter
// has a series for.
func (v values) interfaces() []string {
	var out []string
	for _, name := range []string{daemonmetrics.NameEndpoints, daemonmetrics.NameSubflows, daemonmetrics.NameSentBytes, daemonmetrics.NameReceivedBytes} {
		for iface := range v[name] {
			if iface != "" && !slices.Contains(out, iface) {
				out = append(out, iface)
			}
		}
	}
	slices.Sort(out)
	return out
}

// barWidth is the width of a throughput bar.
const barWidth = 16

// Lines renders f: a header, one line per interface, and with bars a
// throughput bar per direction scaled to the busiest interface.
func (f Frame) Lines(bars bool) []string {
	out := []string{fmt.Sprintf("mptcpgd top  %s  connections: %.0f client, %.0f server, %.0f missing a path",
		f.At.Format(time.TimeOnly), f.Clients, f.Servers, f.Missing)}
	var peak float64
	for _, r := range f.Rows {
		peak = max(peak, r.SendRate, r.RecvRate)
	}
	head := fmt.Sprintf("%-12s %-11s %3s %4s %11s %11s %6s %6s %6s", "INTERFACE", "STATE", "EPS", "SUBF", "SEND", "RECV", "JOINS", "FAILED", "RETRY")
	if bars {
		head += fmt.Sprintf("  %-*s %-*s", barWidth, "SEND", barWidth, "RECV")
	}
	out = append(out, head+"  WHY")
	for _, r := range f.Rows {
		l := fmt.Sprintf("%-12s %-11s %3d %4d %11s %11s %6.0f %6.0f %6.0f", r.Interface, r.State, r.Endpoints, r.Subflows,
			rate(r.SendRate), rate(r.RecvRate), r.Joins, r.Failures, r.Retries)
		if bars {
			l += "  " + bar(r.SendRate, peak) + " " + bar(r.RecvRate, peak)
		}
		if r.Why != "" {
			l += "  " + r.Why
		}
		out = append(out, l)
	}
	return out
}

// rate prints bytes per second as bits per second, as links are rated.
func rate(bps float64) string {
	if bps < 0 {
		return "-"
	}
	bits := bps * 8
	for _, u := range []struct {
		div  float64
		unit string
	}{{1e9, "Gbit/s"}, {1e6, "Mbit/s"}, {1e3, "kbit/s"}} {
		if bits >= u.div {
			return fmt.Sprintf("%.1f %s", bits/u.div, u.unit)
		}
	}
	return fmt.Sprintf("%.0f bit/s", bits)
}

func bar(v, peak float64) string {
	n := 0
	if peak > 0 && v > 0 {
		n = max(1, int(v/peak*barWidth))
	}
	return strings.Repeat("#", n) + strings.Repeat(".", barWidth-n)
}
