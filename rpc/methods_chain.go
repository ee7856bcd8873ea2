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
	// TotalWork is the work of every block, red or blue.
	TotalWork() *big.Int
	// Virtual is the virtual block's view: GHOSTDAG score and order.
	Virtual() dag.VirtualInfo
	// Order pages through the DAG's total order.
	Order(from int64, count int) ([]dag.OrderedBlock, int64)
}

var _ Chain = (*dag.DAG)(nil)

// Submitter takes a block as one from the network would be taken (in the
// node: the sync manager's Submit with no sender). The error is the DAG's:
// nil when accepted, *dag.RuleError, *dag.MissingParentsError,
// dag.ErrDuplicateBlock, or a local failure.
type Submitter interface {
	SubmitBlock(ctx context.Context, b *dag.Block) error
}

// MaxOrderPage bounds the blocks getdagorder and getdagcoloring list at once
// (about 100 bytes of JSON each).
const MaxOrderPage = 10000

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
				`(no "nonce": btcd-family clients read that as 32 bits), "bits": hex, "difficulty", ` +
				`"chainwork": hex, the work of the block and its blue past, ` +
				`"previousblockhash" and "selectedparent": the parent with the most blue work (absent for genesis), ` +
				`"parents": [{"hash"}, ...] (soterd's shape), "nextblockhashes": children, ` +
				`"bluescore", "bluework": hex (the blue blocks of its past), "mergesetblues", "mergesetreds": its merge set ` +
				`coloured in its view, "isblue" and "isinchain": its colour and whether it is on the selected chain in the ` +
				`DAG's view now, "order": its position in getdagorder (-1 if not merged)}; ` +
				`otherwise the header's encoding in hex`,
			run: (*Server).handleGetBlockHeader,
		},
		{
			name: "getdagtips", category: "dag",
			summary: "Returns the tips of the DAG (blocks without children) and its size.",
			result: `{"tips": [hash, ...], "minheight": lowest tip height, "maxheight", "blkcount", "totalwork": hex, ` +
				`every block's work, "virtualselectedparent": the tip with the most blue work, "bluescore", "bluework": hex, ` +
				`the DAG's score}`,
			run: (*Server).handleGetDAGTips,
		},
		{
			name: "getblockdaginfo", category: "dag",
			summary: "Returns the DAG's GHOSTDAG state (kaspad's name): the virtual block over the tips.",
			result: `{"network", "blocks", "tips": [hash, ...], "virtualparents": [hash, ...], "virtualselectedparent", ` +
				`"bluescore", "bluework": hex, "k", "mergesetsizelimit", "daascore": blocks in the order, ` +
				`"bits": hex, "difficulty": of the next block}`,
			run: (*Server).handleGetBlockDAGInfo,
		},
		{
			name: "getdagorder", category: "dag",
			params: []param{
				optInt("from", int64(0), 0, math.MaxInt64, "first position, from 0 (the genesis)"),
				optInt("count", int64(1000), 1, MaxOrderPage, fmt.Sprintf("blocks to list, at most %d", MaxOrderPage)),
			},
			summary: "Returns a page of the DAG's total order: the selected chain from the genesis, each chain block " +
				"preceded by the rest of its merge set in ascending blue work.",
			result: `{"total": blocks in the order, "blocks": [{"hash", "order", "isblue", "isinchain"}, ...]}`,
			run:    (*Server).handleGetDAGOrder,
		},
		{
			name: "getdagcoloring", category: "dag",
			params: []param{
				optInt("from", int64(0), 0, math.MaxInt64, "first position in the order"),
				optInt("count", int64(MaxOrderPage), 1, MaxOrderPage, fmt.Sprintf("blocks to list, at most %d", MaxOrderPage)),
			},
			summary: "Returns blocks with their GHOSTDAG colour in the DAG's order (soterd's method, paged: " +
				"pass FROM to read past the first page).",
			result: `[{"hash", "isblue"}, ...]`,
			run:    (*Server).handleGetDAGColoring,
		},
		{
			name: "getbestblock", category: "dag",
			summary: "Returns the tip with the most blue work (the virtual's selected parent).",
			result:  `{"hash", "height"}`,
			run:     (*Server).handleGetBestBlock,
		},
		{
			name: "renderdag", category: "dag",
			params: []param{optInt("heights", int64(0), 0, math.MaxInt64,
				fmt.Sprintf("draw only the last N heights; 0 for the whole DAG (at most %d blocks either way)", MaxRenderBlocks))},
			summary: "Returns the DAG, or its last heights, in Graphviz DOT (render with: dot -Tsvg): blue and red " +
				"blocks filled with their colour, the selected chain drawn bold.",
			result: `{"dot": "digraph dag {...}"}`,
			run:    (*Server).handleRenderDAG,
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
	return dag.HashStrings(hashes), nil
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
	// ChainWork is the work of the block and of the blue blocks of its past.
	ChainWork string `json:"chainwork"`
	// PreviousHash is the selected parent (the parent with the most blue
	// work), so btcd-style walks follow the selected-parent chain.
	PreviousHash string         `json:"previousblockhash,omitempty"`
	Parents      []ParentResult `json:"parents"`
	NextHashes   []string       `json:"nextblockhashes"`

	// GHOSTDAG data, in the block's own view.
	SelectedParent string   `json:"selectedparent,omitempty"`
	BlueScore      uint64   `json:"bluescore"`
	BlueWork       string   `json:"bluework"`
	MergeSetBlues  []string `json:"mergesetblues"`
	MergeSetReds   []string `json:"mergesetreds"`
	// IsBlue and IsInChain are in the DAG's view now (the virtual block's);
	// Order is the position in getdagorder, -1 if the virtual does not merge
	// the block.
	IsBlue    bool  `json:"isblue"`
	IsInChain bool  `json:"isinchain"`
	Order     int64 `json:"order"`
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
		ChainWork:     workHex(new(big.Int).Add(info.BlueWork, dag.Work(hd.Bits))),
		Parents:       parentResults(info.Parents),
		NextHashes:    dag.HashStrings(info.Children),
		BlueScore:     info.BlueScore,
		BlueWork:      workHex(info.BlueWork),
		MergeSetBlues: dag.HashStrings(info.MergeSetBlues),
		MergeSetReds:  dag.HashStrings(info.MergeSetReds),
		IsBlue:        info.IsBlue,
		IsInChain:     info.IsInChain,
		Order:         info.Order,
	}
	if len(info.Parents) > 0 {
		r.PreviousHash = info.SelectedParent.String()
		r.SelectedParent = r.PreviousHash
	}
	return r
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

	VirtualSelectedParent string `json:"virtualselectedparent"`
	BlueScore             uint64 `json:"bluescore"`
	BlueWork              string `json:"bluework"`
}

func (s *Server) handleGetDAGTips(context.Context, args) (any, error) {
	st := s.cfg.Chain.Status()
	v := s.cfg.Chain.Virtual()
	r := DAGTipsResult{
		Tips:                  dag.HashStrings(st.Tips),
		MinHeight:             st.MaxHeight,
		MaxHeight:             st.MaxHeight,
		BlkCount:              st.Count,
		TotalWork:             workHex(s.cfg.Chain.TotalWork()),
		VirtualSelectedParent: v.SelectedParent.String(),
		BlueScore:             v.BlueScore,
		BlueWork:              workHex(v.BlueWork),
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
	sp := s.cfg.Chain.Virtual().SelectedParent
	info, ok := s.cfg.Chain.BlockInfo(sp)
	if !ok {
		return nil, errorf(CodeInternal, "internal error: the virtual's selected parent %s is not in the DAG", sp)
	}
	return BestBlockResult{Hash: sp.String(), Height: info.Height}, nil
}

// BlockDAGInfoResult is getblockdaginfo's result.
type BlockDAGInfoResult struct {
	Network               string   `json:"network"`
	Blocks                int      `json:"blocks"`
	Tips                  []string `json:"tips"`
	VirtualParents        []string `json:"virtualparents"`
	VirtualSelectedParent string   `json:"virtualselectedparent"`
	BlueScore             uint64   `json:"bluescore"`
	BlueWork              string   `json:"bluework"`
	K                     int      `json:"k"`
	MergeSetSizeLimit     int      `json:"mergesetsizelimit"`
	DAAScore              int64    `json:"daascore"`
	Bits                  string   `json:"bits"`
	Difficulty            float64  `json:"difficulty"`
}

func (s *Server) handleGetBlockDAGInfo(context.Context, args) (any, error) {
	st := s.cfg.Chain.Status()
	v := s.cfg.Chain.Virtual()
	p := s.cfg.Chain.Params()
	return BlockDAGInfoResult{
		Network:               p.Name,
		Blocks:                st.Count,
		Tips:                  dag.HashStrings(st.Tips),
		VirtualParents:        dag.HashStrings(v.Parents),
		VirtualSelectedParent: v.SelectedParent.String(),
		BlueScore:             v.BlueScore,
		BlueWork:              workHex(v.BlueWork),
		K:                     p.K,
		MergeSetSizeLimit:     p.MergeSetSizeLimit,
		DAAScore:              v.PastSize,
		Bits:                  fmt.Sprintf("%08x", v.Bits),
		Difficulty:            difficulty(v.Bits, p),
	}, nil
}

// OrderedBlockResult is one block of getdagorder.
type OrderedBlockResult struct {
	Hash      string `json:"hash"`
	Order     int64  `json:"order"`
	IsBlue    bool   `json:"isblue"`
	IsInChain bool   `json:"isinchain"`
}

// DAGOrderResult is getdagorder's result.
type DAGOrderResult struct {
	Total  int64                `json:"total"`
	Blocks []OrderedBlockResult `json:"blocks"`
}

func (s *Server) handleGetDAGOrder(_ context.Context, a args) (any, error) {
	blocks, total := s.cfg.Chain.Order(a.int(0), int(a.int(1)))
	r := DAGOrderResult{Total: total, Blocks: make([]OrderedBlockResult, len(blocks))}
	for i, b := range blocks {
		r.Blocks[i] = OrderedBlockResult{Hash: b.Hash.String(), Order: b.Order, IsBlue: b.IsBlue, IsInChain: b.IsInChain}
	}
	return r, nil
}

// ColoringResult is one entry of getdagcoloring (soterd's DagColoringResult).
type ColoringResult struct {
	Hash   string `json:"hash"`
	IsBlue bool   `json:"isblue"`
}

func (s *Server) handleGetDAGColoring(_ context.Context, a args) (any, error) {
	blocks, _ := s.cfg.Chain.Order(a.int(0), int(a.int(1)))
	out := make([]ColoringResult, len(blocks))
	for i, b := range blocks {
		out[i] = ColoringResult{Hash: b.Hash.String(), IsBlue: b.IsBlue}
	}
	return out, nil
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
	b.WriteString("digraph dag {\n  rankdir=BT;\n  node [shape=box, style=filled, fontname=\"monospace\"];\n")
	drawn := make(map[dag.Hash]bool, n)
	for i, hs := range levels {
		for _, h := range hs {
			drawn[h] = true
			info, _ := s.cfg.Chain.BlockInfo(h)
			colour := `fillcolor="#f4b6b6"` // red, or not merged
			if info.IsBlue {
				colour = `fillcolor="#a8c8f0"`
			}
			if info.IsInChain {
				colour += ", penwidth=3"
			}
			fmt.Fprintf(&b, "  \"%s\" [label=\"%s\\nh=%d s=%d\", %s];\n", h, h.String()[:12], from+int64(i), info.BlueScore, colour)
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
				edge := ""
				if p == info.SelectedParent {
					edge = " [penwidth=3]"
				}
				fmt.Fprintf(&b, "  \"%s\" -> \"%s\"%s;\n", h, p, edge)
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
