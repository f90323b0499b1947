package vm

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// DefaultCacheDir is where built guests are kept between runs on one
// machine, outside any checkout: $MPTCPGD_TEST_CACHE, else
// /var/cache/mptcpgd-test.
func DefaultCacheDir() string {
	if d := os.Getenv("MPTCPGD_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/mptcpgd-test"
}

// keepPerKind is how many versions of one kind of artifact stay: a few, so
// that two checkouts with different recipes on one machine do not delete
// what the other is using.
const keepPerKind = 3

// Cache keeps artifacts (an unpacked kernel, an initramfs, a root file
// system) in Dir/KIND/KEY. A key names everything an artifact is built
// from, so that a changed recipe or input builds anew.
type Cache struct{ Dir string }

// Digest is a short hex digest of parts, for keys.
func Digest(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Get returns the directory of kind/key, building it first if it does not
// exist: build fills an empty directory, which becomes the artifact only
// if build succeeds. One run at a time builds a kind (a file lock), and
// older keys of the kind beyond the newest few are removed.
func (c Cache) Get(kind, key string, build func(dir string) error) (string, error) {
	key = strings.NewReplacer("/", "_", " ", "_").Replace(key)
	kindDir := filepath.Join(c.Dir, kind)
	final := filepath.Join(kindDir, key)
	if err := os.MkdirAll(kindDir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(filepath.Join(c.Dir, kind+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	tmp, err := os.MkdirTemp(kindDir, ".build-")
	if err != nil {
		return "", err
	}
	if err := build(tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("build %s %s: %w", kind, key, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	pruneOld(kindDir)
	return final, nil
}

// lockFile takes an exclusive lock on path, creating it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// pruneOld removes the artifacts of a kind beyond the newest keepPerKind,
// and builds that were interrupted.
func pruneOld(kindDir string) {
	entries, err := os.ReadDir(kindDir)
	if err != nil {
		return
	}
	type aged struct {
		path string
		mod  int64
	}
	var done []aged
	for _, e := range entries {
		p := filepath.Join(kindDir, e.Name())
		if strings.HasPrefix(e.Name(), ".build-") {
			_ = os.RemoveAll(p)
			continue
		}
		if info, err := e.Info(); err == nil {
			done = append(done, aged{p, info.ModTime().UnixNano()})
		}
	}
	slices.SortFunc(done, func(a, b aged) int { return cmp.Compare(b.mod, a.mod) })
	for _, old := range done[min(len(done), keepPerKind):] {
		_ = os.RemoveAll(old.path)
	}
}
