package metrics

import (
	"fmt"
	"os"
	"path/filepath"
)

// TextfileMode lets node_exporter, another user, read the file: the unit's
// UMask=0077 would make it the daemon's own.
const TextfileMode = 0o644

// WriteTextfile replaces the file at path with data atomically, as
// node_exporter's textfile collector needs (it may read at any moment): a
// temporary file in the same directory, made readable by all, synced,
// renamed over path.
func WriteTextfile(path string, data []byte) error {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("write metrics textfile %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write metrics textfile %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	// Explicitly: the umask does not apply to chmod.
	if err := f.Chmod(TextfileMode); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write metrics textfile %s: %w", path, err)
	}
	return nil
}
