package statefile

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mptcpgd/mptcpgd/pkg/netlinkmptcp"
)

func TestMissingFileIsAFirstStart(t *testing.T) {
	s, err := File{Path: filepath.Join(t.TempDir(), "state.json")}.Load()
	if err != nil || len(s.Endpoints) != 0 || s.InitialLimits != nil {
		t.Fatalf("Load of a missing file = %+v, %v; want an empty state", s, err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	f := File{Path: filepath.Join(t.TempDir(), "sub", "state.json")}
	want := State{
		Version: version,
		Endpoints: []Endpoint{
			{ID: 1, Addr: netip.MustParseAddr("192.0.2.2")},
			{ID: 7, Addr: netip.MustParseAddr("2001:db8::2"), Port: 8080},
		},
		InitialLimits: &netlinkmptcp.Limits{Subflows: 2, AddAddrAccepted: 0},
	}
	if err := f.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load = %+v, want %+v", got, want)
	}
	entries, _ := os.ReadDir(filepath.Dir(f.Path))
	if len(entries) != 1 {
		t.Errorf("state directory holds %d files, want only state.json (no temporary files left)", len(entries))
	}
}

func TestLoadRejectsGarbageAndOtherVersions(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage":   "{not json",
		"truncated": `{"version": 1, "endpoints": [{"id": 1`,
		"empty":     "",
		"future":    `{"version": 99, "endpoints": []}`,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := (File{Path: p}).Load()
		if !errors.Is(err, ErrUnusable) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "mv "+p+" "+p+".bad") {
			t.Errorf("Load(%s) = %v, want ErrUnusable naming the file and how to move it aside", name, err)
		}
	}
}
