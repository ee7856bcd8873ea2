package dag

import (
	"math/big"
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
	t := CompactToBig(bits)
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
// bits: 2^256 / (target + 1). It is zero for invalid bits.
func Work(bits uint32) *big.Int {
	t := CompactToBig(bits)
	if t.Sign() <= 0 {
		return new(big.Int)
	}
	d := new(big.Int).Add(t, big.NewInt(1))
	return d.Div(oneLsh256, d)
}
