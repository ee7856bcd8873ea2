package dag

import (
	"math/big"
	"slices"
)

func maxHeight(parents []*blockNode) int64 {
	var m int64
	for _, p := range parents {
		m = max(m, p.height)
	}
	return m
}

// requiredBits returns the bits of a block whose selected parent is sp and
// whose merge set holds rest besides sp. Difficulty follows the block rate
// of the whole network, as kaspad's difficulty adjustment does: the window
// is the last DifficultyWindow blocks of the block's past in GHOSTDAG order
// (its merge set, most blue work first, then down the selected chain, each
// chain block then its own merge set), blue and red alike, so blocks from
// concurrent miners count as much as chain blocks. The target is the
// window's mean target scaled by the time the window took (latest minus
// earliest timestamp) against the time it should have taken (one
// TargetBlockInterval between consecutive blocks), the ratio clamped to
// MaxRetargetFactor and the result capped at the network's PowLimit. A
// window of fewer than two blocks keeps the selected parent's bits.
//
// It costs O(DifficultyWindow) and reads only the past of the block.
func (d *DAG) requiredBits(sp *blockNode, rest []*blockNode) uint32 {
	p := d.params
	if p.NoRetarget {
		return p.PowLimitBits
	}
	w := newWindow(p.DifficultyWindow)
	if w.takeAll(rest, nil) {
		for c := sp; c != nil; c = c.selectedParent {
			if !w.take(c) || !w.takeAll(c.blues[min(1, len(c.blues)):], c.reds) {
				break
			}
		}
	}
	if w.count < 2 {
		return sp.bits
	}
	expected := int64(w.count-1) * p.TargetBlockInterval.Milliseconds()
	actual := w.latest - w.earliest
	actual = max(actual, expected/MaxRetargetFactor)
	actual = min(actual, expected*MaxRetargetFactor)

	target := w.sum.Div(&w.sum, big.NewInt(int64(w.count)))
	target.Mul(target, big.NewInt(actual))
	target.Div(target, big.NewInt(expected))
	if target.Cmp(p.PowLimit) > 0 {
		target.Set(p.PowLimit)
	}
	return BigToCompact(target)
}

// window gathers the difficulty window's figures.
type window struct {
	size, count      int
	sum              big.Int
	earliest, latest int64
	scratch          []*blockNode
}

func newWindow(size int) *window { return &window{size: size} }

// take adds n and reports whether the window has room for more.
func (w *window) take(n *blockNode) bool {
	if w.count == 0 || n.timestamp < w.earliest {
		w.earliest = n.timestamp
	}
	if w.count == 0 || n.timestamp > w.latest {
		w.latest = n.timestamp
	}
	w.sum.Add(&w.sum, sharedTarget(n.bits))
	w.count++
	return w.count < w.size
}

// takeAll adds the blocks of a and b (one merge set), the most blue work
// first if not all fit, and reports whether the window has room for more.
func (w *window) takeAll(a, b []*blockNode) bool {
	if w.count+len(a)+len(b) > w.size {
		w.scratch = append(append(w.scratch[:0], a...), b...)
		slices.SortFunc(w.scratch, byBlueWorkDesc)
		a, b = w.scratch[:w.size-w.count], nil
	}
	for _, n := range a {
		w.take(n)
	}
	for _, n := range b {
		w.take(n)
	}
	return w.count < w.size
}
