//go:build guest

package systemd_test

import (
	"os"
	"strings"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/guest"
	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/internal/unitlab"
)

// TestGuestEnableRoundTrip is `mptcpgd enable` and `disable` on units that
// the guest's systemd really starts: the program's environment is the
// unit's own with multipathtcp=1 merged into GODEBUG, systemd-analyze
// verify accepts the result, and disable leaves the tree as it was.
func TestGuestEnableRoundTrip(t *testing.T) {
	guest.Install(t)
	unitlab.RoundTrip(t, unitlab.Options{Root: "/", Mptcpgd: "/usr/local/sbin/mptcpgd", Env: func(tb lab.TB, unit string) []string {
		tb.Helper()
		guest.Must(t, "systemctl", "daemon-reload")
		// The fixture's units are oneshot: start returns once env(1) has
		// written what it got.
		guest.Must(t, "systemctl", "start", unit)
		instance := ""
		if _, rest, ok := strings.Cut(unit, "@"); ok {
			instance = strings.TrimSuffix(rest, ".service")
		}
		b, err := os.ReadFile(strings.ReplaceAll(unitlab.EnvOutput, "%i", instance))
		if err != nil {
			tb.Fatalf("%s wrote no environment: %v", unit, err)
		}
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}})
}
