package keys

import (
	"fmt"
	"io"
	"os"
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
