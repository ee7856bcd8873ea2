package dag

import (
	"fmt"
	"math"
	"math/big"
	"time"
)

// Params are the consensus parameters of one network. Blocks of one network
// are invalid on every other: headers carry the network magic, bodies a miner
// address with the network's prefix, and each network has its own genesis.
type Params struct {
	// Name is the network's name: mainnet, testnet, simnet or regtest.
	Name string
	// Net is the network magic written in every header.
	Net uint32
	// AddrPrefix is the first byte of every miner address on the network.
	AddrPrefix byte
	// PowLimit is the easiest target allowed; PowLimitBits is its compact form.
	PowLimit     *big.Int
	PowLimitBits uint32
	// TargetBlockInterval is the time difficulty aims at between two blocks
	// of the whole network (1/λ): the block rate counts every block, so more
	// concurrent miners do not mean more blocks.
	TargetBlockInterval time.Duration
	// DifficultyWindow is how many blocks of a block's past, the latest in
	// GHOSTDAG order, its difficulty is computed from (see requiredBits).
	DifficultyWindow int
	// NoRetarget keeps every block at PowLimitBits (regtest).
	NoRetarget bool
	// MaxDelay is the network delay D the PHANTOM parameter k is sized for:
	// blocks mined within D of each other may not see each other.
	MaxDelay time.Duration
	// K is GHOSTDAG's k: a blue block has at most k blues in its anticone.
	// It is PhantomK(2·MaxDelay/TargetBlockInterval, AnticoneOverflow).
	K int
	// MergeSetSizeLimit bounds a block's merge set (its past minus its
	// selected parent's past, the selected parent included); a block over it
	// is invalid (ErrMergeSetTooBig). It is 10·K, as kaspad's.
	MergeSetSizeLimit int
	// GenesisBlock is the root of the DAG; GenesisHash is its hash.
	GenesisBlock *Block
	GenesisHash  Hash
}

// MaxRetargetFactor bounds one difficulty change: the measured timespan is
// clamped to [expected/4, expected*4] before scaling, as in Bitcoin.
const MaxRetargetFactor = 4

// AnticoneOverflow is δ in the PHANTOM paper: the probability that an
// honest block's anticone exceeds k, against which every network's K is
// sized.
const AnticoneOverflow = 0.01

// PhantomK returns the least k such that a Poisson variable of mean x
// exceeds k with probability below delta. Under the PHANTOM model, with
// block rate λ and network delay D, the anticone of an honest block holds a
// Poisson number of blocks of mean x = 2·D·λ (blocks mined within D before
// or after it).
func PhantomK(x, delta float64) int {
	term := math.Exp(-x) // P(X = j), from j = 0
	cdf := term
	k := 0
	for 1-cdf >= delta {
		k++
		term *= x / float64(k)
		cdf += term
	}
	return k
}

// MaxFutureBlockTime is how far ahead of the local clock a block's timestamp
// may be. Two minutes tolerates ordinary clock skew between nodes while
// keeping miners from pulling difficulty down with future timestamps.
const MaxFutureBlockTime = 2 * time.Minute

func powLimit(bits uint) *big.Int {
	one := big.NewInt(1)
	return new(big.Int).Sub(new(big.Int).Lsh(one, bits), one)
}

func newParams(name string, net uint32, prefix byte, limitBits uint, interval time.Duration, window int, noRetarget bool, genesisTime int64) *Params {
	p := &Params{
		Name:                name,
		Net:                 net,
		AddrPrefix:          prefix,
		PowLimit:            powLimit(limitBits),
		TargetBlockInterval: interval,
		DifficultyWindow:    window,
		NoRetarget:          noRetarget,
		MaxDelay:            networkDelay,
	}
	p.K = PhantomK(2*networkDelay.Seconds()/interval.Seconds(), AnticoneOverflow)
	p.MergeSetSizeLimit = 10 * p.K
	p.PowLimitBits = BigToCompact(p.PowLimit)
	body := Body{Payload: []byte("dagnode " + name + " genesis")}
	body.MinerAddr[0] = prefix
	p.GenesisBlock = &Block{
		Header: Header{
			Version:   BlockVersion,
			Net:       net,
			Timestamp: genesisTime,
			Bits:      p.PowLimitBits,
			BodyHash:  body.Hash(),
		},
		Body: body,
	}
	p.GenesisHash = p.GenesisBlock.Hash()
	return p
}

// networkDelay is the D every network's k is sized for: five seconds covers
// a block's propagation across a large peer-to-peer network with margin.
const networkDelay = 5 * time.Second

// The networks. Regtest accepts about every other hash and never retargets, so
// tests make tens of thousands of blocks in seconds; simnet starts at about
// 65,000 hashes a block and retargets towards one block a second across the
// network, so it is easy but real. With D = 5 s and δ = 0.01: mainnet and
// testnet (one block per 10 s, x = 1) have k = 4 and a merge set limit of
// 40; simnet and regtest (one block per second, x = 10) k = 18 and 180.
var (
	MainNetParams = newParams("mainnet", 0xdA6d0001, 0x1e, 224, 10*time.Second, 128, false, 1793491200000)
	TestNetParams = newParams("testnet", 0xdA6d0002, 0x7f, 232, 10*time.Second, 128, false, 1793491200000)
	SimNetParams  = newParams("simnet", 0xdA6d0003, 0x3f, 240, time.Second, 64, false, 1793491200000)
	RegTestParams = newParams("regtest", 0xdA6d0004, 0x6f, 255, time.Second, 64, true, 1793491200000)
)

// Networks lists every network's parameters.
func Networks() []*Params {
	return []*Params{MainNetParams, TestNetParams, SimNetParams, RegTestParams}
}

// ParamsByName returns the parameters of the named network.
func ParamsByName(name string) (*Params, error) {
	for _, p := range Networks() {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("dag: unknown network %q (want mainnet, testnet, simnet or regtest)", name)
}
