package keys

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// keyFilePermMask holds the permission bits a key file must not have: any
// access by group or others. Such a file is refused (as ssh refuses a
// private key others can read): the key may already have leaked, and a
// node that loads it anyway hides that from its operator.
const keyFilePermMask = 0o077

// maxKeyFileSize bounds how much of a key file is read. Marshalled Ed25519
// keys are under 100 bytes and even large RSA keys stay well below this; the
// bound keeps a path pointing at a huge or endless file (/dev/zero) harmless.
const maxKeyFileSize = 16 << 10

// readKeyFile reads at most maxKeyFileSize bytes of the file at path. Errors
// from the file system are returned unwrapped, so callers can test them with
// errors.Is(err, fs.ErrNotExist). A file that group or others may access is
// refused with an error wrapping ErrKeyPermissions (except on Windows, where
// Unix permission bits mean nothing).
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if runtime.GOOS != "windows" {
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		// A directory fails below, when read; only regular files have a
		// meaningful mode here.
		if perm := fi.Mode().Perm(); fi.Mode().IsRegular() && perm&keyFilePermMask != 0 {
			return nil, fmt.Errorf("%w: %s has mode %#o, open to other users; run chmod 600 %s "+
				"(and if someone else may have read it, treat the key as leaked)", ErrKeyPermissions, path, uint32(perm), path)
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: path, Err: err}
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%w %s: larger than %d bytes", ErrMalformedKey, path, maxKeyFileSize)
	}
	return data, nil
}

// writeFileAtomic writes data to path with mode 0600 so that readers see
// either the old file or the complete new one: it writes a temporary file in
// the same directory, syncs it, renames it over path and syncs the directory.
// The parent directory is created with mode 0700 if it is missing.
func writeFileAtomic(path string, data []byte) (err error) {
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
