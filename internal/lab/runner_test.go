package lab

import (
	"slices"
	"strings"
	"testing"
)

func TestRunnerRunsCleanupsAndTurnsFatalIntoAnError(t *testing.T) {
	r := NewRunner("test", false)
	var order []string
	err := r.Run("work", func(s *Scope) {
		s.Cleanup(func() { order = append(order, "first") })
		s.Sub("daemon", func(c *Scope) {
			c.Cleanup(func() { order = append(order, "sub") })
		})
		order = append(order, "after sub")
		s.Cleanup(func() { order = append(order, "second") })
		s.Fatalf("broken %d", 7)
		order = append(order, "unreachable")
	})
	if err == nil || !strings.Contains(err.Error(), "work: broken 7") {
		t.Errorf("Run = %v, want the fatal message named by the scope", err)
	}
	if want := []string{"sub", "after sub", "second", "first"}; !slices.Equal(order, want) {
		t.Errorf("order = %q, want %q (a Sub's cleanups when it returns, then newest first)", order, want)
	}
	if !r.Failed() {
		t.Error("a fatal piece of work does not mark the runner failed")
	}
	r.Teardown()
}

func TestRunnerTeardownClosesOpenScopes(t *testing.T) {
	r := NewRunner("test", false)
	s := r.scope("left open")
	closed := false
	s.Cleanup(func() { closed = true })
	r.Teardown()
	if !closed {
		t.Error("Teardown did not run an open scope's cleanups")
	}
	select {
	case <-s.Context().Done():
	default:
		t.Error("Teardown did not cancel the scopes' context")
	}
}
