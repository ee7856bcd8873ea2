package dagtest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/dagnode/dagnode/dag"
)

// Addr returns a miner address valid on network p (the prefix, then zeros).
func Addr(p *dag.Params) [dag.AddrLen]byte {
	var a [dag.AddrLen]byte
	a[0] = p.AddrPrefix
	return a
}

// Solve sets h.Nonce to the first nonce from h.Nonce on that meets h.Bits.
func Solve(h *dag.Header) {
	target, ok := dag.TargetFromBits(h.Bits)
	if !ok {
		panic(fmt.Sprintf("dagtest: invalid bits %#08x", h.Bits))
	}
	for ; ; h.Nonce++ {
		hash := h.Hash()
		if dag.MeetsTarget(&hash, &target) {
			return
		}
	}
}

// MakeBlock builds a solved block of network p.
func MakeBlock(p *dag.Params, parents []dag.Hash, bits uint32, timestamp int64, payload []byte) *dag.Block {
	b := &dag.Block{Body: dag.Body{MinerAddr: Addr(p), Payload: payload}}
	b.Header = dag.Header{
		Version:   dag.BlockVersion,
		Net:       p.Net,
		Parents:   parents,
		Timestamp: timestamp,
		Bits:      bits,
		BodyHash:  b.Body.Hash(),
	}
	Solve(&b.Header)
	return b
}

// Generator grows a random multi-parent DAG. Every block it makes has been
// accepted by its own in-memory DAG, so the blocks are valid in that order for
// any fresh DAG of the same network.
type Generator struct {
	// DAG is the generator's in-memory DAG.
	DAG *dag.DAG
	// Blocks are all blocks made so far, parents before children.
	Blocks []*dag.Block

	rng *rand.Rand
	seq uint64
}

// NewGenerator returns a generator for network p whose random choices follow
// seed.
func NewGenerator(p *dag.Params, seed uint64) (*Generator, error) {
	d, err := dag.Open(context.Background(), dssync.MutexWrap(ds.NewMapDatastore()), p)
	if err != nil {
		return nil, err
	}
	return &Generator{DAG: d, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}, nil
}

// Round makes width blocks on the current tips, as width miners working at
// once would, and adds them to the generator's DAG. The next round merges
// them.
func (g *Generator) Round(width int) ([]*dag.Block, error) {
	t := g.DAG.Template()
	out := make([]*dag.Block, width)
	for i := range out {
		g.seq++
		// A distinct payload per block keeps same-round blocks distinct.
		payload := fmt.Appendf(nil, "dagtest %d", g.seq)
		out[i] = MakeBlock(g.DAG.Params(), t.Parents, t.Bits, t.MinTimestamp+int64(g.rng.IntN(1000)), payload)
	}
	for i, err := range g.DAG.ProcessBlocks(context.Background(), out) {
		if err != nil {
			return nil, fmt.Errorf("dagtest: generated block %d rejected: %w", i, err)
		}
	}
	g.Blocks = append(g.Blocks, out...)
	return out, nil
}

// Build makes at least n more blocks in rounds of 1 to maxWidth blocks.
func (g *Generator) Build(n, maxWidth int) ([]*dag.Block, error) {
	var out []*dag.Block
	for len(out) < n {
		w := min(1+g.rng.IntN(maxWidth), n-len(out))
		bs, err := g.Round(w)
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	return out, nil
}

// Wide makes at least n more blocks as miners concurrent miners on a slow
// network would: in each round every miner builds on the same snapshot,
// naming 1 to dag.MaxParents parents drawn at random from the tips, and
// sometimes a recent block that is no tip any more. Side blocks stay
// unmerged for a while and the DAG grows wide, so a peer that saw only part
// of it has holes at any depth.
func (g *Generator) Wide(n, miners int) ([]*dag.Block, error) {
	var out []*dag.Block
	for len(out) < n {
		tips := g.DAG.Tips()
		recent := g.Blocks[max(0, len(g.Blocks)-4*miners):]
		round := make([]*dag.Block, min(miners, n-len(out)))
		for i := range round {
			k := 1 + g.rng.IntN(min(dag.MaxParents, len(tips)))
			pick := map[dag.Hash]bool{}
			for _, j := range g.rng.Perm(len(tips))[:k] {
				pick[tips[j]] = true
			}
			if len(recent) > 0 && len(pick) < dag.MaxParents && g.rng.IntN(3) == 0 {
				pick[recent[g.rng.IntN(len(recent))].Hash()] = true
			}
			parents := make([]dag.Hash, 0, len(pick))
			for h := range pick {
				parents = append(parents, h)
			}
			// A parent in the past of another is invalid: drop it.
			var kept []dag.Hash
			for _, a := range parents {
				inPast := false
				for _, b := range parents {
					if in, _ := g.DAG.IsAncestorOf(a, b); in {
						inPast = true
					}
				}
				if !inPast {
					kept = append(kept, a)
				}
			}
			parents = kept
			slices.SortFunc(parents, func(a, b dag.Hash) int { return bytes.Compare(a[:], b[:]) })
			bits, err := g.DAG.RequiredBits(parents)
			if dag.IsRuleError(err, dag.ErrMergeSetTooBig) {
				t := g.DAG.Template() // the tips left out for long are too far behind
				parents, bits, err = t.Parents, t.Bits, nil
			}
			if err != nil {
				return nil, err
			}
			var ts int64
			for _, h := range parents {
				info, _ := g.DAG.BlockInfo(h)
				ts = max(ts, info.Timestamp)
			}
			g.seq++
			round[i] = MakeBlock(g.DAG.Params(), parents, bits, ts+int64(g.rng.IntN(1000)), fmt.Appendf(nil, "dagtest wide %d", g.seq))
		}
		for i, err := range g.DAG.ProcessBlocks(context.Background(), round) {
			if err != nil {
				return nil, fmt.Errorf("dagtest: generated block %d rejected: %w", i, err)
			}
		}
		g.Blocks = append(g.Blocks, round...)
		out = append(out, round...)
	}
	return out, nil
}

// Holey splits blocks (parents first) into what a peer that missed some of
// them holds and what it lacks: each block is missed with probability p,
// and so is every block above a missed one, so kept is closed under parents
// and has holes at any depth.
func Holey(blocks []*dag.Block, p float64, rng *rand.Rand) (kept, missed []*dag.Block) {
	gone := map[dag.Hash]bool{}
	for _, b := range blocks {
		drop := rng.Float64() < p
		for _, ph := range b.Header.Parents {
			drop = drop || gone[ph]
		}
		if drop {
			gone[b.Hash()] = true
			missed = append(missed, b)
		} else {
			kept = append(kept, b)
		}
	}
	return kept, missed
}

// Branch adds a chain of n blocks on the genesis of d's network, one a
// millisecond after the genesis time, and returns its tip. Branches of
// different lengths carry different payloads, so they share no block.
func Branch(d *dag.DAG, n int) (dag.Hash, error) {
	p := d.Params()
	parent, ts := p.GenesisHash, p.GenesisBlock.Header.Timestamp
	for i := range n {
		b := MakeBlock(p, []dag.Hash{parent}, p.PowLimitBits, ts+int64(i+1), []byte{byte(i), byte(i >> 8), byte(n)})
		if err := d.ProcessBlock(context.Background(), b); err != nil {
			return dag.ZeroHash, fmt.Errorf("dagtest: branch block %d: %w", i, err)
		}
		parent = b.Hash()
	}
	return parent, nil
}
