package dag

import (
	"cmp"
	"slices"
)

// HashHeight names a block and its height.
type HashHeight struct {
	Hash   Hash
	Height int64
}

// MaxLocatorTips bounds the tips a Locator names: a healthy DAG has a few
// tips (about one per concurrent miner); past that, the tips left out only
// make a peer list a few blocks we already hold.
const MaxLocatorTips = 64

// Locator describes the DAG to a peer in a few hashes, so that the peer can
// tell which of its blocks we lack (NotInPast): our tips (at most
// MaxLocatorTips, highest first), then blocks on the virtual's selected
// chain (the tip with the most blue work and its selected parents) at distances 1, 2, 4, 8, ... below it, ending with the
// genesis. The past of every hash in it is in our DAG, so a peer that knows
// some of them knows we hold their past; the doubling steps bound how much
// of a diverged branch the peer lists again to about as many blocks as the
// branch holds.
func (d *DAG) Locator() []Hash {
	d.mu.RLock()
	defer d.mu.RUnlock()
	tips := make([]*blockNode, 0, len(d.tips))
	for _, n := range d.tips {
		tips = append(tips, n)
	}
	slices.SortFunc(tips, func(a, b *blockNode) int {
		if c := cmp.Compare(b.height, a.height); c != 0 {
			return c
		}
		return byBlueWorkDesc(a, b)
	})
	heaviest := d.virtual.selectedParent
	tips = tips[:min(len(tips), MaxLocatorTips)]
	out := make([]Hash, 0, len(tips)+64)
	for _, n := range tips {
		out = append(out, n.hash)
	}
	for n, step := heaviest.selectedParent, 1; n != nil; step *= 2 {
		out = append(out, n.hash)
		for i := 0; i < step && n != nil; i++ {
			n = n.selectedParent
		}
	}
	if out[len(out)-1] != d.params.GenesisHash { // the genesis closes every locator
		out = append(out, d.params.GenesisHash)
	}
	return out
}

// NotInPast lists the blocks of this DAG that are not in the past of the
// known blocks named by have (the past of a block includes the block): what
// a peer whose DAG contains the past of each of those blocks may lack.
// Hashes we do not know are skipped; the genesis is always taken as known.
// The list is ordered by height, then hash, so parents come before their
// children, and holds at most limit blocks; more reports that blocks were
// left out (the lowest ones are kept, so the list stays closed under
// parents within what the peer holds).
//
// The walk goes down from our tips, by height, and stops at the past of
// have: it costs the blocks listed plus the blocks in the past of have
// above the lowest listed block, never the whole DAG for a peer that is
// nearly level with us. It holds the DAG's lock only to read the tips and
// find have: a block's parents never change, so the walk itself (the whole
// DAG, for a peer syncing from the genesis) never holds up the writer.
func (d *DAG) NotInPast(have []Hash, limit int) (blocks []HashHeight, more bool) {
	d.mu.RLock()
	genesis := d.index[d.params.GenesisHash]
	known := make([]*blockNode, 0, len(have))
	for _, h := range have {
		if n := d.index[h]; n != nil {
			known = append(known, n)
		}
	}
	tips := make([]*blockNode, 0, len(d.tips))
	for _, n := range d.tips {
		tips = append(tips, n)
	}
	d.mu.RUnlock()
	const (
		outside = 1 // reached from our tips, not (yet) known to be in the past of have
		inPast  = 2 // in the past of have
	)
	mark := make(map[*blockNode]uint8)
	pending := make(map[int64][]*blockNode) // marked, unprocessed nodes by height
	top, outsidePending := int64(-1), 0
	push := func(n *blockNode, m uint8) {
		old := mark[n]
		if old == inPast || old == m {
			return
		}
		if old == 0 {
			pending[n.height] = append(pending[n.height], n)
			top = max(top, n.height)
		} else { // outside becomes inPast
			outsidePending--
		}
		if m == outside {
			outsidePending++
		}
		mark[n] = m
	}
	push(genesis, inPast)
	for _, n := range known {
		push(n, inPast)
	}
	for _, n := range tips {
		push(n, outside)
	}
	var found []*blockNode
	for h := top; h >= 0 && outsidePending > 0; h-- {
		for _, n := range pending[h] {
			m := mark[n]
			if m == outside {
				found = append(found, n)
				outsidePending--
			}
			for _, p := range n.parents {
				push(p, m)
			}
		}
		delete(pending, h)
	}
	slices.SortFunc(found, func(a, b *blockNode) int {
		if c := cmp.Compare(a.height, b.height); c != 0 {
			return c
		}
		return compareHash(a.hash, b.hash)
	})
	if len(found) > limit {
		found, more = found[:limit], true
	}
	blocks = make([]HashHeight, len(found))
	for i, n := range found {
		blocks[i] = HashHeight{Hash: n.hash, Height: n.height}
	}
	return blocks, more
}
