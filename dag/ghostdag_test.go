package dag

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// refIndex is the fast implementation run over a refGraph: a DAG index
// without a store, every block with the same work.
type refIndex struct {
	d     *DAG
	nodes map[string]*blockNode
	ids   map[*blockNode]string
}

func buildRefIndex(t testing.TB, g *refGraph, k int) *refIndex {
	t.Helper()
	if g.work != nil {
		t.Fatal("buildRefIndex: per-block work is not supported")
	}
	p := *RegTestParams
	p.K, p.MergeSetSizeLimit = k, math.MaxInt32
	r := &refIndex{
		d:     &DAG{params: &p, index: make(map[Hash]*blockNode), tips: make(map[Hash]*blockNode), totalWork: new(big.Int), reach: newReachability()},
		nodes: make(map[string]*blockNode, len(g.ids)),
		ids:   make(map[*blockNode]string, len(g.ids)),
	}
	for _, id := range g.ids {
		r.add(id, g.parents[id], g.hash[id])
	}
	r.d.updateVirtual()
	return r
}

func (r *refIndex) add(id string, parentIDs []string, hash Hash) *blockNode {
	n := &blockNode{hash: hash, bits: RegTestParams.PowLimitBits, work: Work(RegTestParams.PowLimitBits)}
	for _, pid := range parentIDs {
		n.parents = append(n.parents, r.nodes[pid])
	}
	if len(n.parents) > 0 {
		n.height = maxHeight(n.parents) + 1
	}
	r.d.computeGhostdag(n)
	r.d.addNode(n)
	r.nodes[id], r.ids[n] = n, id
	return n
}

func (r *refIndex) names(ns []*blockNode) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = r.ids[n]
	}
	return out
}

// compare checks a node's GHOSTDAG data against the reference's result.
func (r *refIndex) compare(n *blockNode, want refResult) error {
	sp := ""
	if n.selectedParent != nil {
		sp = r.ids[n.selectedParent]
	}
	unit := Work(RegTestParams.PowLimitBits)
	switch {
	case sp != want.SelectedParent:
		return fmt.Errorf("selected parent %q, want %q", sp, want.SelectedParent)
	case n.blueScore != want.BlueScore:
		return fmt.Errorf("blue score %d, want %d", n.blueScore, want.BlueScore)
	case !slices.Equal(r.names(n.blues), want.MergesetBlues):
		return fmt.Errorf("merge-set blues %v, want %v", r.names(n.blues), want.MergesetBlues)
	case !slices.Equal(r.names(n.reds), want.MergesetReds) && len(n.reds)+len(want.MergesetReds) > 0:
		return fmt.Errorf("merge-set reds %v, want %v", r.names(n.reds), want.MergesetReds)
	case want.BlueWork != nil && n.blueWork.Cmp(new(big.Int).Mul(want.BlueWork, unit)) != 0:
		return fmt.Errorf("blue work %s, want %s units of %s", n.blueWork, want.BlueWork, unit)
	}
	return nil
}

// TestGHOSTDAGKaspadVectors runs kaspad's GHOSTDAG test DAGs.
func TestGHOSTDAGKaspadVectors(t *testing.T) {
	for _, v := range loadGhostdagVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			r := buildRefIndex(t, v.Graph, v.K)
			for id, want := range v.Want {
				if err := r.compare(r.nodes[id], want); err != nil {
					t.Errorf("block %s: %v", id, err)
				}
			}
		})
	}
}

// TestGHOSTDAGMatchesReference compares every block's GHOSTDAG data, the
// virtual block's and the reachability index with the plain reference on
// random wide DAGs, for small and large k.
func TestGHOSTDAGMatchesReference(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		for _, k := range []int{1, 3, 18} {
			t.Run(fmt.Sprintf("seed%d/k%d", seed, k), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, uint64(k)))
				g := randomRefGraph(rng, 400, 2+int(seed)%6, 1+int(seed)%MaxParents)
				r := buildRefIndex(t, g, k)
				// The virtual as a block over its parents.
				vg := *g
				vg.ids = append(slices.Clone(g.ids), "virtual")
				vg.parents = make(map[string][]string, len(g.parents)+1)
				for id, ps := range g.parents {
					vg.parents[id] = ps
				}
				vg.parents["virtual"] = r.names(r.d.virtual.parents)
				vg.hash = make(map[string]Hash, len(g.hash)+1)
				for id, h := range g.hash {
					vg.hash[id] = h
				}
				vg.hash["virtual"] = Hash{0xff, 0xff, 0xff}
				want := refGHOSTDAG(&vg, k)
				reds := 0
				for _, id := range g.ids {
					if err := r.compare(r.nodes[id], want[id]); err != nil {
						t.Fatalf("block %s: %v", id, err)
					}
					reds += len(want[id].MergesetReds)
				}
				if err := r.compare(r.d.virtual, want["virtual"]); err != nil {
					t.Fatalf("virtual: %v", err)
				}
				checkReachability(t, r, g, rng, 100)
				checkOrder(t, r)
				t.Logf("%d blocks, %d reds in merge sets, virtual blue score %d", len(g.ids), reds, r.d.virtual.blueScore)
			})
		}
	}
}

// checkReachability compares isAncestorOrSelf with pasts found by walking
// the parents, for samples blocks against every block.
func checkReachability(t *testing.T, r *refIndex, g *refGraph, rng *rand.Rand, samples int) {
	t.Helper()
	for range samples {
		b := r.nodes[g.ids[rng.IntN(len(g.ids))]]
		past := map[*blockNode]bool{b: true}
		stack := []*blockNode{b}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, p := range n.parents {
				if !past[p] {
					past[p] = true
					stack = append(stack, p)
				}
			}
		}
		for _, id := range g.ids {
			a := r.nodes[id]
			if got := isAncestorOrSelf(a, b); got != past[a] {
				t.Fatalf("isAncestorOrSelf(%s, %s) = %v, want %v", id, r.ids[b], got, past[a])
			}
		}
	}
}

// checkOrder checks the total order: every block the virtual merges once,
// positions consecutive, parents first, colours as BlockInfo gives them.
func checkOrder(t *testing.T, r *refIndex) {
	t.Helper()
	all, total := r.d.Order(0, math.MaxInt32)
	if int64(len(all)) != total || total != r.d.virtual.pastSize {
		t.Fatalf("order of %d blocks, total %d, virtual past %d", len(all), total, r.d.virtual.pastSize)
	}
	pos := make(map[*blockNode]int64, len(all))
	for i, b := range all {
		n := r.d.index[b.Hash]
		if b.Order != int64(i) || pos[n] != 0 {
			t.Fatalf("position %d holds order %d (%s), or a repeat", i, b.Order, r.ids[n])
		}
		pos[n] = int64(i) + 1
		for _, p := range n.parents {
			if pos[p] == 0 {
				t.Fatalf("block %s listed before its parent %s", r.ids[n], r.ids[p])
			}
		}
		blue, inChain, order := r.d.colourOf(n)
		if blue != b.IsBlue || inChain != b.IsInChain || order != b.Order {
			t.Fatalf("block %s: colourOf %v %v %d, Order says %v %v %d", r.ids[n], blue, inChain, order, b.IsBlue, b.IsInChain, b.Order)
		}
	}
	// Pages agree with the whole.
	for _, from := range []int64{0, 1, total / 3, total - 1} {
		page, _ := r.d.Order(from, 7)
		for i, b := range page {
			if b != all[from+int64(i)] {
				t.Fatalf("page from %d, entry %d: %+v, want %+v", from, i, b, all[from+int64(i)])
			}
		}
	}
}

// TestReachabilityKaspadDAGs runs kaspad's attack and no-attack DAG shapes:
// GHOSTDAG as the reference computes it, reachability answers as a walk,
// and the insert cost per block (logged, not asserted: per quarter of the
// DAG, it stays flat as the DAG grows).
func TestReachabilityKaspadDAGs(t *testing.T) {
	for _, name := range reachabilityDAGNames(t) {
		t.Run(name, func(t *testing.T) {
			g := loadReachabilityDAG(t, name)
			if testing.Short() && len(g.ids) > 5000 {
				t.Skip("large DAG in -short")
			}
			const k = 18
			r := &refIndex{d: buildRefIndex(t, &refGraph{ids: g.ids[:1], parents: g.parents, hash: g.hash}, k).d}
			r.nodes = map[string]*blockNode{g.ids[0]: r.d.index[g.hash[g.ids[0]]]}
			r.ids = map[*blockNode]string{r.nodes[g.ids[0]]: g.ids[0]}
			quarter := len(g.ids) / 4
			var times [4]time.Duration
			for i, id := range g.ids[1:] {
				start := time.Now()
				r.add(id, g.parents[id], g.hash[id])
				times[min(3, (i+1)/quarter)] += time.Since(start)
			}
			want := refGHOSTDAG(g, k)
			for _, id := range g.ids {
				if err := r.compare(r.nodes[id], want[id]); err != nil {
					t.Fatalf("block %s: %v", id, err)
				}
			}
			checkReachability(t, r, g, rand.New(rand.NewPCG(7, 7)), 20)
			var per [4]string
			for i, d := range times {
				per[i] = fmt.Sprintf("%.1fµs", float64(d.Microseconds())/float64(quarter))
			}
			t.Logf("%d blocks; insert per block by quarter of the DAG: %v", len(g.ids), per)
		})
	}
}

// TestPhantomK pins each network's k and merge set limit (dag/doc.go and
// params.go state them).
func TestPhantomK(t *testing.T) {
	for _, tc := range []struct {
		p        *Params
		k, limit int
	}{{MainNetParams, 4, 40}, {TestNetParams, 4, 40}, {SimNetParams, 18, 180}, {RegTestParams, 18, 180}} {
		if tc.p.K != tc.k || tc.p.MergeSetSizeLimit != tc.limit {
			t.Errorf("%s: k %d, limit %d; want %d, %d", tc.p.Name, tc.p.K, tc.p.MergeSetSizeLimit, tc.k, tc.limit)
		}
	}
	// kaspad's figures: x = 2·D·λ with D = 5 s at one block a second is 10;
	// P(Poisson(10) > 18) = 0.0072 < 0.01 <= P(Poisson(10) > 17) = 0.0143.
	if got := PhantomK(10, 0.01); got != 18 {
		t.Errorf("PhantomK(10, 0.01) = %d, want 18", got)
	}
}
