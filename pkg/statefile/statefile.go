// Package statefile keeps mptcpgd's ownership record: the endpoints it
// created or adopted (the kernel tags endpoints with no owner) and the limits
// it found at first start, so a restart knows what is its own and cleanup can
// put the limits back. The file is small JSON, replaced atomically.
package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

// DefaultPath is the state file under systemd's StateDirectory=mptcpgd.
const DefaultPath = "/var/lib/mptcpgd/state.json"

// version is bumped when the format changes incompatibly.
const version = 1

// Endpoint is an endpoint we own: the kernel's id and its address, which
// together tell it apart from an endpoint someone else made later with a
// recycled id.
type Endpoint struct {
	ID   uint8      `json:"id"`
	Addr netip.Addr `json:"addr"`
	Port uint16     `json:"port,omitempty"`
}

// Routing are the [routing] settings our rules and routes were written
// with: what carries the protocol, in a table above TableBase (routes) or at
// RulePriority (rules), is ours. Recorded so that a run with other settings,
// or cleanup, still finds what an earlier run left.
type Routing struct {
	Protocol     uint8  `json:"protocol"`
	TableBase    uint32 `json:"table_base"`
	RulePriority uint32 `json:"rule_priority"`
}

// State is the file's content.
type State struct {
	Version   int        `json:"version"`
	Endpoints []Endpoint `json:"endpoints"`
	// InitialLimits are the kernel's limits before we first changed them.
	InitialLimits *netlinkmptcp.Limits `json:"initial_limits,omitempty"`
	// Routing is what our rules and routes carry; nil before the first run
	// that wrote any.
	Routing *Routing `json:"routing,omitempty"`
}

// File is a state file at a path.
type File struct {
	Path string
}

// ErrUnusable matches the error of Load for a file that is not a state
// this mptcpgd can read: corrupt, truncated, or of another format version.
var ErrUnusable = errors.New("unusable state file")

// Load reads the state. A missing file is an empty state: a first start.
// Every error names the file and the way out.
func (f File) Load() (State, error) {
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{Version: version}, nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return State{}, fmt.Errorf("read state file: %w: %s", err, f.ownerHint())
	}
	if err != nil {
		return State{}, fmt.Errorf("read state file: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return State{}, f.unusable(fmt.Sprintf("is not a valid state (%v)", err))
	}
	if s.Version != version {
		return State{}, f.unusable(fmt.Sprintf("has format version %d, and this mptcpgd reads version %d", s.Version, version))
	}
	return s, nil
}

func (f File) unusable(why string) error {
	return fmt.Errorf("%w: %s %s: move it aside (mv %s %s.bad); mptcpgd then starts afresh and adopts only the endpoints that match the configuration exactly",
		ErrUnusable, f.Path, why, f.Path, f.Path)
}

// ownerHint explains a state file this process may not read: typically
// one a root command left behind for a service that runs as systemd's
// DynamicUser, which owns the directory.
func (f File) ownerHint() string {
	return fmt.Sprintf("this process runs as uid %d; give the file to the state directory's owner, the service's user: chown --reference=%s %s",
		os.Geteuid(), filepath.Dir(f.Path), f.Path)
}

// Save replaces the file atomically: a crash leaves the old or the new
// content, never a torn one. Run as root (`mptcpgd cleanup`), it gives the
// file to the directory's owner, so that a service running as that user
// (systemd's DynamicUser owns its StateDirectory) can still read it.
func (f File) Save(s State) error {
	s.Version = version
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".state-*.json")
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("write state file: %w: this process runs as uid %d; give the directory to the user the service runs as (systemd does so for its StateDirectory= at start)", err, os.Geteuid())
	}
	if err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := chownLikeDir(tmp, dir); err != nil {
		tmp.Close()
		return fmt.Errorf("write state file %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write state file %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write state file %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state file %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write state file: sync %s: %w", dir, err)
	}
	return nil
}

// chownLikeDir gives f to dir's owner and group when this process is root
// (only root may give files away) and they differ.
func chownLikeDir(f *os.File, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 && st.Gid == 0 {
		return nil
	}
	return f.Chown(int(st.Uid), int(st.Gid))
}
