package dag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"
)

// GHOSTDAG (Sompolinsky, Wyborski, Zohar: "PHANTOM GHOSTDAG: a scalable
// generalization of Nakamoto consensus", 2021), as kaspad implements it.
// Every block, once, when it is added:
//
//   - its selected parent is the parent with the most blue work, ties to the
//     smaller hash (better);
//   - its merge set is its past minus its selected parent's past: the
//     selected parent, then every other block that enters the past with it;
//   - the merge set's other blocks, in ascending order of (blue work, then
//     the larger hash first), are coloured greedily: a candidate is blue if
//     the block's blues stay a k-cluster, i.e. the candidate has at most k
//     blues in its anticone and no blue in its anticone already has k, and
//     the block has fewer than k+1 merge-set blues; else it is red;
//   - its blue score is its selected parent's plus the number of merge-set
//     blues, its blue work its selected parent's plus their work: the blue
//     blocks of its past, by count and by work.
//
// Blue work grows along every edge (a block's exceeds its selected parent's,
// which is its parents' greatest), so sorting by it is a topological order.
// The anticone queries are reachability queries (reachability.go); a
// candidate's check walks down the selected chain only until it meets a
// block in the candidate's past, so the cost is O(k × merge set) queries.

// anticoneSize is a blue's number of blues in its anticone, as seen by the
// block that records it. A block records the sizes of its merge-set blues
// and of older blues whose anticone its merge set grew; the size of a blue
// in a block's view is the first record found walking down its selected
// chain.
type anticoneSize struct {
	node *blockNode
	size uint8
}

// better reports whether a is preferred to b as a selected parent: more
// blue work, then the smaller hash.
func better(a, b *blockNode) bool {
	if c := a.blueWork.Cmp(b.blueWork); c != 0 {
		return c > 0
	}
	return a.hash.Less(b.hash)
}

// compareCandidates orders merge-set candidates: the least preferred first.
func compareCandidates(a, b *blockNode) int {
	switch {
	case a == b:
		return 0
	case better(b, a):
		return -1
	}
	return 1
}

// selectParent returns the most preferred of parents.
func selectParent(parents []*blockNode) *blockNode {
	best := parents[0]
	for _, p := range parents[1:] {
		if better(p, best) {
			best = p
		}
	}
	return best
}

// errMergeSetTooBig stops a merge set walk past the limit.
var errMergeSetTooBig = errors.New("merge set too big")

// mergeSet returns the merge set of a block with these parents and selected
// parent sp, without sp, in walk order: the blocks in the past of parents
// (parents included) that are neither sp nor in its past. It stops with
// errMergeSetTooBig once the set, with sp, would exceed limit. Called with
// the lock held; every parent must be indexed.
func mergeSet(sp *blockNode, parents []*blockNode, limit int) ([]*blockNode, error) {
	if len(parents) == 1 { // a chain block: the merge set is sp alone
		return nil, nil
	}
	out := make([]*blockNode, 0, 2*len(parents))
	var seen nodeSet
	seen.list = seen.small[:0]
	for _, p := range parents {
		if p != sp {
			seen.add(p)
			out = append(out, p)
		}
	}
	for i := 0; i < len(out); i++ {
		if len(out)+1 > limit {
			return nil, errMergeSetTooBig
		}
		for _, q := range out[i].parents {
			if seen.add(q) && !isAncestorOrSelf(q, sp) {
				out = append(out, q)
			}
		}
	}
	if len(out)+1 > limit {
		return nil, errMergeSetTooBig
	}
	return out, nil
}

// nodeSet is a set of nodes: a short list while small (merge sets usually
// are), a map past nodeSetListMax.
type nodeSet struct {
	list  []*blockNode
	m     map[*blockNode]struct{}
	small [16]*blockNode // list's first backing array
}

const nodeSetListMax = 32

// add adds n and reports whether it was new.
func (s *nodeSet) add(n *blockNode) bool {
	if s.m != nil {
		if _, ok := s.m[n]; ok {
			return false
		}
		s.m[n] = struct{}{}
		return true
	}
	if slices.Contains(s.list, n) {
		return false
	}
	s.list = append(s.list, n)
	if len(s.list) > nodeSetListMax {
		s.m = make(map[*blockNode]struct{}, 4*nodeSetListMax)
		for _, x := range s.list {
			s.m[x] = struct{}{}
		}
	}
	return true
}

// colour computes n's GHOSTDAG data from its selected parent sp and the rest
// of its merge set (as mergeSet returns it; it is sorted in place). n need
// not be indexed: it may be a new block or the virtual block.
func colour(n, sp *blockNode, rest []*blockNode, k int) {
	slices.SortFunc(rest, compareCandidates)
	n.selectedParent = sp
	n.blues = append(make([]*blockNode, 0, min(len(rest), k)+1), sp)
	n.reds = nil
	n.anticone = append(make([]anticoneSize, 0, 1+2*len(rest)), anticoneSize{node: sp})
	var buf [2 * nodeSetListMax]anticoneSize
	for _, c := range rest {
		scratch, ok := n.blueCandidate(c, k, buf[:0])
		if !ok {
			n.reds = append(n.reds, c)
			continue
		}
		n.blues = append(n.blues, c)
		n.setAnticone(c, uint8(len(scratch)))
		for _, e := range scratch {
			n.setAnticone(e.node, e.size+1)
		}
	}
	n.setScores()
}

// setScores derives blue score, blue work, past size and chain depth from
// the selected parent and the merge set.
func (n *blockNode) setScores() {
	sp := n.selectedParent
	if sp == nil {
		n.blueScore, n.blueWork, n.pastSize, n.chainDepth = 0, new(big.Int), 0, 0
		return
	}
	work := new(big.Int).Set(sp.blueWork)
	for _, b := range n.blues {
		work.Add(work, b.work)
	}
	n.blueWork = work
	n.blueScore = sp.blueScore + uint64(len(n.blues))
	n.pastSize = sp.pastSize + int64(len(n.blues)+len(n.reds))
	n.chainDepth = sp.chainDepth + 1
}

func (n *blockNode) setAnticone(b *blockNode, size uint8) {
	for i := range n.anticone {
		if n.anticone[i].node == b {
			n.anticone[i].size = size
			return
		}
	}
	n.anticone = append(n.anticone, anticoneSize{node: b, size: size})
}

// blueCandidate decides whether candidate c of n's merge set can be blue:
// walking down n's selected chain, every blue of a chain block that is not
// in c's past is in c's anticone; c is red once those exceed k or one of
// them already has k blues in its anticone. The walk ends at the first
// chain block in c's past: every blue below it is in c's past too. It
// returns, appended to scratch, the blues in c's anticone with their sizes
// before c (their number is c's anticone size).
func (n *blockNode) blueCandidate(c *blockNode, k int, scratch []anticoneSize) ([]anticoneSize, bool) {
	if len(n.blues) == k+1 {
		return scratch, false
	}
	for chain := n; chain != nil; chain = chain.selectedParent {
		if chain != n && isAncestorOrSelf(chain, c) {
			break
		}
		for _, b := range chain.blues {
			if isAncestorOrSelf(b, c) {
				continue
			}
			size := n.blueAnticoneSize(b, k)
			scratch = append(scratch, anticoneSize{node: b, size: size})
			if len(scratch) > k || int(size) >= k {
				return scratch, false
			}
		}
	}
	return scratch, true
}

// blueAnticoneSize returns the anticone size of blue b in n's view: the
// first record down n's selected chain. Every blue of the chain has one (the
// block that merged it recorded it); k, which makes b's anticone full, is
// returned only if the data is broken.
func (n *blockNode) blueAnticoneSize(b *blockNode, k int) uint8 {
	for c := n; c != nil; c = c.selectedParent {
		for _, e := range c.anticone {
			if e.node == b {
				return e.size
			}
		}
	}
	return uint8(k)
}

// GHOSTDAG data encoding, stored after the header in a block's height entry
// (see store.go): a format byte, then the merge-set blues (selected parent
// first), the merge-set reds and the anticone records, each list a uvarint
// count and its entries. An entry names a block by reference: a byte below
// refBlue is the index of one of the block's parents, refBlue+i the i-th
// merge-set blue (records only), refHash a 32-byte hash that follows. A
// record adds its size byte. Most entries are parents or the block's own
// blues, so an entry costs a byte or two. Everything else (scores, past
// size, depth) is derived from these and the parents.
const (
	ghostdagFormat = 1
	refBlue        = 0x40 // MaxParents < refBlue; k+1 blues fit below refHash
	refHash        = 0xff
)

func appendRef(buf []byte, n, m *blockNode, blues bool) []byte {
	if i := slices.Index(n.parents, m); i >= 0 {
		return append(buf, byte(i))
	}
	if blues {
		if i := slices.Index(n.blues, m); i >= 0 && i < refHash-refBlue {
			return append(buf, byte(refBlue+i))
		}
	}
	return append(append(buf, refHash), m.hash[:]...)
}

// refSize is the bytes past the reference byte that naming m from n takes
// at most.
func refSize(n, m *blockNode) int {
	if slices.Contains(n.parents, m) || slices.Contains(n.blues, m) {
		return 0
	}
	return HashSize
}

// appendGhostdag appends n's GHOSTDAG data to buf.
func appendGhostdag(buf []byte, n *blockNode) []byte {
	size := 4
	for _, l := range [][]*blockNode{n.blues, n.reds} {
		for _, m := range l {
			size += 1 + refSize(n, m)
		}
	}
	for _, e := range n.anticone {
		size += 2 + refSize(n, e.node)
	}
	buf = slices.Grow(buf, size)
	buf = append(buf, ghostdagFormat)
	buf = binary.AppendUvarint(buf, uint64(len(n.blues)))
	for _, b := range n.blues {
		buf = appendRef(buf, n, b, false)
	}
	buf = binary.AppendUvarint(buf, uint64(len(n.reds)))
	for _, b := range n.reds {
		buf = appendRef(buf, n, b, false)
	}
	buf = binary.AppendUvarint(buf, uint64(len(n.anticone)))
	for _, e := range n.anticone {
		buf = appendRef(buf, n, e.node, true)
		buf = append(buf, e.size)
	}
	return buf
}

// decodeGhostdag reads n's stored GHOSTDAG data (n's parents set),
// resolving hashes through index (every block named is in n's past, so it
// is loaded first).
func decodeGhostdag(b []byte, n *blockNode, index map[Hash]*blockNode, limit int) error {
	if len(b) == 0 || b[0] != ghostdagFormat {
		return errors.New("unknown GHOSTDAG data format")
	}
	b = b[1:]
	errTruncated := errors.New("GHOSTDAG data truncated")
	count := func(max int) (int, error) {
		c, l := binary.Uvarint(b)
		if l <= 0 || c > uint64(max) {
			return 0, errTruncated
		}
		b = b[l:]
		return int(c), nil
	}
	ref := func(blues bool) (*blockNode, error) {
		if len(b) == 0 {
			return nil, errTruncated
		}
		r := b[0]
		b = b[1:]
		switch {
		case int(r) < len(n.parents):
			return n.parents[r], nil
		case blues && r >= refBlue && int(r-refBlue) < len(n.blues):
			return n.blues[r-refBlue], nil
		case r != refHash:
			return nil, fmt.Errorf("bad block reference %#x", r)
		case len(b) < HashSize:
			return nil, errTruncated
		}
		m := index[Hash(b[:HashSize])]
		if m == nil {
			return nil, fmt.Errorf("GHOSTDAG data names unknown block %x", b[:HashSize])
		}
		b = b[HashSize:]
		return m, nil
	}
	list := func(max int) ([]*blockNode, error) {
		c, err := count(max)
		if err != nil {
			return nil, err
		}
		out := make([]*blockNode, c)
		for i := range out {
			if out[i], err = ref(false); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	var err error
	if n.blues, err = list(limit); err != nil {
		return err
	}
	if n.reds, err = list(limit - len(n.blues)); err != nil {
		return err
	}
	if len(n.reds) == 0 {
		n.reds = nil
	}
	c, err := count(limit * (limit + 1))
	if err != nil {
		return err
	}
	n.anticone = make([]anticoneSize, c)
	for i := range n.anticone {
		if n.anticone[i].node, err = ref(true); err != nil {
			return err
		}
		if len(b) == 0 {
			return errTruncated
		}
		n.anticone[i].size, b = b[0], b[1:]
	}
	if len(b) != 0 {
		return fmt.Errorf("%d trailing bytes after GHOSTDAG data", len(b))
	}
	if len(n.parents) == 0 {
		if len(n.blues) != 0 || len(n.reds) != 0 {
			return errors.New("the genesis has a merge set")
		}
		n.selectedParent = nil
	} else {
		if len(n.blues) == 0 || !slices.Contains(n.parents, n.blues[0]) {
			return errors.New("the first merge-set blue is not a parent")
		}
		n.selectedParent = n.blues[0]
	}
	n.setScores()
	return nil
}

// sameGhostdag compares the GHOSTDAG data of two nodes of different indexes
// by hash: Verify's check against a recomputation.
func sameGhostdag(a, b *blockNode) error {
	hashes := func(ns []*blockNode) []Hash {
		out := make([]Hash, len(ns))
		for i, n := range ns {
			out[i] = n.hash
		}
		return out
	}
	switch {
	case !slices.Equal(hashes(a.blues), hashes(b.blues)):
		return fmt.Errorf("merge-set blues %x, recomputed %x", hashes(a.blues), hashes(b.blues))
	case !slices.Equal(hashes(a.reds), hashes(b.reds)):
		return fmt.Errorf("merge-set reds %x, recomputed %x", hashes(a.reds), hashes(b.reds))
	case a.blueScore != b.blueScore || a.blueWork.Cmp(b.blueWork) != 0:
		return fmt.Errorf("blue score %d work %s, recomputed %d %s", a.blueScore, a.blueWork, b.blueScore, b.blueWork)
	case len(a.anticone) != len(b.anticone):
		return fmt.Errorf("%d anticone records, recomputed %d", len(a.anticone), len(b.anticone))
	}
	for i := range a.anticone {
		if a.anticone[i].node.hash != b.anticone[i].node.hash || a.anticone[i].size != b.anticone[i].size {
			return fmt.Errorf("anticone record %d differs from the recomputation", i)
		}
	}
	return nil
}

// byBlueWorkDesc orders blocks most preferred first.
func byBlueWorkDesc(a, b *blockNode) int { return -compareCandidates(a, b) }
