package dag_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

func process(t *testing.T, d *dag.DAG, blocks []*dag.Block) {
	t.Helper()
	for i := 0; i < len(blocks); i += 500 {
		for _, err := range d.ProcessBlocks(context.Background(), blocks[i:min(i+500, len(blocks))]) {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestNotInPastListsExactlyWhatAPeerLacks(t *testing.T) {
	for seed := range uint64(6) {
		g, err := dagtest.NewGenerator(dag.RegTestParams, seed)
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := g.Wide(2000, 1+int(seed))
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, 7))
		kept, dropped := dagtest.Holey(blocks, 0.01*float64(seed), rng)
		peer := memDAG(t, dag.RegTestParams)
		process(t, peer, kept)

		list, more := g.DAG.NotInPast(peer.Locator(), len(blocks)+1)
		if more {
			t.Fatal("more with a limit above the DAG's size")
		}
		want := map[dag.Hash]bool{}
		for _, b := range dropped {
			want[b.Hash()] = true
		}
		if len(list) != len(want) {
			t.Fatalf("seed %d: listed %d blocks, the peer lacks %d", seed, len(list), len(want))
		}
		for i, e := range list {
			if !want[e.Hash] {
				t.Fatalf("seed %d: listed %s, which the peer holds", seed, e.Hash)
			}
			if i > 0 && e.Height < list[i-1].Height {
				t.Fatalf("seed %d: list not ordered by height", seed)
			}
		}
		// Processing the list in order leaves no orphan and gives the same DAG.
		for _, e := range list {
			b, err := g.DAG.Block(context.Background(), e.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if err := peer.ProcessBlock(context.Background(), b); err != nil {
				t.Fatalf("seed %d: block %s in list order: %v", seed, e.Hash, err)
			}
		}
		if peer.Count() != g.DAG.Count() {
			t.Fatalf("seed %d: %d blocks after the list, want %d", seed, peer.Count(), g.DAG.Count())
		}
	}
}

func TestNotInPastLimitKeepsTheLowest(t *testing.T) {
	g, err := dagtest.NewGenerator(dag.RegTestParams, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Wide(500, 4); err != nil {
		t.Fatal(err)
	}
	all, _ := g.DAG.NotInPast(nil, 1000)
	if len(all) != 500 {
		t.Fatalf("from the genesis: %d blocks, want 500", len(all))
	}
	part, more := g.DAG.NotInPast(nil, 100)
	if !more || len(part) != 100 {
		t.Fatalf("limit 100: %d blocks, more %v", len(part), more)
	}
	for i := range part {
		if part[i] != all[i] {
			t.Fatalf("entry %d differs from the unlimited list", i)
		}
	}
}

func TestLocatorAfterDivergence(t *testing.T) {
	// Server and peer share 1,000 blocks, then each mines its own 300: the
	// peer's tips are unknown to the server, its locator still bounds what
	// the server lists again.
	g, err := dagtest.NewGenerator(dag.RegTestParams, 5)
	if err != nil {
		t.Fatal(err)
	}
	common, err := g.Wide(1000, 3)
	if err != nil {
		t.Fatal(err)
	}
	peer := memDAG(t, dag.RegTestParams)
	process(t, peer, common)
	if _, err := g.Wide(300, 3); err != nil {
		t.Fatal(err)
	}
	pg, err := dagtest.NewGenerator(dag.RegTestParams, 6)
	if err != nil {
		t.Fatal(err)
	}
	process(t, pg.DAG, common)
	pg.Blocks = common
	own, err := pg.Wide(300, 2)
	if err != nil {
		t.Fatal(err)
	}
	process(t, peer, own)

	loc := peer.Locator()
	if loc[len(loc)-1] != dag.RegTestParams.GenesisHash {
		t.Fatal("locator does not end with the genesis")
	}
	list, _ := g.DAG.NotInPast(loc, 10_000)
	lacking := 0
	for _, e := range list {
		if !peer.HaveBlock(e.Hash) {
			lacking++
		}
	}
	if lacking != 300 {
		t.Fatalf("listed %d of the 300 blocks the peer lacks", lacking)
	}
	if extra := len(list) - lacking; extra > 600 {
		t.Fatalf("listed %d blocks the peer holds: the locator should bound that", extra)
	}
	t.Logf("%d listed, %d of them held already", len(list), len(list)-lacking)
}

func BenchmarkNotInPast(b *testing.B) {
	g, err := dagtest.NewGenerator(dag.RegTestParams, 1)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := g.Wide(20_000, 8); err != nil {
		b.Fatal(err)
	}
	b.Run("from genesis", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			g.DAG.NotInPast(nil, 100_000)
		}
	})
	b.Run("level peer", func(b *testing.B) {
		loc := g.DAG.Locator()
		b.ReportAllocs()
		for b.Loop() {
			g.DAG.NotInPast(loc, 100_000)
		}
	})
}

// TestNotInPastBesideTheWriter walks the whole DAG (a peer syncing from the
// genesis) again and again while blocks are added: every answer is closed
// under parents and holds every block the DAG held when it began (under
// -race: the walk reads nothing the writer changes).
func TestNotInPastBesideTheWriter(t *testing.T) {
	g, err := dagtest.NewGenerator(dag.RegTestParams, 17)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := g.Wide(3000, 4)
	if err != nil {
		t.Fatal(err)
	}
	d := memDAG(t, dag.RegTestParams)
	process(t, d, blocks[:1500])
	done := make(chan struct{})
	walks := make(chan error, 1)
	n := 0 // walks; read after walks delivers
	go func() {
		for {
			select {
			case <-done:
				walks <- nil
				return
			default:
			}
			before := d.Count()
			list, more := d.NotInPast(nil, 1<<20)
			n++
			listed := map[dag.Hash]bool{dag.RegTestParams.GenesisHash: true}
			for _, hh := range list {
				info, ok := d.BlockInfo(hh.Hash)
				if !ok {
					walks <- fmt.Errorf("listed %s, which the DAG does not hold", hh.Hash)
					return
				}
				for _, p := range info.Parents {
					if !listed[p] {
						walks <- fmt.Errorf("listed %s before its parent %s", hh.Hash, p)
						return
					}
				}
				listed[hh.Hash] = true
			}
			if more || len(list)+1 < before {
				walks <- fmt.Errorf("listed %d blocks (more %v) of the %d held when the walk began", len(list), more, before-1)
				return
			}
		}
	}()
	for _, b := range blocks[1500:] {
		if err := d.ProcessBlock(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if err := <-walks; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d walks beside the writer", n)
}

// TestBlocksBytes: BlocksBytes hands over each held block's stored bytes in
// the order asked and lists the rest, whether it scans the store (blocks
// close in height, on pebble) or looks each one up.
func TestBlocksBytes(t *testing.T) {
	ctx := context.Background()
	g, err := dagtest.NewGenerator(dag.RegTestParams, 23)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := g.Wide(1200, 5)
	if err != nil {
		t.Fatal(err)
	}
	disk, closeStore := diskDAG(t, t.TempDir(), dag.RegTestParams)
	defer closeStore()
	mem := memDAG(t, dag.RegTestParams)
	rng := rand.New(rand.NewPCG(23, 1))
	for _, d := range []*dag.DAG{disk, mem} {
		process(t, d, blocks)
		for round := range 40 {
			// A run of neighbours in order (a sync batch), a spread-out
			// sample, and some of each shuffled, with unknown hashes mixed in.
			var ask []dag.Hash
			switch lo := rng.IntN(len(blocks) - 500); round % 3 {
			case 0: // a run of neighbours, one of them asked twice
				for _, b := range blocks[lo : lo+1+rng.IntN(499)] {
					ask = append(ask, b.Hash())
				}
				ask = append(ask, ask[rng.IntN(len(ask))])
			case 1:
				for range 1 + rng.IntN(50) {
					ask = append(ask, blocks[rng.IntN(len(blocks))].Hash())
				}
			default:
				for _, b := range blocks[lo : lo+1+rng.IntN(100)] {
					ask = append(ask, b.Hash())
				}
				ask = append(ask, dag.Hash{byte(round), 1}, dag.Hash{byte(round), 2})
				rng.Shuffle(len(ask), func(i, j int) { ask[i], ask[j] = ask[j], ask[i] })
			}
			var got []dag.Hash
			missing, err := d.BlocksBytes(ctx, ask, func(h dag.Hash, raw []byte) error {
				want, err := d.BlockBytes(ctx, h)
				if err != nil || string(raw) != string(want) {
					return fmt.Errorf("block %s: bytes differ from BlockBytes (%v)", h, err)
				}
				got = append(got, h)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var wantGot, wantMissing []dag.Hash
			for _, h := range ask {
				if d.HaveBlock(h) {
					wantGot = append(wantGot, h)
				} else {
					wantMissing = append(wantMissing, h)
				}
			}
			if !slices.Equal(got, wantGot) || !slices.Equal(missing, wantMissing) {
				t.Fatalf("round %d: got %d blocks and %d missing, want %d and %d, in the order asked",
					round, len(got), len(missing), len(wantGot), len(wantMissing))
			}
		}
	}
}

// TestCheckedBlocks: CheckRaw refuses what CheckSanity or the decoder
// refuses, CheckConnect what ProcessBlock's contextual checks refuse, and
// CommitChecked stores the very bytes that were checked.
func TestCheckedBlocks(t *testing.T) {
	ctx := context.Background()
	p := dag.RegTestParams
	d := memDAG(t, p)
	g, err := dagtest.NewGenerator(p, 29)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := g.Build(3, 1)
	if err != nil {
		t.Fatal(err)
	}
	raw := chain[0].Encode()
	if _, err := dag.CheckRaw(append(slices.Clone(raw), 0), p, time.Now()); err == nil {
		t.Fatal("CheckRaw took a block with a trailing byte")
	}
	other := dag.SimNetParams
	if _, err := dag.CheckRaw(raw, other, time.Now()); err == nil {
		t.Fatal("CheckRaw took another network's block")
	}
	c0, err := d.Check(raw)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := d.Check(chain[2].Encode())
	if err != nil {
		t.Fatal(err)
	}
	var mp *dag.MissingParentsError
	if err := d.CheckConnect(c2); !errors.As(err, &mp) {
		t.Fatalf("CheckConnect of a grandchild before its parents: %v, want missing parents", err)
	}
	if err := d.CheckConnect(c0); err != nil {
		t.Fatal(err)
	}
	if errs := d.CommitChecked(ctx, []dag.Checked{c0}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if got, err := d.BlockBytes(ctx, c0.Hash()); err != nil || string(got) != string(raw) || c0.Hash() != chain[0].Hash() {
		t.Fatalf("stored %x (%v), checked %x", got, err, raw)
	}
	if err := d.CheckConnect(c0); !errors.Is(err, dag.ErrDuplicateBlock) {
		t.Fatalf("CheckConnect of a stored block: %v", err)
	}
}
