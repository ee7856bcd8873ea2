package rpc

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/metrics"
)

// Miner is the CPU miner. *miner.Miner implements it.
type Miner interface {
	// Generate mines until n blocks are accepted and returns their hashes;
	// when ctx ends first, those accepted so far and ctx's error.
	Generate(ctx context.Context, n int) ([]dag.Hash, error)
	// SetGenerate starts or stops continuous mining; workers > 0 sets the
	// count, < 0 one per core, 0 keeps the current count.
	SetGenerate(on bool, workers int) error
	Generating() bool
	Workers() int
	HashesPerSecond() float64
}

// BlockMetrics gives the mined-block figures. *metrics.Manager implements it.
type BlockMetrics interface {
	BlockMetrics() metrics.BlockMetrics
	// BlockMetricsJSON is BlockMetrics encoded, cached between changes.
	BlockMetricsJSON() []byte
}

var _ BlockMetrics = (*metrics.Manager)(nil)

// Mining limits.
const (
	// MaxGenerateBlocks bounds one generate call; bigger runs take several.
	MaxGenerateBlocks = 10000
	// MaxGenProcLimit bounds setgenerate's worker count.
	MaxGenProcLimit = 1024
)

func miningMethods() []*method {
	return []*method{
		{
			name: "getblockmetrics", category: "mining",
			summary: "Returns the blocks this node mined that the DAG accepted (soterd).",
			result: fmt.Sprintf(`{"blkgencount": count since start, "blkhashes": the last %d hashes, oldest first, `+
				`"blkgentimes": their solve times in milliseconds}`, metrics.MaxBlockMetrics),
			needs: partMetrics,
			run:   (*Server).handleGetBlockMetrics,
		},
		{
			name: "generate", category: "mining",
			params:  []param{reqInt("numblocks", 1, MaxGenerateBlocks, "how many blocks to mine")},
			summary: "Mines blocks now and returns their hashes once the DAG has accepted them all (bounded by the generate timeout, not the request timeout).",
			result:  `["hash", ...] in the order accepted`,
			needs:   partMiner,
			long:    true,
			run:     (*Server).handleGenerate,
		},
		{
			name: "setgenerate", category: "mining",
			params: []param{
				reqBool("generate", "true to mine continuously, false to stop"),
				optInt("genproclimit", nil, -1, MaxGenProcLimit, "workers: -1 one per core, 0 stops mining, omitted keeps the current count"),
			},
			summary: "Starts or stops continuous mining.",
			result:  "null",
			needs:   partMiner,
			run:     (*Server).handleSetGenerate,
		},
		{
			name: "getgenerate", category: "mining",
			summary: "Reports whether the node mines continuously.",
			result:  "true or false",
			needs:   partMiner,
			run:     (*Server).handleGetGenerate,
		},
		{
			name: "gethashespersec", category: "mining",
			summary: "Returns the miner's recent hash rate.",
			result:  "hashes per second (integer)",
			needs:   partMiner,
			run:     (*Server).handleGetHashesPerSec,
		},
		{
			name: "getmininginfo", category: "mining",
			summary: "Returns mining-related state.",
			result: `{"blocks", "maxheight", "difficulty": of the next block, "errors": "", "generate", "genproclimit", ` +
				`"hashespersec", "testnet", "network"}`,
			run: (*Server).handleGetMiningInfo,
		},
		{
			name: "getdifficulty", category: "mining",
			summary: "Returns the difficulty of the next block on the current tips, as a multiple of the network's easiest.",
			result:  "a number",
			run:     (*Server).handleGetDifficulty,
		},
	}
}

func (s *Server) handleGetBlockMetrics(context.Context, args) (any, error) {
	return json.RawMessage(s.cfg.Metrics.BlockMetricsJSON()), nil
}

func (s *Server) handleGenerate(ctx context.Context, a args) (any, error) {
	n := int(a.int(0))
	hashes, err := s.cfg.Miner.Generate(ctx, n)
	if err != nil {
		if len(hashes) > 0 {
			return nil, errorf(CodeMisc, "generate stopped after %d of %d blocks (%s ... %s): %v", len(hashes), n, hashes[0], hashes[len(hashes)-1], err)
		}
		return nil, toError(fmt.Errorf("generate: %w", err), CodeMisc)
	}
	return dag.HashStrings(hashes), nil
}

func (s *Server) handleSetGenerate(_ context.Context, a args) (any, error) {
	on := a.bool(0)
	workers := 0 // keep the current count
	if a.given(1) {
		switch n := a.int(1); n {
		case 0:
			on = false // soterd and bitcoind: genproclimit 0 stops mining
		default:
			workers = int(n)
		}
	}
	if err := s.cfg.Miner.SetGenerate(on, workers); err != nil {
		return nil, toError(fmt.Errorf("setgenerate: %w", err), CodeMisc)
	}
	return nil, nil
}

func (s *Server) handleGetGenerate(context.Context, args) (any, error) {
	return s.cfg.Miner.Generating(), nil
}

func (s *Server) handleGetHashesPerSec(context.Context, args) (any, error) {
	return int64(s.cfg.Miner.HashesPerSecond()), nil
}

// MiningInfoResult is getmininginfo's result (btcd's GetMiningInfoResult
// without the transaction and block-size fields).
type MiningInfoResult struct {
	Blocks       int64   `json:"blocks"`
	MaxHeight    int64   `json:"maxheight"`
	Difficulty   float64 `json:"difficulty"`
	Errors       string  `json:"errors"`
	Generate     bool    `json:"generate"`
	GenProcLimit int     `json:"genproclimit"`
	HashesPerSec int64   `json:"hashespersec"`
	TestNet      bool    `json:"testnet"`
	Network      string  `json:"network"`
}

func (s *Server) handleGetMiningInfo(context.Context, args) (any, error) {
	st := s.cfg.Chain.Status()
	p := s.cfg.Chain.Params()
	r := MiningInfoResult{
		Blocks:     int64(st.Count),
		MaxHeight:  st.MaxHeight,
		Difficulty: difficulty(s.cfg.Chain.Template().Bits, p),
		TestNet:    p.Name == "testnet",
		Network:    p.Name,
	}
	if m := s.cfg.Miner; m != nil {
		r.Generate = m.Generating()
		r.GenProcLimit = m.Workers()
		r.HashesPerSec = int64(m.HashesPerSecond())
	}
	return r, nil
}

func (s *Server) handleGetDifficulty(context.Context, args) (any, error) {
	return difficulty(s.cfg.Chain.Template().Bits, s.cfg.Chain.Params()), nil
}
