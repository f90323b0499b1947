package lab

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LinkStats returns the bytes received and sent by device dev in the
// namespace (from /proc/net/dev read inside it).
func (n *NS) LinkStats(dev string) (rxBytes, txBytes uint64, err error) {
	var data []byte
	if err := n.Do(func() error {
		var err error
		data, err = os.ReadFile("/proc/thread-self/net/dev")
		return err
	}); err != nil {
		return 0, 0, fmt.Errorf("link stats of %s in %s: %w", dev, n.Name, err)
	}
	// Lines are "  dev: rxbytes rxpackets ... (8 rx fields) txbytes ...".
	for line := range strings.Lines(string(data)) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != dev {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			return 0, 0, fmt.Errorf("link stats of %s in %s: short line %q", dev, n.Name, line)
		}
		rx, err1 := strconv.ParseUint(f[0], 10, 64)
		tx, err2 := strconv.ParseUint(f[8], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("link stats of %s in %s: bad line %q", dev, n.Name, line)
		}
		return rx, tx, nil
	}
	return 0, 0, fmt.Errorf("link stats of %s in %s: no such device", dev, n.Name)
}

// Nstat returns the namespace's absolute SNMP and extended counters under
// nstat's names: "MPTcpExtMPJoinAckRx", "MPTcpExtDataCsumErr",
// "TcpExtIPReversePathFilter", "TcpActiveOpens", "Ip6InReceives", ...
// Negative values (TcpMaxConn) are left out.
func (n *NS) Nstat() (map[string]uint64, error) {
	files := map[string][]byte{}
	if err := n.Do(func() error {
		for _, f := range []string{"netstat", "snmp", "snmp6"} {
			b, err := os.ReadFile("/proc/thread-self/net/" + f)
			if err != nil {
				return err
			}
			files[f] = b
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("counters of %s: %w", n.Name, err)
	}
	out := map[string]uint64{}
	for _, f := range []string{"netstat", "snmp"} {
		if err := parsePairedCounters(files[f], out); err != nil {
			return nil, fmt.Errorf("counters of %s: /proc/net/%s: %w", n.Name, f, err)
		}
	}
	// snmp6 has one "Name value" per line, already under nstat's names.
	for line := range strings.Lines(string(files["snmp6"])) {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = v
		}
	}
	return out, nil
}

// parsePairedCounters reads /proc/net/netstat or snmp: pairs of lines
// "Prefix: Name1 Name2 ..." and "Prefix: v1 v2 ...", named PrefixName as
// nstat does.
func parsePairedCounters(data []byte, out map[string]uint64) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		header := sc.Text()
		if !sc.Scan() {
			return fmt.Errorf("header %q has no values", header)
		}
		prefix, names, ok1 := strings.Cut(header, ":")
		vprefix, values, ok2 := strings.Cut(sc.Text(), ":")
		nf, vf := strings.Fields(names), strings.Fields(values)
		if !ok1 || !ok2 || prefix != vprefix || len(nf) != len(vf) {
			return fmt.Errorf("header %q does not match its values %q", header, sc.Text())
		}
		for i, name := range nf {
			if v, err := strconv.ParseUint(vf[i], 10, 64); err == nil {
				out[prefix+name] = v
			}
		}
	}
	return sc.Err()
}

// CounterDelta is after[name] - before[name], 0 when the counter fell or is
// absent.
func CounterDelta(before, after map[string]uint64, name string) uint64 {
	if after[name] < before[name] {
		return 0
	}
	return after[name] - before[name]
}

// WaitFor polls cond every 10 ms until it returns nil and fails tb with
// cond's last error after timeout. It waits for things to happen; it does
// not assert how fast they do.
func WaitFor(tb TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: still not true after %v: %v", what, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// RisenCounters lists, sorted, the counters named with prefix that rose
// from before to after, as "Name +delta": what a failed test shows of the
// kernel's side (resets, MP_FAIL, checksum errors) without a wall of zeros.
func RisenCounters(before, after map[string]uint64, prefix string) []string {
	var out []string
	for name := range after {
		if d := CounterDelta(before, after, name); d > 0 && strings.HasPrefix(name, prefix) {
			out = append(out, fmt.Sprintf("%s +%d", name, d))
		}
	}
	slices.Sort(out)
	return out
}
