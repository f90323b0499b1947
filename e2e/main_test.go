package e2e

import (
	"os"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/internal/runlab"
)

// TestMain reports the kernel's known misdeliveries at the end of the run
// (docs/architecture.md, "The kernel's data defect") and removes the
// programs runlab built.
func TestMain(m *testing.M) {
	code := lab.RunTests(m)
	runlab.Cleanup()
	os.Exit(code)
}
