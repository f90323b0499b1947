package main

import (
	"os"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/daemonlab"
)

func TestMain(m *testing.M) {
	code := m.Run()
	daemonlab.Cleanup()
	os.Exit(code)
}
