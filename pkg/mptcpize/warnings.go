package mptcpize

import (
	"fmt"
	"io"
	"sync"
)

// Warnings writes each distinct warning once, one line each.
type Warnings struct {
	w      io.Writer
	prefix string
	mu     sync.Mutex
	seen   map[string]bool
}

// NewWarnings writes to w, each line starting with prefix.
func NewWarnings(w io.Writer, prefix string) *Warnings {
	return &Warnings{w: w, prefix: prefix, seen: map[string]bool{}}
}

// Warn writes the warning unless one with the same key was written.
func (ws *Warnings) Warn(key, format string, args ...any) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.seen[key] {
		return
	}
	ws.seen[key] = true
	fmt.Fprintf(ws.w, ws.prefix+format+"\n", args...)
}
