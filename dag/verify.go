package dag

import (
	"bytes"
	"context"
	"fmt"
)

// Verify checks the stored DAG against its invariants, reading every key:
// each stored block decodes, hashes to its key and has a height entry; each
// height entry has its block; every parent is stored; heights are 1 + the
// greatest parent height; the stored tips are exactly the blocks without
// children; and the in-memory index agrees. It is slow (a full scan) and meant
// for tests and operators' checks.
func (d *DAG) Verify(ctx context.Context) error {
	d.mu.RLock()
	defer d.mu.RUnlock()

	blocks := make(map[Hash]*Header)
	headers := make(map[Hash][]byte)
	err := queryKeys(ctx, d.store, prefixBlock, false, func(key string, value []byte) error {
		h, err := parseHashKey(key, prefixBlock)
		if err != nil {
			return err
		}
		b, err := DecodeBlock(value)
		if err != nil {
			return fmt.Errorf("block %s: %w", h, err)
		}
		if got := b.Hash(); got != h {
			return fmt.Errorf("block stored under %s hashes to %s", h, got)
		}
		blocks[h] = &b.Header
		headers[h] = b.Header.AppendEncode(nil)
		return nil
	})
	if err != nil {
		return fmt.Errorf("dag verify: %w", err)
	}
	heights := make(map[Hash]int64)
	err = queryKeys(ctx, d.store, prefixHeight, false, func(key string, value []byte) error {
		height, h, err := parseHeightKey(key)
		if err != nil {
			return err
		}
		if blocks[h] == nil {
			return fmt.Errorf("height entry for %s without its block", h)
		}
		if !bytes.Equal(value, headers[h]) {
			return fmt.Errorf("height entry for %s holds another header", h)
		}
		heights[h] = height
		return nil
	})
	if err != nil {
		return fmt.Errorf("dag verify: %w", err)
	}
	hasChildren := make(map[Hash]bool)
	for h, hdr := range blocks {
		height, ok := heights[h]
		if !ok {
			return fmt.Errorf("dag verify: block %s has no height entry", h)
		}
		var want int64
		for _, p := range hdr.Parents {
			ph, ok := heights[p]
			if !ok {
				return fmt.Errorf("dag verify: block %s: parent %s not stored", h, p)
			}
			want = max(want, ph+1)
			hasChildren[p] = true
		}
		if height != want {
			return fmt.Errorf("dag verify: block %s at height %d, want %d", h, height, want)
		}
		n := d.index[h]
		if n == nil || n.height != height {
			return fmt.Errorf("dag verify: block %s stored but not indexed at height %d", h, height)
		}
	}
	if len(blocks) != len(d.index) {
		return fmt.Errorf("dag verify: %d blocks stored, %d indexed", len(blocks), len(d.index))
	}
	tips := 0
	err = queryKeys(ctx, d.store, prefixTip, true, func(key string, _ []byte) error {
		h, err := parseHashKey(key, prefixTip)
		if err != nil {
			return err
		}
		if blocks[h] == nil || hasChildren[h] {
			return fmt.Errorf("stored tip %s is not a childless block", h)
		}
		if d.tips[h] == nil {
			return fmt.Errorf("stored tip %s is not an indexed tip", h)
		}
		tips++
		return nil
	})
	if err != nil {
		return fmt.Errorf("dag verify: %w", err)
	}
	if want := len(blocks) - len(hasChildren); tips != want || tips != len(d.tips) {
		return fmt.Errorf("dag verify: %d tips stored, %d childless blocks, %d indexed tips", tips, want, len(d.tips))
	}
	return nil
}
