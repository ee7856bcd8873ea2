package dagtest

import (
	"slices"
	"time"

	"github.com/dagnode/dagnode/dag"
)

// Invalid is a block that a DAG holding only the genesis must refuse.
type Invalid struct {
	// Name says what is wrong.
	Name string
	// Block is the bad block (solved, so only the named fault is present
	// unless the fault is the proof of work itself).
	Block *dag.Block
	// Code is the rule it breaks.
	Code dag.ErrorCode
}

// InvalidBlocks returns blocks on network p's genesis that each break one rule.
// now is the validating node's clock.
func InvalidBlocks(p *dag.Params, now time.Time) []Invalid {
	g := p.GenesisHash
	ts := p.GenesisBlock.Header.Timestamp + 1
	valid := func() *dag.Block { return MakeBlock(p, []dag.Hash{g}, p.PowLimitBits, ts, nil) }
	resolve := func(b *dag.Block) *dag.Block {
		b.Header.BodyHash = b.Body.Hash()
		b.Header.Nonce = 0
		Solve(&b.Header)
		return b
	}
	other := dag.RegTestParams
	if p == dag.RegTestParams {
		other = dag.SimNetParams
	}
	var cases []Invalid
	add := func(name string, code dag.ErrorCode, b *dag.Block) {
		cases = append(cases, Invalid{Name: name, Block: b, Code: code})
	}

	b := valid()
	b.Header.Version = 2
	add("unknown version", dag.ErrBadVersion, resolve(b))

	b = valid()
	b.Header.Net = other.Net
	add("other network's magic", dag.ErrWrongNetwork, resolve(b))

	b = valid()
	b.Header.Parents = nil
	add("no parents", dag.ErrNoParents, resolve(b))

	b = valid()
	for i := range dag.MaxParents + 1 {
		var h dag.Hash
		h[0] = byte(i + 1)
		b.Header.Parents = append(b.Header.Parents, h)
	}
	add("too many parents", dag.ErrTooManyParents, resolve(b))

	b = valid()
	b.Header.Parents = []dag.Hash{g, g}
	add("duplicate parent", dag.ErrDuplicateParent, resolve(b))

	b = valid()
	high := g
	high[0] ^= 0xff
	b.Header.Parents = []dag.Hash{g, high}
	if g.Less(high) {
		slices.Reverse(b.Header.Parents)
	}
	add("parents not sorted", dag.ErrParentsNotSorted, resolve(b))

	b = valid()
	b.Body.Payload = []byte("changed after hashing")
	b.Header.Nonce = 0
	Solve(&b.Header)
	add("body does not match header", dag.ErrBadBodyHash, b)

	b = valid()
	b.Body.Payload = make([]byte, dag.MaxPayloadSize+1)
	add("payload too big", dag.ErrPayloadTooBig, resolve(b))

	b = valid()
	b.Body.MinerAddr[0] = other.AddrPrefix
	add("other network's miner address", dag.ErrBadMinerAddress, resolve(b))

	b = valid()
	b.Header.Bits = dag.BigToCompact(dag.CompactToBig(p.PowLimitBits).Lsh(dag.CompactToBig(p.PowLimitBits), 1))
	add("target above pow limit", dag.ErrBadTarget, resolve(b))

	b = valid()
	target, _ := dag.TargetFromBits(b.Header.Bits)
	for {
		b.Header.Nonce++
		h := b.Header.Hash()
		if !dag.MeetsTarget(&h, &target) {
			break
		}
	}
	add("hash above target", dag.ErrBadPoW, b)

	b = valid()
	b.Header.Timestamp = now.Add(dag.MaxFutureBlockTime + time.Minute).UnixMilli()
	add("timestamp too far ahead", dag.ErrTimeTooNew, resolve(b))

	b = valid()
	b.Header.Timestamp = p.GenesisBlock.Header.Timestamp - 1
	add("timestamp before selected parent", dag.ErrTimeTooOld, resolve(b))

	b = valid()
	b.Header.Bits = dag.BigToCompact(dag.CompactToBig(p.PowLimitBits).Rsh(dag.CompactToBig(p.PowLimitBits), 1))
	add("harder target than required", dag.ErrWrongTarget, resolve(b))
	return cases
}
