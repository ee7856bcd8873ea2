package dag

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	ds "github.com/ipfs/go-datastore"
)

// FuzzStoreKeys feeds what a reopened store hands back: keys for the key
// parsers, and a height entry (key and header) that Open's load reads. The
// parsers and decoders must never panic, anything they accept must survive
// a round trip through the writer's encoders, and Open over a store holding
// the fuzzed entry returns a DAG or an error.
//
// Inputs: key is parsed as a height key, a tip key and a block key, and is
// written as "/dag/hgt/"+key; value is decoded as a header and as a block
// and is the height entry's value.
func FuzzStoreKeys(f *testing.F) {
	g := RegTestParams.GenesisBlock
	gh := RegTestParams.GenesisHash
	child := Block{Header: Header{Version: BlockVersion, Net: RegTestParams.Net, Parents: []Hash{gh},
		Timestamp: g.Header.Timestamp + 1000, Bits: RegTestParams.PowLimitBits}}
	child.Header.BodyHash = child.Body.Hash()
	ch := child.Hash()
	// A canonical height-1 entry for a child of the genesis: the shape Open
	// loads from every healthy store.
	f.Add(heightKey(1, ch).String()[len(prefixHeight):], child.Header.AppendEncode(nil))
	f.Add(heightKey(0, gh).String()[len(prefixHeight):], g.Header.AppendEncode(nil))
	f.Add(heightKey(1, ch).String()[len(prefixHeight):], child.Encode())
	f.Add("-000000000000001/"+ch.String(), child.Header.AppendEncode(nil))
	f.Add("1/"+ch.String(), child.Header.AppendEncode(nil))
	f.Add("7fffffffffffffff/"+ch.String(), child.Header.AppendEncode(nil))
	f.Add("0000000000000001/"+ch.String()+"/x", []byte{})
	f.Add("", []byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		checkKeyParsers(t, key)
		checkHeaderDecode(t, value)
		checkLoad(t, key, value)
	})
}

func checkKeyParsers(t *testing.T, key string) {
	for _, prefix := range []string{prefixHeight, prefixBlock} {
		for _, k := range []string{key, prefix + key} {
			height, h, err := parseHeightKey(k, prefix)
			if err != nil {
				continue
			}
			// What was accepted means what the writer's key for it means.
			again := heightKey(height, h)
			if prefix == prefixBlock {
				again = blockKey(height, h)
			}
			h2, hh, err := parseHeightKey(again.String(), prefix)
			if err != nil || h2 != height || hh != h {
				t.Fatalf("key %q: parsed (%d, %s), re-encoded as %q: (%d, %s, %v)", k, height, h, again, h2, hh, err)
			}
		}
	}
	for _, prefix := range []string{prefixTip, prefixLegacyBlock} {
		for _, k := range []string{key, prefix + key} {
			h, err := parseHashKey(k, prefix)
			if err != nil {
				continue
			}
			if len(k) != len(prefix)+2*HashSize {
				t.Fatalf("hash key %q accepted with a suffix of %d bytes", k, len(k)-len(prefix))
			}
			var again Hash
			switch prefix {
			case prefixTip:
				again, err = parseHashKey(tipKey(h).String(), prefix)
			default:
				again, err = parseHashKey(legacyBlockKey(h).String(), prefix)
			}
			if err != nil || again != h {
				t.Fatalf("hash key %q: parsed %s, re-encoded key gives %s, %v", k, h, again, err)
			}
		}
	}
}

func checkHeaderDecode(t *testing.T, value []byte) {
	h, err := DecodeHeader(value)
	if err == nil {
		if got := h.AppendEncode(nil); !bytes.Equal(got, value) {
			t.Fatalf("header encode(decode(x)) != x\n x %x\n y %x", value, got)
		}
		if h.EncodedSize() != len(value) || len(value) > MaxHeaderSize {
			t.Fatalf("header of %d bytes: EncodedSize %d, max %d", len(value), h.EncodedSize(), MaxHeaderSize)
		}
	}
	b, err := DecodeBlock(value)
	if err == nil {
		if got := b.Encode(); !bytes.Equal(got, value) {
			t.Fatalf("block encode(decode(x)) != x\n x %x\n y %x", value, got)
		}
		if b.Hash() != b.Header.Hash() || b.EncodedSize() != len(value) {
			t.Fatalf("block hash or size inconsistent")
		}
	}
}

// checkLoad opens a regtest store holding the genesis and the fuzzed height
// entry. When the key names a hash, that hash is stored as a tip and the
// genesis is no longer one, as the writer would leave a store after adding
// a child of the genesis: a corrupt entry gets as far into load as it can.
func checkLoad(t *testing.T, key string, value []byte) (opened bool) {
	ctx := context.Background()
	store := ds.NewMapDatastore()
	quiet := slog.New(slog.DiscardHandler)
	if _, err := Open(ctx, store, RegTestParams, WithLogger(quiet)); err != nil {
		t.Fatal(err)
	}
	fullKey := prefixHeight + key
	if strings.HasSuffix(fullKey, "/") {
		return false // not a datastore key: ds.RawKey panics on it, no store holds it
	}
	if err := store.Put(ctx, ds.RawKey(fullKey), value); err != nil {
		t.Fatal(err)
	}
	_, h, perr := parseHeightKey(fullKey, prefixHeight)
	if perr == nil {
		if err := store.Put(ctx, tipKey(h), nil); err != nil {
			t.Fatal(err)
		}
		if hdr, err := DecodeHeader(value); err == nil && len(hdr.Parents) > 0 {
			if err := store.Delete(ctx, tipKey(RegTestParams.GenesisHash)); err != nil {
				t.Fatal(err)
			}
		}
	}
	d, err := Open(ctx, store, RegTestParams, WithLogger(quiet))
	if err != nil {
		return false
	}
	st := d.Status()
	if st.Count < 1 || st.MaxHeight < 0 || st.MaxHeight >= int64(st.Count) || len(st.Tips) == 0 {
		t.Fatalf("opened a store with an impossible status %+v", st)
	}
	for _, tip := range st.Tips {
		if _, ok := d.BlockInfo(tip); !ok {
			t.Fatalf("tip %s is not indexed", tip)
		}
	}
	return true
}

// TestStoreKeysFuzzSeedLoads checks that FuzzStoreKeys's canonical seed
// gets through Open's load, so the fuzzer starts from a store that opens.
func TestStoreKeysFuzzSeedLoads(t *testing.T) {
	gh := RegTestParams.GenesisHash
	child := Header{Version: BlockVersion, Net: RegTestParams.Net, Parents: []Hash{gh},
		Timestamp: RegTestParams.GenesisBlock.Header.Timestamp + 1000, Bits: RegTestParams.PowLimitBits}
	if !checkLoad(t, heightKey(1, child.Hash()).String()[len(prefixHeight):], child.AppendEncode(nil)) {
		t.Fatal("the canonical height entry does not load")
	}
}
