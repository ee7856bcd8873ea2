package dag

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestStoreKeys: the keys built by hand are the documented layout, byte for
// byte (stores written before keep opening).
func TestStoreKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		var h Hash
		for i := range h {
			h[i] = byte(rng.UintN(256))
		}
		height := rng.Int64N(1 << 62)
		if rng.IntN(4) == 0 {
			height = rng.Int64N(3)
		}
		if got, want := heightKey(height, h).String(), fmt.Sprintf("%s%016x/%s", prefixHeight, height, h); got != want {
			t.Fatalf("heightKey = %q, want %q", got, want)
		}
		if got, want := blockKey(height, h).String(), fmt.Sprintf("%s%016x/%s", prefixBlock, height, h); got != want {
			t.Fatalf("blockKey = %q, want %q", got, want)
		}
		if got, want := legacyBlockKey(h).String(), prefixLegacyBlock+h.String(); got != want {
			t.Fatalf("legacyBlockKey = %q, want %q", got, want)
		}
		if got, want := tipKey(h).String(), prefixTip+h.String(); got != want {
			t.Fatalf("tipKey = %q, want %q", got, want)
		}
		gotHeight, gotHash, err := parseHeightKey(heightKey(height, h).String(), prefixHeight)
		if err != nil || gotHeight != height || gotHash != h {
			t.Fatalf("parseHeightKey(heightKey(%d, %s)) = %d, %s, %v", height, h, gotHeight, gotHash, err)
		}
	}
}
