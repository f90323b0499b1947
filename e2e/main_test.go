package e2e

import (
	"os"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// TestMain reports the kernel's known misdeliveries at the end of the run
// (docs/architecture.md, "The kernel's data defect").
func TestMain(m *testing.M) { os.Exit(lab.RunTests(m)) }
