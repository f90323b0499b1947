package statefile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mptcpgd/mptcpgd/internal/lab"
)

// service stands in for systemd's DynamicUser: an unprivileged uid.
const service = 65534

func owner(t *testing.T, path string) (uid, gid uint32) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

// TestRootSaveKeepsTheDirectorysOwner is `mptcpgd cleanup` run as root on
// a state directory that a DynamicUser service owns: the file must stay
// the service's, or the service cannot start again.
func TestRootSaveKeepsTheDirectorysOwner(t *testing.T) {
	lab.Require(t) // root
	dir := filepath.Join(t.TempDir(), "mptcpgd")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, service, service); err != nil {
		t.Fatal(err)
	}
	f := File{Path: filepath.Join(dir, "state.json")}
	for range 2 { // a new file, then one replaced
		if err := f.Save(State{}); err != nil {
			t.Fatal(err)
		}
		if uid, gid := owner(t, f.Path); uid != service || gid != service {
			t.Errorf("state file saved by root is owned by %d:%d, want the directory's %d:%d", uid, gid, service, service)
		}
	}
}

func TestPermissionErrorsNameTheFix(t *testing.T) {
	lab.Require(t) // root, to give files away
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := File{Path: filepath.Join(dir, "state.json")}
	if err := os.WriteFile(f.Path, []byte(`{"version": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var loadErr, saveErr error
	lab.AsUser(t, service, func() {
		_, loadErr = f.Load()
		saveErr = f.Save(State{})
	})
	if loadErr == nil || !strings.Contains(loadErr.Error(), f.Path) || !strings.Contains(loadErr.Error(), "chown --reference="+dir+" "+f.Path) {
		t.Errorf("Load of a root-owned 0600 file as another user = %v, want the file and chown --reference named", loadErr)
	}
	if saveErr == nil || !strings.Contains(saveErr.Error(), dir) || !strings.Contains(saveErr.Error(), "give the directory to the user the service runs as") {
		t.Errorf("Save into a root-owned directory as another user = %v, want the directory and the fix named", saveErr)
	}
}
