package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// `mptcpgd rejoin` against a running daemon: a middlebox resets the joins
// from eth2 until the retry backoff has grown, then stops; the command
// makes the retry due at once, so the endpoint is re-added (and the
// connection joins over eth2 again) before the retry the daemon had
// scheduled. Without the command nothing would happen before that time: the
// in-kernel path manager never retries a failed join itself.
func TestRejoinCommandRetriesNow(t *testing.T) {
	s := startRejoinSeed(t, lab.V4, "[rejoin]\nretry_max = \"1h\"\n")
	u := s.top.Uplinks[1]
	st, stop := streamThroughResetsAfterOutage(t, s)
	// Wait until the daemon's next retry lies well ahead: several failed
	// retries doubled the backoff.
	var scheduled time.Time
	waitFor(t, "a failed join whose next retry is at least 6s ahead", 60*time.Second, func() (bool, string) {
		for _, m := range s.client.Show().Status.Missing {
			if m.Addr == u.Addr4 && strings.Contains(m.Reason, "join failed: ECONNREFUSED") && time.Until(m.NextTry) >= 6*time.Second {
				scheduled = m.NextTry
				return true, ""
			}
		}
		return false, fmt.Sprint(s.client.Show().Status.Missing)
	})
	stop()
	before := readds(t, s)
	asked := time.Now()
	if out, errOut, err := s.client.Run("rejoin"); err != nil {
		t.Fatalf("mptcpgd rejoin: %v: %s%s", err, out, errOut)
	}
	st.waitSubflow("the connection joins over eth2 again after mptcpgd rejoin", u.Addr4, netip.Addr{})
	after := readds(t, s)
	if len(after) <= len(before) {
		t.Fatalf("no endpoint re-added after mptcpgd rejoin (%d re-adds before, %d after)", len(before), len(after))
	}
	if at := after[len(before)]; at.Before(asked) || !at.Before(scheduled) {
		t.Errorf("the re-add after mptcpgd rejoin was logged at %s; want it after the command (%s) and before the retry the daemon had scheduled (%s)",
			at.Format(time.StampMilli), asked.Format(time.StampMilli), scheduled.Format(time.StampMilli))
	}
	st.wait()
}

// readds are the times the client's daemon logged re-adding eth2's
// endpoint to retry joins, in order.
func readds(t *testing.T, s *seed) []time.Time {
	t.Helper()
	var out []time.Time
	for _, l := range s.client.Logs() {
		if l["msg"] != "re-adding endpoint so that connections that lack it join again" || l["iface"] != "eth2" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(l["time"]))
		if err != nil {
			t.Fatalf("log line %v: time: %v", l, err)
		}
		out = append(out, at)
	}
	return out
}
