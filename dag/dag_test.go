package dag_test

import (
	"context"
	"errors"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

func memDAG(t testing.TB, p *dag.Params) *dag.DAG {
	t.Helper()
	d, err := dag.Open(context.Background(), dssync.MutexWrap(ds.NewMapDatastore()), p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func diskDAG(t testing.TB, dir string, p *dag.Params) (*dag.DAG, func()) {
	t.Helper()
	store, err := dag.OpenPebbleStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dag.Open(context.Background(), store, p)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	return d, func() {
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestInvalidBlocksRejected(t *testing.T) {
	for _, p := range []*dag.Params{dag.RegTestParams, dag.SimNetParams} {
		t.Run(p.Name, func(t *testing.T) {
			ctx := context.Background()
			d := memDAG(t, p)
			before := d.Status()
			for _, c := range dagtest.InvalidBlocks(p, time.Now()) {
				err := d.ProcessBlock(ctx, c.Block)
				var re *dag.RuleError
				if !errors.As(err, &re) || re.Code != c.Code {
					t.Errorf("%s: got %v, want rule error %s", c.Name, err, c.Code)
				}
			}
			after := d.Status()
			if after.Count != before.Count || after.Version != before.Version || !slices.Equal(after.Tips, before.Tips) {
				t.Fatalf("invalid blocks changed the DAG: %+v -> %+v", before, after)
			}
			if err := d.Verify(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAcceptedBlockAndDuplicate(t *testing.T) {
	ctx := context.Background()
	p := dag.RegTestParams
	d := memDAG(t, p)
	b := dagtest.MakeBlock(p, []dag.Hash{p.GenesisHash}, p.PowLimitBits, p.GenesisBlock.Header.Timestamp+1, nil)
	if err := d.ProcessBlock(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := d.ProcessBlock(ctx, b); !errors.Is(err, dag.ErrDuplicateBlock) {
		t.Fatalf("second submit: %v, want ErrDuplicateBlock", err)
	}
	if got := d.Tips(); !slices.Equal(got, []dag.Hash{b.Hash()}) {
		t.Fatalf("tips %v, want only the new block", got)
	}
	got, err := d.Block(ctx, b.Hash())
	if err != nil || got.Hash() != b.Hash() {
		t.Fatalf("stored block: %v", err)
	}
	info, _ := d.BlockInfo(p.GenesisHash)
	if !slices.Equal(info.Children, []dag.Hash{b.Hash()}) {
		t.Fatalf("genesis children %v", info.Children)
	}
}

func TestOrphanThenParent(t *testing.T) {
	ctx := context.Background()
	p := dag.RegTestParams
	g, err := dagtest.NewGenerator(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := g.Build(20, 3)
	if err != nil {
		t.Fatal(err)
	}
	d := memDAG(t, p)
	last := blocks[len(blocks)-1]
	err = d.ProcessBlock(ctx, last)
	var mp *dag.MissingParentsError
	if !errors.As(err, &mp) || mp.Block != last.Hash() || len(mp.Missing) != len(last.Header.Parents) {
		t.Fatalf("orphan: got %v, want MissingParentsError naming all %d parents", err, len(last.Header.Parents))
	}
	var re *dag.RuleError
	if errors.As(err, &re) {
		t.Fatal("a missing parent must not be a rule error")
	}
	if d.Count() != 1 {
		t.Fatal("orphan was stored")
	}
	for i, err := range d.ProcessBlocks(ctx, blocks) {
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	if d.Count() != len(blocks)+1 {
		t.Fatalf("count %d, want %d", d.Count(), len(blocks)+1)
	}
	if err := d.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestMultiParentDAGShape checks heights, tips and children on a random DAG
// against a recomputation from the blocks alone.
func TestMultiParentDAGShape(t *testing.T) {
	ctx := context.Background()
	p := dag.RegTestParams
	g, err := dagtest.NewGenerator(p, 7)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := g.Build(500, 5)
	if err != nil {
		t.Fatal(err)
	}
	height := map[dag.Hash]int64{p.GenesisHash: 0}
	hasChild := map[dag.Hash]bool{}
	multi := 0
	for _, b := range blocks {
		var h int64
		for _, par := range b.Header.Parents {
			h = max(h, height[par]+1)
			hasChild[par] = true
		}
		height[b.Hash()] = h
		if len(b.Header.Parents) > 1 {
			multi++
		}
	}
	if multi < 50 {
		t.Fatalf("only %d of %d blocks have several parents", multi, len(blocks))
	}
	var wantTips []dag.Hash
	for h := range height {
		if !hasChild[h] {
			wantTips = append(wantTips, h)
		}
	}
	slices.SortFunc(wantTips, func(a, b dag.Hash) int { return slices.Compare(a[:], b[:]) })

	d := memDAG(t, p)
	for i, err := range d.ProcessBlocks(ctx, blocks) {
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	if got := d.Tips(); !slices.Equal(got, wantTips) {
		t.Fatalf("tips %v, want %v", got, wantTips)
	}
	for h, want := range height {
		info, ok := d.BlockInfo(h)
		if !ok || info.Height != want {
			t.Fatalf("block %s height %d, want %d", h, info.Height, want)
		}
		if !slices.Contains(d.HashesAtHeight(want), h) {
			t.Fatalf("block %s missing from height index %d", h, want)
		}
	}
	// Every block on regtest adds the same work, so the DAG score is the count.
	perBlock := dag.Work(p.PowLimitBits)
	want := new(big.Int).Mul(perBlock, big.NewInt(int64(len(blocks)+1)))
	if d.TotalWork().Cmp(want) != 0 {
		t.Fatalf("total work %s, want %s", d.TotalWork(), want)
	}
	if d.Status().MaxHeight != slices.Max(slices.Collect(func(yield func(int64) bool) {
		for _, h := range height {
			if !yield(h) {
				return
			}
		}
	})) {
		t.Fatal("max height wrong")
	}
}

func TestTemplateLimitsParents(t *testing.T) {
	p := dag.RegTestParams
	g, err := dagtest.NewGenerator(p, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Round(dag.MaxParents + 4); err != nil {
		t.Fatal(err)
	}
	tmpl := g.DAG.Template()
	if len(tmpl.Parents) != dag.MaxParents {
		t.Fatalf("template has %d parents with %d tips, want %d", len(tmpl.Parents), len(g.DAG.Tips()), dag.MaxParents)
	}
	if !slices.IsSortedFunc(tmpl.Parents, func(a, b dag.Hash) int { return slices.Compare(a[:], b[:]) }) {
		t.Fatal("template parents not sorted")
	}
	// The next round merges at most MaxParents of the tips; the rest remain.
	if _, err := g.Round(1); err != nil {
		t.Fatal(err)
	}
	if got := len(g.DAG.Tips()); got != 4+1 {
		t.Fatalf("%d tips after merging, want 5", got)
	}
}

// TestRetarget checks the difficulty formula on a chain at a fixed pace: the
// next target is the mean target of the last DifficultyWindow blocks scaled
// by the time they took against the time they should have taken, clamped
// and capped, computed here independently. It runs regtest with retargeting
// on, so blocks stay cheap to mine while difficulty grows.
func TestRetarget(t *testing.T) {
	ctx := context.Background()
	rp := *dag.RegTestParams
	rp.NoRetarget = false
	p := &rp
	limit := dag.CompactToBig(p.PowLimitBits)
	for _, tc := range []struct {
		name    string
		spacing int64 // ms between blocks
		harder  bool
	}{
		{"fast blocks: harder, clamped at 4x per window", 10, true},
		{"twice too fast: harder", p.TargetBlockInterval.Milliseconds() / 2, true},
		{"on pace: unchanged", p.TargetBlockInterval.Milliseconds(), false},
		{"slow blocks: capped at pow limit", 10 * p.TargetBlockInterval.Milliseconds(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := memDAG(t, p)
			parent := p.GenesisHash
			ts := p.GenesisBlock.Header.Timestamp
			chain := []*big.Int{limit} // targets, genesis first
			times := []int64{ts}
			for h := 1; h < 2*p.DifficultyWindow; h++ {
				ts += tc.spacing
				bits, err := d.RequiredBits([]dag.Hash{parent})
				if err != nil {
					t.Fatal(err)
				}
				b := dagtest.MakeBlock(p, []dag.Hash{parent}, bits, ts, nil)
				if err := d.ProcessBlock(ctx, b); err != nil {
					t.Fatalf("height %d: %v", h, err)
				}
				parent = b.Hash()
				chain = append(chain, dag.CompactToBig(bits))
				times = append(times, ts)
			}
			bits, err := d.RequiredBits([]dag.Hash{parent})
			if err != nil {
				t.Fatal(err)
			}
			w := p.DifficultyWindow
			sum := new(big.Int)
			for _, tg := range chain[len(chain)-w:] {
				sum.Add(sum, tg)
			}
			expected := int64(w-1) * p.TargetBlockInterval.Milliseconds()
			actual := min(max(times[len(times)-1]-times[len(times)-w], expected/dag.MaxRetargetFactor), expected*dag.MaxRetargetFactor)
			want := sum.Div(sum, big.NewInt(int64(w)))
			want.Mul(want, big.NewInt(actual))
			want.Div(want, big.NewInt(expected))
			if want.Cmp(limit) > 0 {
				want.Set(limit)
			}
			got := dag.CompactToBig(bits)
			// Compact form keeps 16 to 23 bits of mantissa: allow that rounding.
			diff := new(big.Int).Sub(want, got)
			if diff.Abs(diff).Cmp(new(big.Int).Rsh(want, 15)) > 0 {
				t.Fatalf("target %x (bits %08x), want about %x (bits %08x)", got, bits, want, dag.BigToCompact(want))
			}
			if harder := got.Cmp(limit) < 0; harder != tc.harder {
				t.Fatalf("target %x against the pow limit %x: harder %v, want %v", got, limit, harder, tc.harder)
			}
			// A block with other bits is refused.
			b := dagtest.MakeBlock(p, []dag.Hash{parent}, bits-1, ts+1, nil)
			if err := d.ProcessBlock(ctx, b); !dag.IsRuleError(err, dag.ErrWrongTarget) {
				t.Fatalf("wrong bits: %v, want ErrWrongTarget", err)
			}
		})
	}
}

func TestRestartKeepsDAG(t *testing.T) {
	ctx := context.Background()
	p := dag.RegTestParams
	dir := t.TempDir()
	g, err := dagtest.NewGenerator(p, 11)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := g.Build(300, 4)
	if err != nil {
		t.Fatal(err)
	}
	d, closeStore := diskDAG(t, dir, p)
	for i, b := range blocks {
		if err := d.ProcessBlock(ctx, b); err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	before := d.Status()
	closeStore()

	d, closeStore = diskDAG(t, dir, p)
	defer closeStore()
	after := d.Status()
	if after.Count != before.Count || after.MaxHeight != before.MaxHeight || !slices.Equal(after.Tips, before.Tips) || after.BlueWork.Cmp(before.BlueWork) != 0 {
		t.Fatalf("after restart %+v, before %+v", after, before)
	}
	if err := d.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		got, err := d.Block(ctx, b.Hash())
		if err != nil || got.Hash() != b.Hash() {
			t.Fatalf("block %s after restart: %v", b.Hash(), err)
		}
	}
}

func TestOpenRefusesOtherNetwork(t *testing.T) {
	dir := t.TempDir()
	_, closeStore := diskDAG(t, dir, dag.RegTestParams)
	closeStore()
	store, err := dag.OpenPebbleStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := dag.Open(context.Background(), store, dag.SimNetParams); err == nil {
		t.Fatal("opened a regtest store as simnet")
	}
}

func TestOpenPebbleStoreTwiceRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := dag.OpenPebbleStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s2, err := dag.OpenPebbleStore(dir); err == nil {
		s2.Close()
		t.Fatal("a second open of the same store succeeded")
	}
}

// TestConcurrentReadsDuringWrites runs readers against a writer under -race.
func TestConcurrentReadsDuringWrites(t *testing.T) {
	ctx := context.Background()
	p := dag.RegTestParams
	g, err := dagtest.NewGenerator(p, 5)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := g.Build(400, 4)
	if err != nil {
		t.Fatal(err)
	}
	d := memDAG(t, p)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				st := d.Status()
				for _, tip := range st.Tips {
					if _, ok := d.BlockInfo(tip); !ok {
						t.Error("tip from status not indexed")
						return
					}
					if _, err := d.BlockBytes(ctx, tip); err != nil {
						t.Error(err)
						return
					}
				}
				_ = d.Template()
			}
		})
	}
	for i, b := range blocks {
		if err := d.ProcessBlock(ctx, b); err != nil {
			t.Errorf("block %d: %v", i, err)
		}
	}
	close(done)
	wg.Wait()
	if d.Count() != len(blocks)+1 {
		t.Fatalf("count %d", d.Count())
	}
}

func TestOpenRefusesCorruptGenesisKey(t *testing.T) {
	store := dssync.MutexWrap(ds.NewMapDatastore())
	if err := store.Put(context.Background(), ds.NewKey("/dag/meta/genesis"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := dag.Open(context.Background(), store, dag.RegTestParams); err == nil {
		t.Fatal("opened a store with a corrupt genesis key")
	}
}

func TestCheckBlockMatchesProcessBlock(t *testing.T) {
	ctx := context.Background()
	p := dag.SimNetParams
	d := memDAG(t, p)
	for _, c := range dagtest.InvalidBlocks(p, time.Now()) {
		if _, err := d.CheckBlock(c.Block); !dag.IsRuleError(err, c.Code) {
			t.Errorf("%s: CheckBlock gave %v, want %s", c.Name, err, c.Code)
		}
	}
	good := dagtest.MakeBlock(p, []dag.Hash{p.GenesisHash}, p.PowLimitBits, p.GenesisBlock.Header.Timestamp+1, nil)
	child := dagtest.MakeBlock(p, []dag.Hash{good.Hash()}, p.PowLimitBits, p.GenesisBlock.Header.Timestamp+2, nil)
	var mp *dag.MissingParentsError
	if _, err := d.CheckBlock(child); !errors.As(err, &mp) {
		t.Fatalf("orphan: %v", err)
	}
	if h, err := d.CheckBlock(good); err != nil || h != good.Hash() {
		t.Fatalf("good block: %v", err)
	}
	if d.Count() != 1 {
		t.Fatal("CheckBlock stored a block")
	}
	if err := d.ProcessBlock(ctx, good); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CheckBlock(good); !errors.Is(err, dag.ErrDuplicateBlock) {
		t.Fatalf("known block: %v", err)
	}
}
