package dag

import (
	"math"
	"slices"
)

// Reachability answers "is block A in the past of block B" without walking
// the DAG, as kaspad's reachability index does, on two structures:
//
//   - The selected-parent tree (every block's tree parent is its selected
//     parent) with each block's subtree as an interval of an Euler tour: a
//     block's enter and exit items sit in one ordered list, a new block's
//     pair is inserted just before its selected parent's exit, and A is a
//     tree ancestor of B iff A's interval holds B's. kaspad assigns interval
//     bounds itself and reindexes subtrees when a parent runs out of room;
//     here the list is an order-maintenance list (Bender et al., "Two
//     simplified algorithms for maintaining order in a list", 2002): labels
//     are 62-bit integers, an insert takes the middle of the gap, and a full
//     gap relabels the smallest enclosing aligned label range that is sparse
//     enough, in amortised O(log n) label writes per insert. Comparing
//     labels is O(1).
//   - The future covering set of each block A: the blocks that merged A
//     (A in their merge set, not through their selected parent), kept as an
//     antichain of the tree sorted by enter label. Every block in A's future
//     is in the tree subtree of one of them, or in A's own subtree, so a
//     query is one interval test plus a binary search: O(log |set|).
//
// Why the covering set is complete: for B with selected parent S, a block of
// B's past is S, in S's past (covered for S, hence for B, which is in S's
// subtree), or in B's merge set, and then B joins its covering set unless
// an element already covers B. Only the labels live in memory; the tree
// (selected parents) and the merge sets are stored, so Open rebuilds the
// index from stored GHOSTDAG data in one pass without recomputing it.
//
// Labels change only under the DAG's write lock (a relabel moves labels of
// many blocks at once, keeping their order), so readers holding the read
// lock see a consistent index.
type reachability struct {
	head, tail omItem // sentinels: labels 0 and omLimit
}

// omItem is one entry of the order-maintenance list: a block's enter or exit.
type omItem struct {
	label      uint64
	prev, next *omItem
}

const (
	omBits  = 62
	omLimit = uint64(1) << omBits
	// omDensity is T in Bender et al.: a range of 2^i labels is sparse enough
	// to relabel when it holds at most 2^i / T^i items. 1 < T < 2.
	omDensity = 1.4
)

// omMaxItems[i] is how many items a range of 2^i labels may hold and still
// be relabelled: 2^i / T^i.
var omMaxItems = func() (t [omBits + 1]float64) {
	for i := range t {
		t[i] = math.Ldexp(1, i) / math.Pow(omDensity, float64(i))
	}
	return t
}()

func newReachability() *reachability {
	r := &reachability{}
	r.tail.label = omLimit
	r.head.next, r.tail.prev = &r.tail, &r.head
	return r
}

// add inserts n into the tree under its selected parent (the genesis at the
// root) and puts n into the future covering set of each block it merges.
// n's GHOSTDAG data must be set.
func (r *reachability) add(n *blockNode) {
	if n.selectedParent == nil {
		r.insertAfter(r.tail.prev, &n.enter)
		r.insertAfter(&n.enter, &n.exit)
		return
	}
	sp := n.selectedParent
	r.insertAfter(sp.exit.prev, &n.enter)
	r.insertAfter(&n.enter, &n.exit)
	for _, m := range n.blues[1:] {
		m.addFutureCover(n)
	}
	for _, m := range n.reds {
		m.addFutureCover(n)
	}
}

// insertAfter links y after x and labels it.
func (r *reachability) insertAfter(x, y *omItem) {
	y.prev, y.next = x, x.next
	x.next.prev = y
	x.next = y
	if gap := y.next.label - x.label; gap >= 2 {
		y.label = x.label + gap/2
		return
	}
	r.relabel(y)
}

// relabel makes room for y (linked, unlabelled) by spreading the labels of
// the smallest aligned range around y's predecessor that is sparse enough.
func (r *reachability) relabel(y *omItem) {
	base := y.prev.label
	for i := 1; i <= omBits; i++ {
		size := uint64(1) << i
		lo := base &^ (size - 1)
		hi := lo + size
		first, last, count := y, y, uint64(1)
		for p := y.prev; p != nil && p.label >= lo; p = p.prev { // the head (label 0) stays first at lo
			first = p
			count++
		}
		for n := y.next; n != &r.tail && n.label < hi; n = n.next {
			last = n
			count++
		}
		if i < omBits && float64(count) > omMaxItems[i] {
			continue
		}
		step := size / count
		label := lo
		for it := first; ; it = it.next {
			it.label = label
			label += step
			if it == last {
				return
			}
		}
	}
}

// isTreeAncestorOrSelf reports whether a is b or an ancestor of b in the
// selected-parent tree.
func isTreeAncestorOrSelf(a, b *blockNode) bool {
	return a.enter.label <= b.enter.label && b.exit.label <= a.exit.label
}

// isAncestorOrSelf reports whether a is b or in the past of b. Both must be
// in the index.
func isAncestorOrSelf(a, b *blockNode) bool {
	if isTreeAncestorOrSelf(a, b) {
		return true
	}
	i := a.coverIndex(b)
	return i >= 0 && isTreeAncestorOrSelf(a.futureCover[i], b)
}

// coverIndex returns the index of the last element of n's future covering
// set that enters before b, or -1.
func (n *blockNode) coverIndex(b *blockNode) int {
	lo, hi := 0, len(n.futureCover) // the first element entering after b is in [lo, hi]
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if n.futureCover[mid].enter.label <= b.enter.label {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

// addFutureCover records that b (a new leaf of the tree) merged n.
func (n *blockNode) addFutureCover(b *blockNode) {
	i := n.coverIndex(b)
	if i >= 0 && isTreeAncestorOrSelf(n.futureCover[i], b) {
		return
	}
	n.futureCover = slices.Insert(n.futureCover, i+1, b)
}
