package dag

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	pebbleds "github.com/ipfs/go-ds-pebble"
)

// ErrStoreLocked is wrapped by the error OpenPebbleStore returns when another
// process (or another open in this one) holds the store directory's lock.
var ErrStoreLocked = errors.New("store is locked by another process")

// ErrStoreDamaged is wrapped by the error OpenPebbleStore returns when the
// store's files are corrupt, such as a write-ahead log record that was
// synced (so it held acknowledged blocks) but no longer reads back.
var ErrStoreDamaged = errors.New("store is damaged")

// storeFormat is the pebble format major version stores are opened with (and
// upgraded to; the upgrade is one-way). FormatWALSyncChunks makes every WAL
// chunk record how far the log had been synced when it was written. On open,
// pebble reads past a bad record and, if a later chunk promises that the bad
// one had been synced, fails with a corruption error instead of taking the
// bad record for the end of the log and silently dropping every acknowledged
// block after it. A torn, never-synced tail (a crash) still ends the log
// quietly, as it must. Detection needs a sync chunk after the bad record in a
// later 32 KiB log block, so damage in a log's last block goes unnoticed, and
// log files written before the upgrade carry no sync chunks.
const storeFormat = pebble.FormatWALSyncChunks

// storeCacheSize is the store's block cache.
const storeCacheSize = 64 << 20

// OpenPebbleStore opens (creating if needed) the embedded on-disk datastore
// in dir: pebble through go-ds-pebble, with Bloom filters and a 64 MB block
// cache for lookups by hash. Writes are not synced one by one: the DAG syncs
// after ProcessBlocks, and its writer syncs what CommitBlocks and
// CommitChecked committed (the sync manager, within 250 ms). The caller
// closes the store after everything using it is done.
//
// A directory whose lock is held by another process is refused with an error
// wrapping ErrStoreLocked. A damaged store (such as a write-ahead log that no
// longer reads back where it had been synced) is refused with an error
// wrapping ErrStoreDamaged that tells the operator what to do. Neither
// refusal changes the directory.
func OpenPebbleStore(dir string) (*pebbleds.Datastore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dag: creating store directory: %w", err)
	}
	// Taking the lock here, before pebble reads anything, is what tells a
	// held lock apart from every other open error.
	lock, err := pebble.LockDirectory(dir, vfs.Default)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) { // creating the LOCK file failed: not a lock conflict
			return nil, fmt.Errorf("dag: opening store in %s: %w", dir, err)
		}
		return nil, fmt.Errorf("dag: opening store in %s: %w (is another dagnode using it?): %w", dir, ErrStoreLocked, err)
	}
	// Open takes its own reference on the lock and the DB drops it on Close
	// (or Open drops it on failure); this drops ours, so the file lock is
	// released exactly when the store is closed or fails to open.
	defer lock.Close()
	opts := &pebble.Options{
		FormatMajorVersion: storeFormat,
		Lock:               lock,
	}
	// Blocks are looked up by hash, at random: without a filter a lookup
	// reads a data block of every table whose key range covers the hash
	// (every table of L0, and one per level below). A Bloom filter of 10
	// bits per key (~1% false positives) skips those that do not hold it;
	// set on L0, it applies to every level.
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	// Serving a sync reads blocks by hash, at random. Pebble's default
	// block cache (8 MB, sharded) kept missing a third of the lookups on a
	// DAG of 2 MB of blocks; 64 MB holds the blocks of a 100k-block DAG
	// (sync 10k: 0.55 -> 0.69 of the import limit). It fills only as blocks
	// are read, so an idle node does not pay for it.
	opts.CacheSize = storeCacheSize
	s, err := pebbleds.NewDatastore(dir, pebbleds.WithPebbleOpts(opts))
	if err != nil {
		if pebble.IsCorruptionError(err) { // a cockroachdb mark: the standard errors.Is misses it
			return nil, fmt.Errorf("dag: opening store in %s: %w: part of it that was written and synced no longer "+
				"reads back (disk or file damage), so opening it would silently lose acknowledged blocks; "+
				"stop, move %s aside (keep it for inspection) and restart to sync the DAG from peers again, "+
				"or restore it from a backup: %w", dir, ErrStoreDamaged, dir, err)
		}
		return nil, fmt.Errorf("dag: opening store in %s: %w", dir, err)
	}
	return s, nil
}
