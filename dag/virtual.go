package dag

import (
	"math/big"
	"slices"
	"sort"
)

// The virtual block is the block a miner would add now: its parents are the
// best tips (virtualParents), its GHOSTDAG data colours the whole DAG in its
// view, its blue work is the DAG's score, and its selected chain, each chain
// block preceded by the rest of its merge set, is the DAG's total order.
// It is recomputed under the write lock once per ProcessBlocks call, after
// its blocks are indexed.

// virtualCandidates bounds the tips tried as virtual parents: the best ones
// by blue work, so a DAG with many stale tips costs no more per block.
const virtualCandidates = 2 * MaxParents

// updateVirtual recomputes the virtual block and its selected chain. Called
// with mu held for writing.
func (d *DAG) updateVirtual() {
	tips := make([]*blockNode, 0, len(d.tips))
	for _, n := range d.tips {
		tips = append(tips, n)
	}
	slices.SortFunc(tips, byBlueWorkDesc)
	tips = tips[:min(len(tips), virtualCandidates)]
	sp := tips[0]
	parents := []*blockNode{sp}
	var rest []*blockNode
	for _, t := range tips[1:] {
		if len(parents) == MaxParents {
			break
		}
		r, err := mergeSet(sp, append(parents, t), d.params.MergeSetSizeLimit)
		if err != nil {
			continue // merging t would take the merge set over the limit
		}
		parents, rest = append(parents, t), r
	}
	v := &blockNode{parents: parents, height: maxHeight(parents) + 1}
	colour(v, sp, rest, d.params.K)
	d.virtual, d.virtualRest = v, rest

	// Move the chain: down from the new selected parent to the old chain,
	// then up again.
	var add []*blockNode
	n := sp
	for n != nil && (n.chainDepth >= int64(len(d.chain)) || d.chain[n.chainDepth] != n) {
		add = append(add, n)
		n = n.selectedParent
	}
	keep := 0
	if n != nil {
		keep = int(n.chainDepth) + 1
	}
	d.chain = d.chain[:keep]
	for i := len(add) - 1; i >= 0; i-- {
		d.chain = append(d.chain, add[i])
	}
	d.version.Add(1) // templates made before are stale
}

// colourOf returns a block's colour in the virtual's view, whether it is on
// the virtual's selected chain, and its position in the total order (-1 if
// the virtual does not merge it). The chain block that merged a block is
// the lowest chain block with the block in its past, found by binary search
// over the chain: O(log n) reachability queries. Called with the lock held.
func (d *DAG) colourOf(n *blockNode) (blue, inChain bool, order int64) {
	if n.chainDepth < int64(len(d.chain)) && d.chain[n.chainDepth] == n {
		return true, true, n.pastSize
	}
	i := sort.Search(len(d.chain), func(i int) bool { return isAncestorOrSelf(n, d.chain[i]) })
	merger := d.virtual
	if i < len(d.chain) {
		merger = d.chain[i]
	}
	rest := mergeSetRest(merger)
	at := slices.Index(rest, n)
	if at < 0 {
		return false, false, -1
	}
	return slices.Contains(merger.blues, n), false, merger.pastSize - int64(len(rest)) + int64(at)
}

// mergeSetRest returns a block's merge set without its selected parent, in
// the total order (ascending blue work).
func mergeSetRest(n *blockNode) []*blockNode {
	if len(n.blues) == 0 {
		return nil
	}
	rest := make([]*blockNode, 0, len(n.blues)-1+len(n.reds))
	rest = append(append(rest, n.blues[1:]...), n.reds...)
	slices.SortFunc(rest, compareCandidates)
	return rest
}

// OrderedBlock is one block of the total order.
type OrderedBlock struct {
	Hash Hash
	// Order is the block's position, from 0 (the genesis).
	Order int64
	// IsBlue is the block's colour in the virtual's view; IsInChain whether
	// it is on the virtual's selected chain.
	IsBlue    bool
	IsInChain bool
}

// Order returns up to count blocks of the DAG's total order from position
// from, and the order's length: the virtual's selected chain from the
// genesis, each chain block preceded by the rest of its merge set in
// ascending blue work (a topological order), then the rest of the virtual's
// merge set. Tips the virtual leaves out are not in it. Finding the start
// costs O(log n); each block listed O(1) amortised.
func (d *DAG) Order(from int64, count int) (blocks []OrderedBlock, total int64) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	total = d.virtual.pastSize
	if from < 0 || from >= total || count <= 0 {
		return nil, total
	}
	// The first chain block at or after from; the virtual past the chain.
	i := sort.Search(len(d.chain), func(i int) bool { return d.chain[i].pastSize >= from })
	for ; i <= len(d.chain) && len(blocks) < count; i++ {
		merger, start := d.virtual, int64(0)
		if i < len(d.chain) {
			merger = d.chain[i]
		}
		rest := mergeSetRest(merger)
		start = merger.pastSize - int64(len(rest))
		for j, m := range rest {
			if pos := start + int64(j); pos >= from && len(blocks) < count {
				blocks = append(blocks, OrderedBlock{Hash: m.hash, Order: pos, IsBlue: slices.Contains(merger.blues, m)})
			}
		}
		if i < len(d.chain) && merger.pastSize >= from && len(blocks) < count {
			blocks = append(blocks, OrderedBlock{Hash: merger.hash, Order: merger.pastSize, IsBlue: true, IsInChain: true})
		}
	}
	return blocks, total
}

// VirtualInfo is the virtual block's view of the DAG.
type VirtualInfo struct {
	// Parents are the virtual's parents (the next block's), sorted.
	Parents []Hash
	// SelectedParent is the tip the virtual's selected chain ends at.
	SelectedParent Hash
	// BlueScore and BlueWork count the DAG's blue blocks; BlueWork is the
	// DAG's score.
	BlueScore uint64
	BlueWork  *big.Int
	// MergeSetBlues and MergeSetReds are the virtual's merge set.
	MergeSetBlues []Hash
	MergeSetReds  []Hash
	// PastSize is the number of blocks in the total order (the DAA score).
	PastSize int64
	// Bits is the difficulty of the next block.
	Bits uint32
}

// Virtual returns the virtual block's view of the DAG.
func (d *DAG) Virtual() VirtualInfo {
	d.mu.RLock()
	defer d.mu.RUnlock()
	v := d.virtual
	info := VirtualInfo{
		Parents:        hashesOf(v.parents),
		SelectedParent: v.selectedParent.hash,
		BlueScore:      v.blueScore,
		BlueWork:       new(big.Int).Set(v.blueWork),
		MergeSetBlues:  hashesOf(v.blues),
		MergeSetReds:   hashesOf(v.reds),
		PastSize:       v.pastSize,
		Bits:           d.requiredBits(v.selectedParent, d.virtualRest),
	}
	slices.SortFunc(info.Parents, compareHash)
	return info
}

// BlockColour is a block's place in the virtual block's view.
type BlockColour struct {
	// Known is false for a block the DAG does not hold.
	Known bool
	// IsBlue and IsInChain as BlockInfo gives them; BlueScore is the
	// block's own.
	IsBlue, IsInChain bool
	BlueScore         uint64
}

// Colours returns the colours of many blocks under one read lock, without
// BlockInfo's copies: for views that recolour what they show as the
// selected chain moves.
func (d *DAG) Colours(hs []Hash) []BlockColour {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]BlockColour, len(hs))
	for i, h := range hs {
		if n := d.index[h]; n != nil {
			blue, inChain, _ := d.colourOf(n)
			out[i] = BlockColour{Known: true, IsBlue: blue, IsInChain: inChain, BlueScore: n.blueScore}
		}
	}
	return out
}
