package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
)

// Partition scenarios run with the node's default timers (nodeOptions{}),
// so the heal time they report is the one operators get.
const (
	// healLimit is the requirement: identical tips on every node
	// within 5 s of the link that heals the partition.
	healLimit = 5 * time.Second
	// healWait bounds the wait for convergence; it is longer than healLimit
	// so that a slow heal is measured and reported, not just timed out.
	healWait = 60 * time.Second
	// halfSize is the number of nodes on each side of the partition.
	halfSize = 5
	// minersPerHalf nodes of each half mine at once, blocksPerMiner each.
	minersPerHalf  = 3
	blocksPerMiner = 20
)

// startHalf starts halfSize nodes with default timers, each after the first
// bootstrapping from a random earlier one of the half (first, if given,
// is the first node's bootstrap peer), so the half is one connected tree.
func startHalf(t *testing.T, rng *rand.Rand, home, name string, first *node) []*node {
	t.Helper()
	var half []*node
	for i := range halfSize {
		var extra []string
		switch {
		case i > 0:
			extra = []string{"--bootstrap", p2pAddr(half[rng.IntN(i)])}
		case first != nil:
			extra = []string{"--bootstrap", p2pAddr(first)}
		}
		half = append(half, startNodeWith(t, nodeOptions{}, "regtest", filepath.Join(home, fmt.Sprint(name, i)), extra...))
	}
	return half
}

// waitGossipMesh waits until every node has a gossip mesh peer.
func waitGossipMesh(t *testing.T, nodes []*node) {
	t.Helper()
	waitUntil(t, 60*time.Second, "every node in a gossip mesh", func() bool {
		for _, n := range nodes {
			if len(n.gossip.TopicPeers()) == 0 {
				return false
			}
		}
		return true
	})
}

// mineConcurrently has minersPerHalf nodes of each half generate
// blocksPerMiner blocks each, all at once, and returns the hashes mined in
// each half.
func mineConcurrently(t *testing.T, halves ...[]*node) [][]dag.Hash {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mined := make([][]dag.Hash, len(halves))
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for hi, half := range halves {
		for mi := range minersPerHalf {
			n := half[mi*(len(half)-1)/(minersPerHalf-1)] // spread over the half: 0, 2, 4
			wg.Go(func() {
				hs, err := n.miner.Generate(ctx, blocksPerMiner)
				mu.Lock()
				defer mu.Unlock()
				mined[hi] = append(mined[hi], hs...)
				if err != nil {
					errs = append(errs, err)
				}
			})
		}
	}
	wg.Wait()
	for _, err := range errs {
		t.Fatal(err)
	}
	return mined
}

// sameTips reports whether every node has the same block count and tips,
// and returns the first node's status.
func sameTips(nodes []*node) (dag.Status, bool) {
	want := nodes[0].dag.Status()
	for _, n := range nodes[1:] {
		st := n.dag.Status()
		if st.Count != want.Count || !slices.Equal(st.Tips, want.Tips) {
			return want, false
		}
	}
	return want, true
}

// waitHalfConverged waits until every node of a half holds exactly the
// genesis, base and mined blocks, with identical tips, and returns the
// half's status.
func waitHalfConverged(t *testing.T, name string, half []*node, base int, mined []dag.Hash) dag.Status {
	t.Helper()
	var st dag.Status
	waitUntil(t, 60*time.Second, "half "+name+" to converge", func() bool {
		var ok bool
		st, ok = sameTips(half)
		return ok && st.Count == base+len(mined)
	})
	for _, n := range half {
		for _, h := range mined {
			if !n.dag.HaveBlock(h) {
				t.Fatalf("half %s converged without block %s", name, h)
			}
		}
	}
	return st
}

// merges counts the blocks of hs with more than one parent: a DAG mined by
// one node at a time would have none.
func merges(t *testing.T, n *node, hs []dag.Hash) int {
	t.Helper()
	c := 0
	for _, h := range hs {
		bi, ok := n.dag.BlockInfo(h)
		if !ok {
			t.Fatalf("block %s missing", h)
		}
		if len(bi.Parents) > 1 {
			c++
		}
	}
	return c
}

// checkWide fails unless concurrent mining made the half's DAG wide.
func checkWide(t *testing.T, name string, half []*node, st dag.Status, mined []dag.Hash) {
	t.Helper()
	m := merges(t, half[0], mined)
	t.Logf("half %s: %d blocks, height %d, %d tips, %d merge blocks", name, st.Count, st.MaxHeight, len(st.Tips), m)
	if m == 0 && len(st.Tips) < 2 {
		t.Fatalf("half %s is a chain: concurrent mining produced no parallel blocks", name)
	}
}

// checkApart fails if a node of one half holds a block mined in the other.
func checkApart(t *testing.T, a, b []*node, minedA, minedB []dag.Hash) {
	t.Helper()
	for _, n := range a {
		for _, h := range minedB {
			if n.dag.HaveBlock(h) {
				t.Fatalf("a block of half B crossed the partition: %s", h)
			}
		}
	}
	for _, n := range b {
		for _, h := range minedA {
			if n.dag.HaveBlock(h) {
				t.Fatalf("a block of half A crossed the partition: %s", h)
			}
		}
	}
}

// measureHeal calls link, then polls until every node holds the same
// count and tips, and returns the time from the link to that. It waits up
// to healWait, so a heal slower than healLimit is still measured. It logs
// when each node's DAG last changed (nodes are named a0…a4, b0…b4 in the
// order of the halves), so a slow heal shows which nodes lagged.
func measureHeal(t *testing.T, nodes []*node, link func()) (time.Duration, dag.Status) {
	t.Helper()
	type seen struct {
		count   int
		tips    []dag.Hash
		changed time.Duration
	}
	last := make([]seen, len(nodes))
	for i, n := range nodes {
		st := n.dag.Status()
		last[i] = seen{count: st.Count, tips: st.Tips}
	}
	start := time.Now()
	link()
	for {
		for i, n := range nodes {
			st := n.dag.Status()
			if st.Count != last[i].count || !slices.Equal(st.Tips, last[i].tips) {
				last[i] = seen{count: st.Count, tips: st.Tips, changed: time.Since(start)}
			}
		}
		if st, ok := sameTips(nodes); ok {
			elapsed := time.Since(start)
			var line []string
			for i := range nodes {
				line = append(line, fmt.Sprintf("%c%d:%s", "ab"[i/halfSize], i%halfSize, last[i].changed.Round(10*time.Millisecond)))
			}
			t.Logf("each node's last DAG change after the link: %s", strings.Join(line, " "))
			return elapsed, st
		}
		if time.Since(start) > healWait {
			for i, n := range nodes {
				st := n.dag.Status()
				t.Logf("node %c%d: %d blocks, %d tips, syncing %v, %d peers", "ab"[i/halfSize], i%halfSize, st.Count, len(st.Tips), n.sync.Syncing(), len(n.host.Network().Peers()))
			}
			t.Fatalf("no convergence %s after the link", healWait)
		}
		time.Sleep(10 * time.Millisecond) // polling
	}
}

// checkUnion fails unless st is the union of the halves: every block of
// both halves on every node, the count their sum, and the tips the union of
// the halves' tips (nothing was mined after the split, so nothing merges
// them).
func checkUnion(t *testing.T, nodes []*node, st dag.Status, base int, stA, stB dag.Status, minedA, minedB []dag.Hash) {
	t.Helper()
	if want := base + len(minedA) + len(minedB); st.Count != want {
		t.Fatalf("converged on %d blocks, want %d (%d shared + %d + %d)", st.Count, want, base, len(minedA), len(minedB))
	}
	wantTips := append(slices.Clone(stA.Tips), stB.Tips...)
	slices.SortFunc(wantTips, func(a, b dag.Hash) int { return slices.Compare(a[:], b[:]) })
	wantTips = slices.Compact(wantTips)
	got := slices.Clone(st.Tips)
	slices.SortFunc(got, func(a, b dag.Hash) int { return slices.Compare(a[:], b[:]) })
	if !slices.Equal(got, wantTips) {
		t.Fatalf("converged tips %v, want the union of the halves' tips %v", st.Tips, wantTips)
	}
	for i, n := range nodes {
		for _, h := range append(slices.Clone(minedA), minedB...) {
			if !n.dag.HaveBlock(h) {
				t.Fatalf("node %d lacks block %s after the heal", i, h)
			}
		}
	}
}

func addrInfo(n *node) peer.AddrInfo {
	return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
}

// mineAndHeal has both halves (holding base blocks in common) mine
// concurrently apart, checks that each converged on a wide DAG of its own,
// then runs unpartition (if set) and links a random node of each half: all
// nodes must hold identical tips and the union within healLimit.
func mineAndHeal(t *testing.T, rng *rand.Rand, a, b []*node, base int, unpartition func()) {
	t.Helper()
	all := append(slices.Clone(a), b...)
	mined := mineConcurrently(t, a, b)
	stA := waitHalfConverged(t, "A", a, base, mined[0])
	stB := waitHalfConverged(t, "B", b, base, mined[1])
	checkWide(t, "A", a, stA, mined[0])
	checkWide(t, "B", b, stB, mined[1])
	checkApart(t, a, b, mined[0], mined[1])

	from, to := a[rng.IntN(halfSize)], b[rng.IntN(halfSize)]
	elapsed, st := measureHeal(t, all, func() {
		if unpartition != nil {
			unpartition()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := from.host.Connect(ctx, addrInfo(to)); err != nil {
			t.Fatalf("linking the halves: %v", err)
		}
	})
	t.Logf("heal: identical tips on all %d nodes %s after the link (%d blocks, %d tips)",
		len(all), elapsed.Round(time.Millisecond), st.Count, len(st.Tips))
	checkUnion(t, all, st, base, stA, stB, mined[0], mined[1])
	if elapsed > healLimit {
		t.Errorf("heal took %s, want at most %s", elapsed.Round(time.Millisecond), healLimit)
	}
}

// TestPartitionHeals: two halves of five nodes that never met (each joined
// by bootstrap links within the half, no mDNS) mine concurrently, three
// miners a half, into two wide DAGs. One connection between the halves
// heals the partition: all ten nodes hold identical tips and the union of
// both DAGs within healLimit of the link, with the default timers.
func TestPartitionHeals(t *testing.T) {
	if testing.Short() {
		t.Skip("ten nodes")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	rng := rand.New(rand.NewPCG(3, 4))
	a := startHalf(t, rng, home, "a", nil)
	b := startHalf(t, rng, home, "b", nil)
	all := append(slices.Clone(a), b...)
	waitGossipMesh(t, all)

	mineAndHeal(t, rng, a, b, 1, nil)
}

// TestPartitionByBanHeals: ten nodes start as one network and agree on a
// DAG; then every node bans every node of the other half (the connection
// gater refuses dials both ways, and discovery keeps trying), so the
// network splits into two halves of five that mine concurrently into two
// wide DAGs. Lifting the bans and one connection between the halves heal
// it: identical tips and the union on all ten within healLimit, with the
// default timers.
func TestPartitionByBanHeals(t *testing.T) {
	if testing.Short() {
		t.Skip("ten nodes")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	rng := rand.New(rand.NewPCG(5, 6))
	a := startHalf(t, rng, home, "a", nil)
	b := startHalf(t, rng, home, "b", a[0]) // b0 bootstraps from a0: one network
	all := append(slices.Clone(a), b...)
	waitGossipMesh(t, all)

	// A shared DAG before the split.
	shared, err := a[0].miner.Generate(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "the shared blocks everywhere", func() bool {
		st, ok := sameTips(all)
		return ok && st.Count == 1+len(shared)
	})
	base := 1 + len(shared)

	// Split.
	const reason = "partition test"
	for _, x := range a {
		for _, y := range b {
			x.tracker.Ban(y.host.ID(), time.Hour, reason)
			y.tracker.Ban(x.host.ID(), time.Hour, reason)
		}
	}
	waitUntil(t, 30*time.Second, "no connection across the partition", func() bool {
		for _, x := range a {
			for _, y := range b {
				if x.host.Network().Connectedness(y.host.ID()) == network.Connected ||
					y.host.Network().Connectedness(x.host.ID()) == network.Connected {
					return false
				}
			}
		}
		return true
	})
	waitGossipMesh(t, all) // each node still has a mesh peer, in its own half

	mineAndHeal(t, rng, a, b, base, func() {
		refused := uint64(0)
		for _, n := range all {
			refused += n.tracker.Stats().Refused
		}
		t.Logf("partition: %d connections refused by the gaters", refused)
		for _, x := range a {
			for _, y := range b {
				x.tracker.Unban(y.host.ID())
				y.tracker.Unban(x.host.ID())
			}
		}
	})
}
