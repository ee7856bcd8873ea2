package dag

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestWorkCache: cached work and targets equal the division for any bits, colliding
// slots included, and changing what Work returns changes no cached value.
func TestWorkCache(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	bits := []uint32{RegTestParams.PowLimitBits, MainNetParams.PowLimitBits, 0, 0x00800000, 0x1d00ffff}
	for range 2000 {
		bits = append(bits, rng.Uint32(), 0x1d000000|rng.Uint32N(1<<23), 0x207fffff-rng.Uint32N(64))
	}
	for range 2 {
		for _, b := range bits {
			if got, want := sharedWork(b), computeWork(b); got.Cmp(want) != 0 {
				t.Fatalf("sharedWork(%#x) = %s, want %s", b, got, want)
			}
			if got, want := sharedTarget(b), CompactToBig(b); got.Cmp(want) != 0 {
				t.Fatalf("sharedTarget(%#x) = %s, want %s", b, got, want)
			}
		}
	}
	w := Work(RegTestParams.PowLimitBits)
	w.Add(w, big.NewInt(1))
	if sharedWork(RegTestParams.PowLimitBits).Cmp(computeWork(RegTestParams.PowLimitBits)) != 0 {
		t.Fatal("changing Work's result changed the cached value")
	}
}
