package dag_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

// heightEntries returns the store's height entries: key → value.
func heightEntries(t *testing.T, store ds.Datastore) map[string][]byte {
	t.Helper()
	return entries(t, store, "/dag/hgt/")
}

// entries returns every entry of the store under prefix.
func entries(t *testing.T, store ds.Datastore, prefix string) map[string][]byte {
	t.Helper()
	res, err := store.Query(context.Background(), query.Query{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	all, err := res.Rest()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(all))
	for _, e := range all {
		out[e.Key] = e.Value
	}
	return out
}

// wideStore returns a store holding a wide generated DAG, and the DAG.
func wideStore(t *testing.T, n int) (ds.Batching, *dag.DAG, map[dag.Hash]int) {
	t.Helper()
	g, err := dagtest.NewGenerator(dag.RegTestParams, 5)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := g.Wide(n, 6)
	if err != nil {
		t.Fatal(err)
	}
	store := dssync.MutexWrap(ds.NewMapDatastore())
	d, err := dag.Open(context.Background(), store, dag.RegTestParams)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range d.ProcessBlocks(context.Background(), blocks) {
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	sizes := map[dag.Hash]int{dag.RegTestParams.GenesisHash: dag.RegTestParams.GenesisBlock.Header.EncodedSize()}
	for _, b := range blocks {
		sizes[b.Hash()] = b.Header.EncodedSize()
	}
	return store, d, sizes
}

// TestOpenUpgradesStoreWithoutGHOSTDAG opens a store whose height entries
// hold only headers, as before GHOSTDAG: Open computes the data once and
// writes it back, and the DAG is the same as the one that wrote the store.
func TestOpenUpgradesStoreWithoutGHOSTDAG(t *testing.T) {
	ctx := context.Background()
	store, d, sizes := wideStore(t, 600)
	want := d.Virtual()
	full := heightEntries(t, store)
	for k, v := range full {
		h, err := dag.ParseHash(k[strings.LastIndexByte(k, '/')+1:])
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Put(ctx, ds.RawKey(k), v[:sizes[h]]); err != nil {
			t.Fatal(err)
		}
	}
	up, err := dag.Open(ctx, store, dag.RegTestParams)
	if err != nil {
		t.Fatal(err)
	}
	if got := up.Virtual(); got.BlueWork.Cmp(want.BlueWork) != 0 || got.SelectedParent != want.SelectedParent || got.PastSize != want.PastSize {
		t.Fatalf("upgraded virtual %+v, want %+v", got, want)
	}
	if err := up.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	for k, v := range heightEntries(t, store) {
		if string(v) != string(full[k]) {
			t.Fatalf("entry %s after the upgrade differs from the one written with the block", k)
		}
	}
}

// TestVerifyCatchesDamagedGHOSTDAGData changes a stored anticone size (the
// entry still decodes, so Open takes it) and expects Verify to notice.
func TestVerifyCatchesDamagedGHOSTDAGData(t *testing.T) {
	ctx := context.Background()
	store, d, _ := wideStore(t, 300)
	if err := d.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	damaged := false
	for k, v := range heightEntries(t, store) {
		h, _ := dag.ParseHash(k[strings.LastIndexByte(k, '/')+1:])
		if h != dag.RegTestParams.GenesisHash { // the last byte is an anticone record's size
			v[len(v)-1] ^= 1
			if err := store.Put(ctx, ds.RawKey(k), v); err != nil {
				t.Fatal(err)
			}
			damaged = true
			break
		}
	}
	if !damaged {
		t.Fatal("no entry with an anticone record")
	}
	reopened, err := dag.Open(ctx, store, dag.RegTestParams)
	if err != nil {
		t.Fatal(err)
	}
	if err := reopened.Verify(ctx); err == nil || !strings.Contains(err.Error(), "anticone") {
		t.Fatalf("Verify after damage: %v, want an anticone mismatch", err)
	}
}

// TestGHOSTDAGRules: a parent in the past of another parent, and a merge
// set over the limit, make a block invalid; the template leaves out a tip
// whose merge would exceed the limit.
func TestGHOSTDAGRules(t *testing.T) {
	ctx := context.Background()
	p := dag.RegTestParams
	d := memDAG(t, p)
	ts := p.GenesisBlock.Header.Timestamp
	branch := func(n int) dag.Hash {
		tip, err := dagtest.Branch(d, n)
		if err != nil {
			t.Fatal(err)
		}
		return tip
	}
	first := branch(1)
	parents := []dag.Hash{p.GenesisHash, first}
	if parents[1].Less(parents[0]) {
		parents[0], parents[1] = parents[1], parents[0]
	}
	b := dagtest.MakeBlock(p, parents, p.PowLimitBits, ts+5, nil)
	if err := d.ProcessBlock(ctx, b); !dag.IsRuleError(err, dag.ErrParentInPast) {
		t.Fatalf("a parent in the past of another: %v, want ErrParentInPast", err)
	}

	limit := p.MergeSetSizeLimit
	a, c := branch(limit), branch(limit+1)
	parents = []dag.Hash{a, c}
	if parents[1].Less(parents[0]) {
		parents[0], parents[1] = parents[1], parents[0]
	}
	if _, err := d.RequiredBits(parents); !dag.IsRuleError(err, dag.ErrMergeSetTooBig) {
		t.Fatalf("RequiredBits over the merge set limit: %v", err)
	}
	b = dagtest.MakeBlock(p, parents, p.PowLimitBits, ts+int64(2*limit), nil)
	if err := d.ProcessBlock(ctx, b); !dag.IsRuleError(err, dag.ErrMergeSetTooBig) {
		t.Fatalf("merge set of %d blocks: %v, want ErrMergeSetTooBig", limit+1, err)
	}
	// The virtual selects the longer branch and merges the first block, not
	// the other branch.
	tmpl := d.Template()
	if len(tmpl.Parents) != 2 || !slices.Contains(tmpl.Parents, c) || !slices.Contains(tmpl.Parents, first) {
		t.Fatalf("template parents %v, want %s and %s, not %s", tmpl.Parents, c, first, a)
	}
	if tips := d.Tips(); len(tips) != 3 {
		t.Fatalf("%d tips, want 3 (the two branches and the first block)", len(tips))
	}
}

// TestOpenMovesBlocksIntoHeightOrder opens a store that keeps its blocks
// under /dag/blk/<hash>, as stores did before blocks were kept in height
// order: Open moves every block to /dag/block/<height>/<hash>, the same
// bytes, and the DAG verifies and serves every block.
func TestOpenMovesBlocksIntoHeightOrder(t *testing.T) {
	ctx := context.Background()
	store, d, _ := wideStore(t, 5000) // more than one move batch
	moved := entries(t, store, "/dag/block/")
	if len(moved) != d.Count() {
		t.Fatalf("%d blocks under /dag/block/, %d in the DAG", len(moved), d.Count())
	}
	for k, v := range moved {
		h := k[strings.LastIndexByte(k, '/')+1:]
		if err := store.Put(ctx, ds.RawKey("/dag/blk/"+h), v); err != nil {
			t.Fatal(err)
		}
		if err := store.Delete(ctx, ds.RawKey(k)); err != nil {
			t.Fatal(err)
		}
	}
	up, err := dag.Open(ctx, store, dag.RegTestParams)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if left := entries(t, store, "/dag/blk/"); len(left) != 0 {
		t.Fatalf("%d blocks left under /dag/blk/", len(left))
	}
	after := entries(t, store, "/dag/block/")
	if len(after) != len(moved) {
		t.Fatalf("%d blocks after the move, %d before", len(after), len(moved))
	}
	for k, v := range moved {
		if string(after[k]) != string(v) {
			t.Fatalf("block %s differs after the move", k)
		}
		h, err := dag.ParseHash(k[strings.LastIndexByte(k, '/')+1:])
		if err != nil {
			t.Fatal(err)
		}
		if raw, err := up.BlockBytes(ctx, h); err != nil || string(raw) != string(v) {
			t.Fatalf("BlockBytes(%s) after the move: %v", h, err)
		}
	}
	// Verify notices a block left behind in the old layout.
	for k, v := range after {
		h := k[strings.LastIndexByte(k, '/')+1:]
		if err := store.Put(ctx, ds.RawKey("/dag/blk/"+h), v); err != nil {
			t.Fatal(err)
		}
		break
	}
	if err := up.Verify(ctx); err == nil || !strings.Contains(err.Error(), "layout") {
		t.Fatalf("Verify with a block in the old layout: %v", err)
	}
}
