package dag

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math/big"
	"slices"
)

// Verify checks the stored DAG against its invariants, reading every key:
// each stored block decodes, hashes to its key and has a height entry; each
// height entry has its block's header; every parent is stored; heights are
// 1 + the greatest parent height; the stored tips are exactly the blocks
// without children; and the in-memory index agrees. It then recomputes
// GHOSTDAG from the headers alone, into a fresh index, and checks the stored
// and the in-memory GHOSTDAG data, the virtual block and the reachability
// index against it. It is slow (a full scan and a recomputation) and meant
// for tests and operators' checks.
func (d *DAG) Verify(ctx context.Context) error {
	d.mu.RLock()
	defer d.mu.RUnlock()

	blocks := make(map[Hash]*Header)
	headers := make(map[Hash][]byte)
	blockHeights := make(map[Hash]int64)
	err := queryKeys(ctx, d.store, prefixBlock, false, func(key string, value []byte) error {
		height, h, err := parseHeightKey(key, prefixBlock)
		if err != nil {
			return err
		}
		blockHeights[h] = height
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
	ghostdag := make(map[Hash][]byte)
	err = queryKeys(ctx, d.store, prefixHeight, false, func(key string, value []byte) error {
		height, h, err := parseHeightKey(key, prefixHeight)
		if err != nil {
			return err
		}
		if blocks[h] == nil {
			return fmt.Errorf("height entry for %s without its block", h)
		}
		if !bytes.HasPrefix(value, headers[h]) {
			return fmt.Errorf("height entry for %s holds another header", h)
		}
		heights[h] = height
		ghostdag[h] = value[len(headers[h]):]
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
		if blockHeights[h] != height {
			return fmt.Errorf("dag verify: block %s stored under height %d, its height entry says %d", h, blockHeights[h], height)
		}
		n := d.index[h]
		if n == nil || n.height != height {
			return fmt.Errorf("dag verify: block %s stored but not indexed at height %d", h, height)
		}
	}
	legacy := 0
	if err := queryKeys(ctx, d.store, prefixLegacyBlock, true, func(string, []byte) error { legacy++; return nil }); err != nil {
		return fmt.Errorf("dag verify: %w", err)
	}
	if legacy > 0 {
		return fmt.Errorf("dag verify: %d blocks left under the layout before height order", legacy)
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
	if err := d.verifyGhostdag(blocks, heights, ghostdag); err != nil {
		return fmt.Errorf("dag verify: %w", err)
	}
	return nil
}

// verifyGhostdag recomputes GHOSTDAG from the stored headers into a fresh
// index and compares. Called with the read lock held.
func (d *DAG) verifyGhostdag(headers map[Hash]*Header, heights map[Hash]int64, stored map[Hash][]byte) error {
	order := make([]Hash, 0, len(headers))
	for h := range headers {
		order = append(order, h)
	}
	slices.SortFunc(order, func(a, b Hash) int {
		if c := cmp.Compare(heights[a], heights[b]); c != 0 {
			return c
		}
		return compareHash(a, b)
	})
	fresh := &DAG{params: d.params, index: make(map[Hash]*blockNode), tips: make(map[Hash]*blockNode), totalWork: new(big.Int), reach: newReachability()}
	for _, h := range order {
		hdr := headers[h]
		parents := make([]*blockNode, len(hdr.Parents))
		for i, p := range hdr.Parents {
			parents[i] = fresh.index[p]
		}
		n := newNode(h, hdr, parents)
		fresh.computeGhostdag(n)
		fresh.addNode(n)

		live := d.index[h]
		if err := sameGhostdag(live, n); err != nil {
			return fmt.Errorf("block %s in memory: %w", h, err)
		}
		fromDisk := newNode(h, hdr, parents)
		if err := decodeGhostdag(stored[h], fromDisk, fresh.index, d.params.MergeSetSizeLimit); err != nil {
			return fmt.Errorf("block %s stored GHOSTDAG data: %w", h, err)
		}
		if err := sameGhostdag(fromDisk, n); err != nil {
			return fmt.Errorf("block %s stored: %w", h, err)
		}
	}
	fresh.updateVirtual()
	if err := sameGhostdag(d.virtual, fresh.virtual); err != nil {
		return fmt.Errorf("virtual block: %w", err)
	}
	if len(d.chain) != len(fresh.chain) || d.chain[len(d.chain)-1].hash != fresh.chain[len(fresh.chain)-1].hash {
		return fmt.Errorf("selected chain of %d blocks, recomputed %d", len(d.chain), len(fresh.chain))
	}
	// Reachability: every parent is in the past, and the live index answers
	// as the fresh one for each block against a spread of others.
	for i, h := range order {
		live, n := d.index[h], fresh.index[h]
		for _, p := range live.parents {
			if !isAncestorOrSelf(p, live) || isAncestorOrSelf(live, p) {
				return fmt.Errorf("reachability: parent %s of %s", p.hash, h)
			}
		}
		for j := 1; j <= 8 && j < len(order); j++ {
			o := order[(i*7919+j*104729)%len(order)]
			if isAncestorOrSelf(d.index[o], live) != isAncestorOrSelf(fresh.index[o], n) ||
				isAncestorOrSelf(live, d.index[o]) != isAncestorOrSelf(n, fresh.index[o]) {
				return fmt.Errorf("reachability: %s and %s disagree with the recomputation", h, o)
			}
		}
	}
	return nil
}
