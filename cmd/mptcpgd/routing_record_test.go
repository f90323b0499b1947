package main

import (
	"strings"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// taggedLines are the lines of `ip -N rule show` and `ip -N route show
// table all` (both families) that carry proto.
func taggedLines(ns *lab.NS, proto string) []string {
	var out []string
	for _, args := range [][]string{{"-N", "-4", "rule", "show"}, {"-N", "-6", "rule", "show"},
		{"-N", "-4", "route", "show", "table", "all"}, {"-N", "-6", "route", "show", "table", "all"}} {
		for _, l := range strings.Split(ns.IP(args...), "\n") {
			if strings.Contains(l+" ", "proto "+proto+" ") {
				out = append(out, strings.TrimSpace(l))
			}
		}
	}
	return out
}

// foreignRouting adds, while no daemon runs, routing of someone else's
// that carries our old and new protocol numbers outside our tables and
// rule priority; it returns the lines as ip shows them.
func foreignRouting(c *lab.NS) []string {
	c.IP("route", "add", "198.19.1.0/24", "dev", "veth0", "table", "500", "proto", "199")
	c.IP("rule", "add", "from", "198.19.1.9", "lookup", "500", "priority", "500", "protocol", "199")
	c.IP("route", "add", "198.19.2.0/24", "dev", "veth0", "table", "600", "proto", "177")
	var out []string
	for _, l := range append(taggedLines(c, "199"), taggedLines(c, "177")...) {
		if strings.Contains(l, "198.19.") {
			out = append(out, l)
		}
	}
	return out
}

func requireLines(t *testing.T, c *lab.NS, what string, lines []string) {
	t.Helper()
	all := strings.Join(append(taggedLines(c, "177"), taggedLines(c, "199")...), "\n")
	for _, l := range lines {
		if !strings.Contains(all, l) {
			t.Errorf("%s: %q is gone; tagged routing now:\n%s", what, l, all)
		}
	}
}

// TestProtocolChangeKeepsOwnership (issue 11): after routing.protocol
// changed, a restarted daemon and `mptcpgd cleanup` find the rules and
// routes tagged with the protocol the state file recorded and remove them,
// and leave someone else's alone, even where those carry our old or new
// protocol number in a table and at a priority that are not ours.
func TestProtocolChangeKeepsOwnership(t *testing.T) {
	c := client(t)
	first := daemonlab.Start(t, c, daemonlab.Options{Config: daemonlab.WriteConfig(t, "")})
	old := taggedLines(c, "177")
	if len(old) < 4 {
		t.Fatalf("the daemon with protocol 177 installed only:\n%s", strings.Join(old, "\n"))
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	foreign := foreignRouting(c)
	if len(foreign) != 3 {
		t.Fatalf("foreign routing as ip shows it: %q", foreign)
	}

	second := daemonlab.Start(t, c, daemonlab.Options{Config: daemonlab.WriteConfig(t, "[routing]\nprotocol = 199\n"), State: first.State})
	for _, l := range taggedLines(c, "177") {
		if strings.Contains(l, "table 10") || strings.HasPrefix(l, "10000:") {
			t.Errorf("after the restart with protocol 199, routing tagged with the old 177 is left: %s", l)
		}
	}
	if n := len(taggedLines(c, "199")) - 2; n != len(old) {
		t.Errorf("the restarted daemon installed %d rules and routes with protocol 199, want %d as before", n, len(old))
	}
	requireLines(t, c, "the restart with a new protocol", foreign)
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}

	if _, stderr, err := second.Run("cleanup", "--config", daemonlab.WriteConfig(t, "[routing]\nprotocol = 198\n")); err != nil {
		t.Fatalf("cleanup with yet another protocol configured: %v: %s", err, stderr)
	}
	left := append(taggedLines(c, "199"), taggedLines(c, "177")...)
	if len(left) != len(foreign) {
		t.Errorf("after cleanup, tagged routing:\n%s\nwant only the foreign:\n%s", strings.Join(left, "\n"), strings.Join(foreign, "\n"))
	}
	requireLines(t, c, "cleanup", foreign)
}

// TestRulesOfALinkThatVanishedWhileStopped (issue 11): the rule of an
// address whose link was deleted while no daemon ran (its routes went with
// the link, the rule stays in the RPDB) is removed at the next start.
func TestRulesOfALinkThatVanishedWhileStopped(t *testing.T) {
	c, peer := clientAndPeer(t)
	lab.Veth(c, "eth3", peer, "p4")
	c.IP("addr", "add", "198.18.5.2/24", "dev", "eth3")
	c.IP("route", "add", "default", "via", "198.18.5.1", "dev", "eth3", "metric", "300")
	d := daemonlab.Start(t, c, daemonlab.Options{Config: daemonlab.WriteConfig(t, "")})
	hasRule := func() bool { return strings.Contains(c.IP("rule", "show"), "from 198.18.5.2 lookup") }
	if !hasRule() {
		t.Fatalf("no rule for eth3's address:\n%s", c.IP("rule", "show"))
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	c.IP("link", "del", "eth3")
	if !hasRule() {
		t.Fatal("deleting the link took its rule along: nothing left for the daemon to clean")
	}
	daemonlab.Start(t, c, daemonlab.Options{Config: daemonlab.WriteConfig(t, ""), State: d.State})
	if hasRule() {
		t.Errorf("the rule of the vanished link survived the start:\n%s", c.IP("rule", "show"))
	}
	if !strings.Contains(c.IP("rule", "show"), "from 192.0.2.2 lookup") {
		t.Errorf("eth1's rule is gone too:\n%s", c.IP("rule", "show"))
	}
}
