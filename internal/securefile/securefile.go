// Package securefile writes the node's secret files (keys, the RPC cookie,
// the RPC certificate's key): mode 0600, atomically, durably.
//
// It must not import anything but the standard library: keys, rpc and any
// other package may use it.
package securefile

import (
	"os"
	"path/filepath"
	"runtime"
)

// Write writes data to path with mode 0600 so that readers see
// either the old file or the complete new one: it writes a temporary file in
// the same directory, syncs it, renames it over path and syncs the directory.
// The parent directory is created with mode 0700 if it is missing.
func Write(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close() // may already be closed; the write error matters more
			_ = os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir flushes a directory entry change (such as a rename) to disk. It is
// a no-op on Windows, which cannot sync a directory.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
