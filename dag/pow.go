package dag

import (
	"math/big"
	"sync/atomic"
)

// CompactToBig converts a compact difficulty ("bits", as in Bitcoin) to the
// target it stands for: the top byte is a base-256 exponent, the low 23 bits a
// mantissa, bit 23 a sign.
func CompactToBig(compact uint32) *big.Int {
	mantissa := compact & 0x007fffff
	negative := compact&0x00800000 != 0
	exponent := uint(compact >> 24)
	var n *big.Int
	if exponent <= 3 {
		mantissa >>= 8 * (3 - exponent)
		n = big.NewInt(int64(mantissa))
	} else {
		n = big.NewInt(int64(mantissa))
		n.Lsh(n, 8*(exponent-3))
	}
	if negative {
		n.Neg(n)
	}
	return n
}

// BigToCompact converts a non-negative target to compact form, rounding down.
func BigToCompact(n *big.Int) uint32 {
	if n.Sign() == 0 {
		return 0
	}
	var mantissa uint32
	exponent := uint(len(n.Bytes()))
	if exponent <= 3 {
		mantissa = uint32(n.Bits()[0])
		mantissa <<= 8 * (3 - exponent)
	} else {
		t := new(big.Int).Rsh(n, 8*(exponent-3))
		mantissa = uint32(t.Bits()[0])
	}
	// The sign bit must stay clear: shift the mantissa down a byte instead.
	if mantissa&0x00800000 != 0 {
		mantissa >>= 8
		exponent++
	}
	return uint32(exponent<<24) | mantissa
}

// targetHash returns a positive target as 32 big-endian bytes, so a block hash
// meets it when bytes.Compare(hash, target) <= 0. Targets of 2^256 or more
// saturate to all ones.
func targetHash(t *big.Int) Hash {
	var h Hash
	if t.Sign() <= 0 {
		return h
	}
	if t.BitLen() > 256 {
		for i := range h {
			h[i] = 0xff
		}
		return h
	}
	t.FillBytes(h[:])
	return h
}

// TargetFromBits returns the target of compact bits as 32 big-endian bytes, for
// fast comparison with hashes. ok is false when bits are negative, zero or
// overflow 256 bits.
func TargetFromBits(bits uint32) (target Hash, ok bool) {
	t := sharedTarget(bits)
	if t.Sign() <= 0 || t.BitLen() > 256 {
		return ZeroHash, false
	}
	return targetHash(t), true
}

// MeetsTarget reports whether hash, read big-endian, is at most target.
func MeetsTarget(hash, target *Hash) bool {
	for i := 0; i < HashSize; i++ {
		if hash[i] != target[i] {
			return hash[i] < target[i]
		}
	}
	return true
}

var oneLsh256 = new(big.Int).Lsh(big.NewInt(1), 256)

// Work returns the expected number of hashes needed to meet the target of
// bits: 2^256 / (target + 1). It is zero for invalid bits. The result is
// the caller's to change.
func Work(bits uint32) *big.Int { return new(big.Int).Set(sharedWork(bits)) }

// bitsCache holds values recently computed from compact bits, direct-mapped
// by bits: the blocks of a DAG share a few difficulties, and the targets and
// work of each block (and of its difficulty window, up to 128 blocks) were
// a division or a shift, and allocations, per use. Fixed size, so bits
// chosen by peers cannot grow it. The values are shared and never changed.
type bitsCache struct {
	slots   [64]atomic.Pointer[bitsEntry]
	compute func(bits uint32) *big.Int
}

type bitsEntry struct {
	bits  uint32
	value *big.Int
}

func (c *bitsCache) get(bits uint32) *big.Int {
	slot := &c.slots[(bits^bits>>11^bits>>24)%uint32(len(c.slots))]
	if e := slot.Load(); e != nil && e.bits == bits {
		return e.value
	}
	v := c.compute(bits)
	slot.Store(&bitsEntry{bits: bits, value: v})
	return v
}

var (
	works   = bitsCache{compute: computeWork}
	targets = bitsCache{compute: CompactToBig}
)

// sharedWork is Work and sharedTarget CompactToBig for the DAG's own
// read-only use: the values are shared and must not be changed.
func sharedWork(bits uint32) *big.Int   { return works.get(bits) }
func sharedTarget(bits uint32) *big.Int { return targets.get(bits) }

func computeWork(bits uint32) *big.Int {
	t := CompactToBig(bits)
	if t.Sign() <= 0 {
		return new(big.Int)
	}
	d := new(big.Int).Add(t, big.NewInt(1))
	return d.Div(oneLsh256, d)
}
