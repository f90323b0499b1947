package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/lab"
	"github.com/mptcpgd/mptcpgd/internal/runlab"
)

// TestMain reports how often the kernel's known bounded misdelivery showed
// up in this run (design.md): each such transfer passed but was logged.
func TestMain(m *testing.M) {
	code := m.Run()
	runlab.Cleanup()
	if n := lab.Misdeliveries(); n > 0 {
		fmt.Printf("KNOWN KERNEL DEFECT: %d transfer(s) with a bounded misdelivery in this run (see the logged reports)\n", n)
	}
	os.Exit(code)
}
