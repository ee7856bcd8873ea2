package syncproto

import (
	"math/rand/v2"
	"testing"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

// TestSessionFillsEveryHole: whatever the DAG's shape (1 to 8 parents,
// several concurrent miners) and whatever the client missed (holes at any
// depth, closed under parents), one session with default options brings the
// client to the server's block set and tips, downloading each missing block
// once: the bytes read stay within 1.2x of the missing blocks' size.
func TestSessionFillsEveryHole(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000-block DAGs")
	}
	cases := []struct {
		seed   uint64
		miners int
		miss   float64 // Holey's probability; 0: the client holds the past of a few random blocks
	}{
		{1, 8, 0.0005},
		{2, 4, 0.001},
		{3, 6, 0},
		{4, 8, 0},
	}
	for _, c := range cases {
		g, err := dagtest.NewGenerator(dag.RegTestParams, c.seed)
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := g.Wide(10_000, c.miners)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(c.seed, 99))
		var kept, missed []*dag.Block
		if c.miss > 0 {
			kept, missed = dagtest.Holey(blocks, c.miss, rng)
		} else {
			kept, missed = pastOfSome(blocks, 5, rng)
		}
		size := 0
		for _, b := range missed {
			size += b.EncodedSize()
		}
		server := newTestNode(t, dag.RegTestParams)
		load(t, server, blocks)
		client := newTestNode(t, dag.RegTestParams)
		load(t, client, kept)
		before := client.m.Stats().BytesIn
		connect(t, client, server)
		eventually(t, "the session to end", func() bool { return client.m.SyncInfo().LastSession.Peer == server.h.ID() })
		info := client.m.SyncInfo()
		if info.LastSession.Reason != EndDone {
			t.Fatalf("seed %d: session ended %q: %s", c.seed, info.LastSession.Reason, info.LastSession.Err)
		}
		if !sameDAG(client.d, server.d) {
			t.Fatalf("seed %d: %d blocks after the session, the server has %d", c.seed, client.d.Count(), server.d.Count())
		}
		if n := client.m.Stats().Sessions; n != 1 {
			t.Fatalf("seed %d: %d sessions, want 1", c.seed, n)
		}
		read := client.m.Stats().BytesIn - before
		ratio := float64(read) / float64(size)
		t.Logf("seed %d, %d miners: %d of %d blocks missing (%d bytes), %d bytes read: %.3fx", c.seed, c.miners, len(missed), len(blocks), size, read, ratio)
		if ratio > 1.2 {
			t.Fatalf("seed %d: read %.2fx the missing blocks' size", c.seed, ratio)
		}
		if client.peers.penalized(server.h.ID(), nil) {
			t.Fatal("honest server penalised")
		}
	}
}

// pastOfSome splits blocks (parents first) into the past of k random blocks
// (what a peer that saw only those and their ancestry holds) and the rest.
func pastOfSome(blocks []*dag.Block, k int, rng *rand.Rand) (kept, missed []*dag.Block) {
	in := map[dag.Hash]bool{}
	for range k {
		in[blocks[rng.IntN(len(blocks))].Hash()] = true
	}
	for i := len(blocks) - 1; i >= 0; i-- { // children before parents
		if in[blocks[i].Hash()] {
			for _, p := range blocks[i].Header.Parents {
				in[p] = true
			}
		}
	}
	for _, b := range blocks {
		if in[b.Hash()] {
			kept = append(kept, b)
		} else {
			missed = append(missed, b)
		}
	}
	return kept, missed
}
