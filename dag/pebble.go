package dag

import (
	"errors"
	"fmt"
	"os"

	pebbleds "github.com/ipfs/go-ds-pebble"
)

// OpenPebbleStore opens (creating if needed) the embedded on-disk datastore
// in dir: pebble through go-ds-pebble. Writes are not synced one by one; the
// DAG syncs after each accepted block or batch of blocks. The caller closes
// the store after everything using it is done. A directory already opened by
// another process is refused (pebble holds a lock file).
func OpenPebbleStore(dir string) (*pebbleds.Datastore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dag: creating store directory: %w", err)
	}
	s, err := pebbleds.NewDatastore(dir)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("dag: opening store in %s: %w", dir, err)
		}
		return nil, fmt.Errorf("dag: opening store in %s (is another dagnode using it?): %w", dir, err)
	}
	return s, nil
}
