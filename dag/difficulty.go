package dag

import (
	"math/big"
)

// selectParent returns the parent with the most chain work, breaking ties by
// the smaller hash. Difficulty and timestamps follow this selected-parent chain.
func selectParent(parents []*blockNode) *blockNode {
	best := parents[0]
	for _, p := range parents[1:] {
		if c := p.chainWork.Cmp(best.chainWork); c > 0 || (c == 0 && p.hash.Less(best.hash)) {
			best = p
		}
	}
	return best
}

func maxHeight(parents []*blockNode) int64 {
	var m int64
	for _, p := range parents {
		m = max(m, p.height)
	}
	return m
}

// requiredBits returns the bits a block with these parents must carry. The
// target changes only at heights that are multiples of RetargetInterval: it is
// the selected parent's target scaled by the time the selected-parent chain
// took to grow over the last interval, against the time it should have taken
// (TargetBlockInterval per height), the ratio clamped to MaxRetargetFactor and
// the result capped at the network's PowLimit.
func (d *DAG) requiredBits(parents []*blockNode) uint32 {
	p := d.params
	if p.NoRetarget {
		return p.PowLimitBits
	}
	sp := selectParent(parents)
	height := maxHeight(parents) + 1
	if height%p.RetargetInterval != 0 {
		return sp.bits
	}
	first := sp
	for i := int64(0); i < p.RetargetInterval && first.selectedParent != nil; i++ {
		first = first.selectedParent
	}
	heights := sp.height - first.height
	if heights <= 0 {
		return sp.bits
	}
	expected := heights * p.TargetBlockInterval.Milliseconds()
	actual := sp.timestamp - first.timestamp
	actual = max(actual, expected/MaxRetargetFactor)
	actual = min(actual, expected*MaxRetargetFactor)

	target := CompactToBig(sp.bits)
	target.Mul(target, big.NewInt(actual))
	target.Div(target, big.NewInt(expected))
	if target.Cmp(p.PowLimit) > 0 {
		target.Set(p.PowLimit)
	}
	return BigToCompact(target)
}
