package dag

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	pebbleds "github.com/ipfs/go-ds-pebble"
)

// Storage layout in the datastore. The blocks of one ProcessBlocks call are
// written by one atomic batch (each block, its height entry, the tip
// changes), so a reopened store is always a consistent DAG; children are
// derived from parents when loading.
//
//	/dag/meta/genesis           genesis hash (refuses a store of another network)
//	/dag/block/<height>/<hash>  the encoded block, in height order: a sync
//	                            reads blocks parents first, so its lookups
//	                            fall on neighbouring keys (a few cached reads
//	                            per store block, not one disk read per block)
//	/dag/hgt/<height>/<hash>    the encoded header, then the block's GHOSTDAG
//	                            data (ghostdag.go); height as 16 hex digits so
//	                            keys sort by height and a load sees parents first
//	/dag/tip/<hash>             empty: the block has no children
//
// Stores written before the blocks were kept in height order hold them under
// /dag/blk/<hash>; Open moves them (moveLegacyBlocks).
const (
	prefixBlock       = "/dag/block/"
	prefixLegacyBlock = "/dag/blk/"
	prefixHeight      = "/dag/hgt/"
	prefixTip         = "/dag/tip/"
	keyGenesis        = "/dag/meta/genesis"
)

func tipKey(h Hash) ds.Key { return ds.RawKey(hashKey(prefixTip, -1, h)) }

// heightKey is the height entry's key, blockKey the block's. Heights are
// never negative (a key that says otherwise does not parse).
func heightKey(height int64, h Hash) ds.Key { return ds.RawKey(hashKey(prefixHeight, height, h)) }
func blockKey(height int64, h Hash) ds.Key  { return ds.RawKey(hashKey(prefixBlock, height, h)) }

func legacyBlockKey(h Hash) ds.Key { return ds.RawKey(hashKey(prefixLegacyBlock, -1, h)) }

const hexDigits = "0123456789abcdef"

// hashKey is prefix, then height as 16 hex digits and a slash if height is
// not negative, then the hash in hex, built with one allocation (keys are
// made several times per block).
func hashKey(prefix string, height int64, h Hash) string {
	n := len(prefix) + 2*HashSize
	if height >= 0 {
		n += 17
	}
	var sb strings.Builder
	sb.Grow(n)
	sb.WriteString(prefix)
	if height >= 0 {
		for shift := 60; shift >= 0; shift -= 4 {
			sb.WriteByte(hexDigits[height>>shift&0xf])
		}
		sb.WriteByte('/')
	}
	for _, c := range h {
		sb.WriteByte(hexDigits[c>>4])
		sb.WriteByte(hexDigits[c&0xf])
	}
	return sb.String()
}

// parseHeightKey parses a key made by heightKey or blockKey (prefix says
// which).
func parseHeightKey(k, prefix string) (int64, Hash, error) {
	rest, ok := strings.CutPrefix(k, prefix)
	hs, hash, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return 0, ZeroHash, fmt.Errorf("dag: bad height key %q", k)
	}
	height, err := strconv.ParseInt(hs, 16, 64)
	if err != nil {
		return 0, ZeroHash, fmt.Errorf("dag: bad height key %q: %w", k, err)
	}
	if height < 0 {
		return 0, ZeroHash, fmt.Errorf("dag: bad height key %q: negative height", k)
	}
	h, err := ParseHash(hash)
	return height, h, err
}

func parseHashKey(k, prefix string) (Hash, error) {
	rest, ok := strings.CutPrefix(k, prefix)
	if !ok {
		return ZeroHash, fmt.Errorf("dag: bad key %q", k)
	}
	return ParseHash(rest)
}

// putBlock puts a block and its index entries into a batch (the caller
// commits and syncs). entry is the height entry: header and GHOSTDAG data.
func putBlock(ctx context.Context, b ds.Batch, raw []byte, n *blockNode, entry []byte, formerTips []Hash) error {
	if err := b.Put(ctx, blockKey(n.height, n.hash), raw); err != nil {
		return err
	}
	if err := b.Put(ctx, heightKey(n.height, n.hash), entry); err != nil {
		return err
	}
	for _, t := range formerTips {
		if err := b.Delete(ctx, tipKey(t)); err != nil {
			return err
		}
	}
	return b.Put(ctx, tipKey(n.hash), nil)
}

// writeLegacyGhostdag adds GHOSTDAG data to the height entries of a store
// written before it existed, in one batch, and syncs.
func (d *DAG) writeLegacyGhostdag(ctx context.Context, nodes []*blockNode) error {
	b, err := d.store.Batch(ctx)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		raw, err := d.store.Get(ctx, heightKey(n.height, n.hash))
		if err != nil {
			return err
		}
		if err := b.Put(ctx, heightKey(n.height, n.hash), appendGhostdag(raw, n)); err != nil {
			return err
		}
	}
	if err := b.Commit(ctx); err != nil {
		return err
	}
	d.log.Info("dag stored GHOSTDAG data computed for an older store", "blocks", len(nodes))
	return d.store.Sync(ctx, ds.RawKey("/dag"))
}

// moveLegacyBlocks moves the blocks of a store written before they were
// kept in height order from /dag/blk/<hash> to /dag/block/<height>/<hash>,
// legacyMoveBatch at a time: each batch puts the new keys and deletes the
// old ones atomically, so a move cut short by a crash goes on at the next
// Open. Called from load, once the index is built.
func (d *DAG) moveLegacyBlocks(ctx context.Context) error {
	var hashes []Hash
	err := queryKeys(ctx, d.store, prefixLegacyBlock, true, func(key string, _ []byte) error {
		h, err := parseHashKey(key, prefixLegacyBlock)
		if err != nil {
			return err
		}
		if d.index[h] == nil {
			return fmt.Errorf("block %s stored without its height entry", h)
		}
		hashes = append(hashes, h)
		return nil
	})
	if err != nil || len(hashes) == 0 {
		return err
	}
	for chunk := range slices.Chunk(hashes, legacyMoveBatch) {
		b, err := d.store.Batch(ctx)
		if err != nil {
			return err
		}
		for _, h := range chunk {
			raw, err := d.store.Get(ctx, legacyBlockKey(h))
			if err != nil {
				return err
			}
			if err := b.Put(ctx, blockKey(d.index[h].height, h), raw); err != nil {
				return err
			}
			if err := b.Delete(ctx, legacyBlockKey(h)); err != nil {
				return err
			}
		}
		if err := b.Commit(ctx); err != nil {
			return err
		}
	}
	d.log.Info("dag moved blocks into height order", "blocks", len(hashes))
	return d.store.Sync(ctx, ds.RawKey("/dag"))
}

// legacyMoveBatch is how many blocks moveLegacyBlocks moves per batch.
const legacyMoveBatch = 4096

// queryKeys runs a prefix query and calls fn for each entry in key order.
func queryKeys(ctx context.Context, store ds.Datastore, prefix string, keysOnly bool, fn func(key string, value []byte) error) error {
	res, err := store.Query(ctx, query.Query{Prefix: prefix, KeysOnly: keysOnly, Orders: []query.Order{query.OrderByKey{}}})
	if err != nil {
		return err
	}
	defer res.Close()
	for {
		r, ok := res.NextSync()
		if !ok {
			return nil
		}
		if r.Error != nil {
			return r.Error
		}
		if err := fn(r.Key, r.Value); err != nil {
			return err
		}
	}
}

// rangeScanMax bounds how many keys a BlocksBytes scan may pass over for
// each block asked: beyond it, lookups one by one are cheaper.
const rangeScanMax = 2

// BlocksBytes calls fn with the stored encoding of each block of hashes the
// DAG holds, in the order given, and returns the hashes it does not hold.
// raw is valid only during the call. When the blocks lie close together in
// height (a sync batch, asked parents first), they are read in one ordered
// scan of the store's height-ordered blocks, not one lookup each.
func (d *DAG) BlocksBytes(ctx context.Context, hashes []Hash, fn func(h Hash, raw []byte) error) (missing []Hash, err error) {
	type want struct {
		i      int
		height int64
	}
	wants := make([]want, 0, len(hashes))
	var lo, hi int64
	d.mu.RLock()
	for i, h := range hashes {
		n := d.index[h]
		if n == nil {
			missing = append(missing, h)
			continue
		}
		if len(wants) == 0 || n.height < lo {
			lo = n.height
		}
		if len(wants) == 0 || n.height > hi {
			hi = n.height
		}
		wants = append(wants, want{i, n.height})
	}
	inRange := 0
	if len(wants) > 1 {
		for h := lo; h <= hi && inRange <= rangeScanMax*len(wants); h++ {
			inRange += len(d.byHeight[h])
		}
	}
	d.mu.RUnlock()

	db, scannable := d.store.(*pebbleds.Datastore)
	if len(wants) < 2 || !scannable || inRange > rangeScanMax*len(wants) {
		for _, w := range wants {
			raw, err := d.readBlock(ctx, w.height, hashes[w.i])
			if err != nil {
				return missing, err
			}
			if err := fn(hashes[w.i], raw); err != nil {
				return missing, err
			}
		}
		return missing, nil
	}
	// One scan over the heights asked; the values are kept (copied: the
	// iterator reuses its buffers) until each one's turn comes. A hash
	// asked twice is read once and handed over twice.
	raws := make(map[Hash][]byte, len(wants))
	for _, w := range wants {
		raws[hashes[w.i]] = nil
	}
	it, err := db.DB.NewIter(&pebble.IterOptions{
		LowerBound: []byte(hashKey(prefixBlock, lo, ZeroHash)),
		UpperBound: []byte(hashKey(prefixBlock, hi+1, ZeroHash)),
	})
	if err != nil {
		return missing, fmt.Errorf("dag: reading blocks: %w", err)
	}
	found := 0
	for ok := it.First(); ok && found < len(raws); ok = it.Next() {
		_, h, err := parseHeightKey(string(it.Key()), prefixBlock)
		if err != nil {
			it.Close()
			return missing, fmt.Errorf("dag: reading blocks: %w", err)
		}
		if raw, wanted := raws[h]; wanted && raw == nil {
			raws[h] = bytes.Clone(it.Value())
			found++
		}
	}
	if err := it.Close(); err != nil {
		return missing, fmt.Errorf("dag: reading blocks: %w", err)
	}
	for _, w := range wants {
		h := hashes[w.i]
		if raws[h] == nil {
			return missing, fmt.Errorf("dag: reading block %s: %w", h, ds.ErrNotFound)
		}
		if err := fn(h, raws[h]); err != nil {
			return missing, err
		}
	}
	return missing, nil
}
