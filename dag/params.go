package dag

import (
	"fmt"
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
	// TargetBlockInterval is the time difficulty aims at between a block and
	// its selected parent (one step of height).
	TargetBlockInterval time.Duration
	// RetargetInterval is how many heights pass between difficulty changes.
	RetargetInterval int64
	// NoRetarget keeps every block at PowLimitBits (regtest).
	NoRetarget bool
	// GenesisBlock is the root of the DAG; GenesisHash is its hash.
	GenesisBlock *Block
	GenesisHash  Hash
}

// MaxRetargetFactor bounds one difficulty change: the measured timespan is
// clamped to [expected/4, expected*4] before scaling, as in Bitcoin.
const MaxRetargetFactor = 4

// MaxFutureBlockTime is how far ahead of the local clock a block's timestamp
// may be. Two minutes tolerates ordinary clock skew between nodes while
// keeping miners from pulling difficulty down with future timestamps.
const MaxFutureBlockTime = 2 * time.Minute

func powLimit(bits uint) *big.Int {
	one := big.NewInt(1)
	return new(big.Int).Sub(new(big.Int).Lsh(one, bits), one)
}

func newParams(name string, net uint32, prefix byte, limitBits uint, interval time.Duration, retarget int64, noRetarget bool, genesisTime int64) *Params {
	p := &Params{
		Name:                name,
		Net:                 net,
		AddrPrefix:          prefix,
		PowLimit:            powLimit(limitBits),
		TargetBlockInterval: interval,
		RetargetInterval:    retarget,
		NoRetarget:          noRetarget,
	}
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

// The networks. Regtest accepts about every other hash and never retargets, so
// tests make tens of thousands of blocks in seconds; simnet starts at about
// 65,000 hashes a block and retargets towards one block a second, so it is
// easy but real.
var (
	MainNetParams = newParams("mainnet", 0xdA6d0001, 0x1e, 224, 10*time.Second, 64, false, 1793491200000)
	TestNetParams = newParams("testnet", 0xdA6d0002, 0x7f, 232, 10*time.Second, 64, false, 1793491200000)
	SimNetParams  = newParams("simnet", 0xdA6d0003, 0x3f, 240, time.Second, 16, false, 1793491200000)
	RegTestParams = newParams("regtest", 0xdA6d0004, 0x6f, 255, time.Second, 16, true, 1793491200000)
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
