package rpc

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/dagnode/dagnode/dag"
)

// Chain is what the server reads from the DAG. *dag.DAG implements it.
type Chain interface {
	// Status is a consistent summary (tips, count, max height, work).
	Status() dag.Status
	// BlockInfo is the index entry of a block.
	BlockInfo(h dag.Hash) (dag.BlockInfo, bool)
	// Block reads a stored block (dag.ErrUnknownBlock if absent).
	Block(ctx context.Context, h dag.Hash) (*dag.Block, error)
	// HashesAtHeight lists the blocks at a height, sorted.
	HashesAtHeight(height int64) []dag.Hash
	// Params are the network's parameters.
	Params() *dag.Params
	// Template gives, among others, the bits required of the next block.
	Template() dag.Template
}

var _ Chain = (*dag.DAG)(nil)

// Submitter takes a block as one from the network would be taken (in the
// node: the sync manager's Submit with no sender). The error is the DAG's:
// nil when accepted, *dag.RuleError, *dag.MissingParentsError,
// dag.ErrDuplicateBlock, or a local failure.
type Submitter interface {
	SubmitBlock(ctx context.Context, b *dag.Block) error
}

// MaxRenderBlocks bounds the blocks renderdag draws (about 150 bytes of DOT
// each, so at most about a megabyte of output).
const MaxRenderBlocks = 5000

func chainMethods() []*method {
	const verboseHelp = "true for an object, false for the hex encoding"
	return []*method{
		{
			name: "getblockcount", category: "dag",
			summary: "Returns the number of blocks in the DAG, genesis included (soterd; btcd returns the best height).",
			result:  "an integer",
			run:     (*Server).handleGetBlockCount,
		},
		{
			name: "getblockhash", category: "dag",
			params:  []param{reqInt("height", 0, math.MaxInt64, "a block height")},
			summary: "Returns the hashes of the blocks at a height: in a DAG there may be several.",
			result:  `["hash", ...], sorted`,
			run:     (*Server).handleGetBlockHash,
		},
		{
			name: "getblock", category: "dag",
			params:  []param{reqHash("hash", "the block hash, 64 hex digits"), optBool("verbose", true, verboseHelp)},
			summary: "Returns a block.",
			result: `verbose: {header fields as getblockheader, "size": encoded bytes, "mineraddr", "payload": hex}; ` +
				`otherwise the block's encoding in hex`,
			run: (*Server).handleGetBlock,
		},
		{
			name: "getblockheader", category: "dag",
			params:  []param{reqHash("hash", "the block hash, 64 hex digits"), optBool("verbose", true, verboseHelp)},
			summary: "Returns a block header.",
			result: `verbose: {"hash", "confirmations": max height - height + 1, "height", "version", "versionHex", ` +
				`"bodyhash", "time": seconds, "timems": milliseconds, "nonce64": the 64-bit nonce as a decimal string ` +
				`(no "nonce": btcd-family clients read that as 32 bits), "bits": hex, "difficulty", "chainwork": hex, ` +
				`"previousblockhash": the selected parent (absent for genesis), "parents": [{"hash"}, ...] (soterd's shape), ` +
				`"nextblockhashes": children}; ` +
				`otherwise the header's encoding in hex`,
			run: (*Server).handleGetBlockHeader,
		},
		{
			name: "getdagtips", category: "dag",
			summary: "Returns the tips of the DAG (blocks without children) and its size.",
			result:  `{"tips": [hash, ...], "minheight": lowest tip height, "maxheight", "blkcount", "totalwork": hex}`,
			run:     (*Server).handleGetDAGTips,
		},
		{
			name: "getbestblock", category: "dag",
			summary: "Returns the tip with the most chain work.",
			result:  `{"hash", "height"}`,
			run:     (*Server).handleGetBestBlock,
		},
		{
			name: "renderdag", category: "dag",
			params: []param{optInt("heights", int64(0), 0, math.MaxInt64,
				fmt.Sprintf("draw only the last N heights; 0 for the whole DAG (at most %d blocks either way)", MaxRenderBlocks))},
			summary: "Returns the DAG, or its last heights, in Graphviz DOT (render with: dot -Tsvg).",
			result:  `{"dot": "digraph dag {...}"}`,
			run:     (*Server).handleRenderDAG,
		},
		{
			name: "submitblock", category: "dag",
			params:  []param{reqString("hexblock", "the block's encoding in hex")},
			summary: "Submits a block, as if it came from the network.",
			result: `null when accepted; "duplicate" if known; "orphan: ..." if its parents are unknown (kept, parents fetched); ` +
				`"rejected: <reason>" if invalid`,
			needs: partSubmitter,
			run:   (*Server).handleSubmitBlock,
		},
	}
}

func (s *Server) handleGetBlockCount(context.Context, args) (any, error) {
	return int64(s.cfg.Chain.Status().Count), nil
}

func (s *Server) handleGetBlockHash(_ context.Context, a args) (any, error) {
	h := a.int(0)
	hashes := s.cfg.Chain.HashesAtHeight(h)
	if len(hashes) == 0 {
		return nil, errorf(CodeOutOfRange, "block height out of range: %d (the DAG's max height is %d)", h, s.cfg.Chain.Status().MaxHeight)
	}
	return hashStrings(hashes), nil
}

// BlockHeaderResult is getblockheader's verbose result: the fields of
// btcd's and soterd's GetBlockHeaderVerboseResult and GetBlockVerboseResult
// that a DAG header has, with their JSON types, and its own.
type BlockHeaderResult struct {
	Hash          string `json:"hash"`
	Confirmations int64  `json:"confirmations"`
	Height        int64  `json:"height"`
	// Version is int32 as in btcd (the DAG accepts only BlockVersion).
	Version    int32  `json:"version"`
	VersionHex string `json:"versionHex"`
	BodyHash   string `json:"bodyhash"`
	Time       int64  `json:"time"`
	TimeMillis int64  `json:"timems"`
	// Nonce is the 64-bit nonce in decimal. A string, because JSON numbers
	// past 2^53 lose digits in JavaScript and most JSON libraries, and not
	// named "nonce", which btcd-family clients decode as a uint32 (getblock)
	// and would fail on.
	Nonce      string  `json:"nonce64"`
	Bits       string  `json:"bits"`
	Difficulty float64 `json:"difficulty"`
	ChainWork  string  `json:"chainwork"`
	// PreviousHash is the selected parent (the parent with the most chain
	// work), so btcd-style walks follow the selected-parent chain.
	PreviousHash string         `json:"previousblockhash,omitempty"`
	Parents      []ParentResult `json:"parents"`
	NextHashes   []string       `json:"nextblockhashes"`
}

// ParentResult is one entry of a block's parents: soterd's DAGParent
// object, of which a DAG header has only the hash (soterd's parent-list
// "version" and placeholder "parentdata" have no counterpart).
type ParentResult struct {
	Hash string `json:"hash"`
}

// BlockResult is getblock's verbose result: the header's fields and the body.
type BlockResult struct {
	BlockHeaderResult
	Size      int    `json:"size"`
	MinerAddr string `json:"mineraddr"`
	Payload   string `json:"payload"`
}

// loadBlock reads a block and its index entry, or answers -5.
func (s *Server) loadBlock(ctx context.Context, h dag.Hash) (*dag.Block, dag.BlockInfo, error) {
	info, ok := s.cfg.Chain.BlockInfo(h)
	if !ok {
		return nil, info, errorf(CodeBlockNotFound, "block not found: %s", h)
	}
	b, err := s.cfg.Chain.Block(ctx, h)
	if err != nil {
		return nil, info, err
	}
	return b, info, nil
}

func (s *Server) headerResult(b *dag.Block, info dag.BlockInfo) BlockHeaderResult {
	hd := &b.Header
	r := BlockHeaderResult{
		Hash:          info.Hash.String(),
		Confirmations: s.cfg.Chain.Status().MaxHeight - info.Height + 1,
		Height:        info.Height,
		Version:       int32(hd.Version),
		VersionHex:    fmt.Sprintf("%08x", hd.Version),
		BodyHash:      hd.BodyHash.String(),
		Time:          hd.Timestamp / 1000,
		TimeMillis:    hd.Timestamp,
		Nonce:         strconv.FormatUint(hd.Nonce, 10),
		Bits:          fmt.Sprintf("%08x", hd.Bits),
		Difficulty:    difficulty(hd.Bits, s.cfg.Chain.Params()),
		ChainWork:     workHex(info.ChainWork),
		Parents:       parentResults(info.Parents),
		NextHashes:    hashStrings(info.Children),
	}
	if sp, ok := s.selectedParent(info.Parents); ok {
		r.PreviousHash = sp.String()
	}
	return r
}

// selectedParent is the parent with the most chain work, ties to the
// smaller hash (the DAG's rule).
func (s *Server) selectedParent(parents []dag.Hash) (dag.Hash, bool) {
	var best dag.Hash
	var bestWork *big.Int
	for _, p := range parents {
		pi, ok := s.cfg.Chain.BlockInfo(p)
		if !ok || pi.ChainWork == nil {
			continue
		}
		if c := cmpWork(pi.ChainWork, bestWork); c > 0 || (c == 0 && p.Less(best)) {
			best, bestWork = p, pi.ChainWork
		}
	}
	return best, bestWork != nil
}

func cmpWork(a, b *big.Int) int {
	if b == nil {
		return 1
	}
	return a.Cmp(b)
}

func (s *Server) handleGetBlock(ctx context.Context, a args) (any, error) {
	b, info, err := s.loadBlock(ctx, a.hash(0))
	if err != nil {
		return nil, err
	}
	if !a.bool(1) {
		return hex.EncodeToString(b.Encode()), nil
	}
	addr := hex.EncodeToString(b.Body.MinerAddr[:])
	if s.cfg.AddrString != nil {
		addr = s.cfg.AddrString(b.Body.MinerAddr)
	}
	return BlockResult{
		BlockHeaderResult: s.headerResult(b, info),
		Size:              b.EncodedSize(),
		MinerAddr:         addr,
		Payload:           hex.EncodeToString(b.Body.Payload),
	}, nil
}

func (s *Server) handleGetBlockHeader(ctx context.Context, a args) (any, error) {
	b, info, err := s.loadBlock(ctx, a.hash(0))
	if err != nil {
		return nil, err
	}
	if !a.bool(1) {
		return hex.EncodeToString(b.Header.AppendEncode(nil)), nil
	}
	return s.headerResult(b, info), nil
}

// DAGTipsResult is getdagtips' result (soterd's, without its snapshot hash).
type DAGTipsResult struct {
	Tips      []string `json:"tips"`
	MinHeight int64    `json:"minheight"`
	MaxHeight int64    `json:"maxheight"`
	BlkCount  int      `json:"blkcount"`
	TotalWork string   `json:"totalwork"`
}

func (s *Server) handleGetDAGTips(context.Context, args) (any, error) {
	st := s.cfg.Chain.Status()
	r := DAGTipsResult{
		Tips:      hashStrings(st.Tips),
		MinHeight: st.MaxHeight,
		MaxHeight: st.MaxHeight,
		BlkCount:  st.Count,
		TotalWork: workHex(st.TotalWork),
	}
	for _, t := range st.Tips {
		if info, ok := s.cfg.Chain.BlockInfo(t); ok && info.Height < r.MinHeight {
			r.MinHeight = info.Height
		}
	}
	return r, nil
}

// BestBlockResult is getbestblock's result (btcd's GetBestBlockResult).
type BestBlockResult struct {
	Hash   string `json:"hash"`
	Height int64  `json:"height"`
}

func (s *Server) handleGetBestBlock(context.Context, args) (any, error) {
	st := s.cfg.Chain.Status()
	var best dag.BlockInfo
	found := false
	for _, t := range st.Tips {
		info, ok := s.cfg.Chain.BlockInfo(t)
		if !ok || info.ChainWork == nil {
			continue
		}
		if c := cmpWork(info.ChainWork, best.ChainWork); !found || c > 0 || (c == 0 && t.Less(best.Hash)) {
			best, found = info, true
		}
	}
	if !found {
		return nil, errorf(CodeInternal, "internal error: the DAG has no tips")
	}
	return BestBlockResult{Hash: best.Hash.String(), Height: best.Height}, nil
}

// RenderDAGResult is renderdag's result (soterd's RenderDagResult).
type RenderDAGResult struct {
	Dot string `json:"dot"`
}

func (s *Server) handleRenderDAG(_ context.Context, a args) (any, error) {
	st := s.cfg.Chain.Status()
	from := int64(0)
	if n := a.int(0); n > 0 && n <= st.MaxHeight {
		from = st.MaxHeight - n + 1
	}
	if from == 0 && st.Count > MaxRenderBlocks {
		return nil, errorf(CodeInvalidParameter, "the DAG has %d blocks, more than renderdag draws (%d): pass a number of heights", st.Count, MaxRenderBlocks)
	}
	var levels [][]dag.Hash
	n := 0
	for h := from; h <= st.MaxHeight; h++ {
		hs := s.cfg.Chain.HashesAtHeight(h)
		n += len(hs)
		if n > MaxRenderBlocks {
			return nil, errorf(CodeInvalidParameter, "the last %d heights hold more than %d blocks, the most renderdag draws: pass fewer heights", st.MaxHeight-from+1, MaxRenderBlocks)
		}
		levels = append(levels, hs)
	}
	var b strings.Builder
	b.WriteString("digraph dag {\n  rankdir=BT;\n  node [shape=box, fontname=\"monospace\"];\n")
	drawn := make(map[dag.Hash]bool, n)
	for i, hs := range levels {
		for _, h := range hs {
			drawn[h] = true
			fmt.Fprintf(&b, "  \"%s\" [label=\"%s\\nh=%d\"];\n", h, h.String()[:12], from+int64(i))
		}
	}
	outside := map[dag.Hash]bool{}
	for _, hs := range levels {
		for _, h := range hs {
			info, ok := s.cfg.Chain.BlockInfo(h)
			if !ok {
				continue
			}
			for _, p := range info.Parents {
				if !drawn[p] && !outside[p] {
					outside[p] = true
					fmt.Fprintf(&b, "  \"%s\" [label=\"%s\", style=dashed];\n", p, p.String()[:12])
				}
				fmt.Fprintf(&b, "  \"%s\" -> \"%s\";\n", h, p)
			}
		}
	}
	b.WriteString("}\n")
	return RenderDAGResult{Dot: b.String()}, nil
}

func (s *Server) handleSubmitBlock(ctx context.Context, a args) (any, error) {
	hx := a.str(0)
	if len(hx) > 2*dag.MaxBlockSize {
		return nil, errorf(CodeDeserialization, "block too large: %d hex digits, a block is at most %d bytes", len(hx), dag.MaxBlockSize)
	}
	raw, err := hex.DecodeString(hx)
	if err != nil {
		return nil, errorf(CodeDeserialization, "argument must be a hexadecimal string: %v", err)
	}
	b, err := dag.DecodeBlock(raw)
	if err != nil {
		return nil, errorf(CodeDeserialization, "block decode failed: %v", err)
	}
	err = s.cfg.Submitter.SubmitBlock(ctx, b)
	var rule *dag.RuleError
	var orphan *dag.MissingParentsError
	switch {
	case err == nil:
		s.log.Info("block accepted via submitblock", "hash", b.Hash())
		return nil, nil
	case errors.Is(err, dag.ErrDuplicateBlock):
		return "duplicate", nil
	case errors.As(err, &orphan):
		return "orphan: " + err.Error(), nil
	case errors.As(err, &rule):
		return "rejected: " + err.Error(), nil
	}
	return nil, err
}

// difficulty is how many times harder than the network's easiest target
// bits are (btcd's getDifficultyRatio): 1 at the pow limit.
func difficulty(bits uint32, p *dag.Params) float64 {
	target := dag.CompactToBig(bits)
	if target.Sign() <= 0 {
		return 0
	}
	r := new(big.Rat).SetFrac(dag.CompactToBig(p.PowLimitBits), target)
	f, _ := r.Float64()
	return f
}

func workHex(w *big.Int) string {
	if w == nil {
		return "0"
	}
	return w.Text(16)
}

// parentResults lists parents as getblock shows them; never nil.
func parentResults(hs []dag.Hash) []ParentResult {
	out := make([]ParentResult, len(hs))
	for i, h := range hs {
		out[i] = ParentResult{Hash: h.String()}
	}
	return out
}

// hashStrings prints hashes; never nil, so JSON shows [] rather than null.
func hashStrings(hs []dag.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}
