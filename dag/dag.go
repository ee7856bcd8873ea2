package dag

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/ipfs/go-datastore"
)

// blockNode is a block in the in-memory index. Fields are written once, when
// the node is added under the write lock, except children (appended), the
// reachability labels and the future covering set, all changed under the
// write lock.
type blockNode struct {
	hash      Hash
	parents   []*blockNode
	children  []*blockNode
	height    int64
	timestamp int64
	bits      uint32
	work      *big.Int // Work(bits), shared: never changed

	// GHOSTDAG data (ghostdag.go).
	selectedParent *blockNode
	blues          []*blockNode // merge-set blues, the selected parent first
	reds           []*blockNode // merge-set reds
	anticone       []anticoneSize
	blueScore      uint64
	blueWork       *big.Int
	pastSize       int64 // blocks in the past: the block's position in the GHOSTDAG order
	chainDepth     int64 // selected-parent steps from the genesis

	// Reachability (reachability.go).
	enter, exit omItem
	futureCover []*blockNode
}

// DAG is the block DAG: an in-memory index of every block over a datastore
// that holds the blocks. Reads are concurrent under a RWMutex; writes
// (ProcessBlock, ProcessBlocks) are serialised by a second mutex and hold the
// RWMutex only to update the index, never while waiting for the disk. In the
// node the sync manager is their only caller.
type DAG struct {
	params *Params
	store  ds.Batching
	log    *slog.Logger
	now    func() time.Time

	// writeMu serialises writers: a block is checked, stored and indexed
	// under it, so the index cannot change between the check and the index
	// update, while mu is held only for the short index update and readers
	// never wait for the disk.
	writeMu sync.Mutex
	failed  error // a storage failure; every later write returns it. Guarded by writeMu.

	mu          sync.RWMutex
	index       map[Hash]*blockNode
	byHeight    [][]*blockNode
	tips        map[Hash]*blockNode
	totalWork   *big.Int
	reach       *reachability
	virtual     *blockNode   // the virtual block over the tips (virtual.go)
	virtualRest []*blockNode // the virtual's merge set without its selected parent
	chain       []*blockNode // the virtual's selected chain, genesis first: chain[n.chainDepth] == n

	version atomic.Uint64

	// plain is the benchmarks' baseline, the DAG as it was before GHOSTDAG:
	// no colouring, no reachability, no virtual block, headers stored alone.
	// Only export_test.go sets it; such a DAG answers nothing but Count.
	plain bool
}

// Option tunes a DAG.
type Option func(*DAG)

// WithClock sets the clock used for the future-timestamp rule. Default: time.Now.
func WithClock(now func() time.Time) Option { return func(d *DAG) { d.now = now } }

// WithLogger sets the logger. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(d *DAG) { d.log = l } }

// Open loads the DAG of network p from store, writing the genesis block into an
// empty store. It refuses a store holding another network's DAG, and one whose
// index is inconsistent (a parent missing, a wrong height, wrong tips).
func Open(ctx context.Context, store ds.Batching, p *Params, opts ...Option) (*DAG, error) {
	d := &DAG{
		params:    p,
		store:     store,
		log:       slog.Default(),
		now:       time.Now,
		index:     make(map[Hash]*blockNode),
		tips:      make(map[Hash]*blockNode),
		totalWork: new(big.Int),
		reach:     newReachability(),
	}
	for _, o := range opts {
		o(d)
	}
	g, err := store.Get(ctx, ds.RawKey(keyGenesis))
	switch {
	case errors.Is(err, ds.ErrNotFound):
		if err := d.writeGenesis(ctx); err != nil {
			return nil, fmt.Errorf("dag: writing genesis: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("dag: reading store: %w", err)
	case len(g) != HashSize || Hash(g) != p.GenesisHash:
		return nil, fmt.Errorf("dag: the store holds another network's DAG (genesis %x, %s genesis is %s)", g, p.Name, p.GenesisHash)
	}
	if err := d.load(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *DAG) writeGenesis(ctx context.Context) error {
	g := d.params.GenesisBlock
	n := newNode(d.params.GenesisHash, &g.Header, nil)
	n.setScores()
	b, err := d.store.Batch(ctx)
	if err != nil {
		return err
	}
	if err := putBlock(ctx, b, g.Encode(), n, appendGhostdag(g.Header.AppendEncode(nil), n), nil); err != nil {
		return err
	}
	if err := b.Commit(ctx); err != nil {
		return err
	}
	if err := d.store.Put(ctx, ds.RawKey(keyGenesis), n.hash[:]); err != nil {
		return err
	}
	return d.store.Sync(ctx, ds.RawKey("/dag"))
}

// load rebuilds the index from the height entries, which come in height order
// so every parent is indexed before its children. Each entry holds the
// header and the block's GHOSTDAG data, so nothing is recomputed; a store
// written before GHOSTDAG existed has entries without it, and load computes
// it once and writes it back.
func (d *DAG) load(ctx context.Context) error {
	var legacy []*blockNode
	err := queryKeys(ctx, d.store, prefixHeight, false, func(key string, value []byte) error {
		height, hash, err := parseHeightKey(key, prefixHeight)
		if err != nil {
			return err
		}
		h, gd, err := decodeHeader(value)
		if err != nil {
			return fmt.Errorf("block %s: %w", hash, err)
		}
		parents := make([]*blockNode, len(h.Parents))
		for i, ph := range h.Parents {
			if parents[i] = d.index[ph]; parents[i] == nil {
				return fmt.Errorf("block %s: parent %s is not stored", hash, ph)
			}
		}
		if len(parents) == 0 && hash != d.params.GenesisHash {
			return fmt.Errorf("block %s has no parents and is not the genesis", hash)
		}
		n := newNode(hash, &h, parents)
		if n.height != height {
			return fmt.Errorf("block %s stored at height %d, its parents put it at %d", hash, height, n.height)
		}
		if len(gd) == 0 {
			d.computeGhostdag(n)
			legacy = append(legacy, n)
		} else if err := decodeGhostdag(gd, n, d.index, d.params.MergeSetSizeLimit); err != nil {
			return fmt.Errorf("block %s: %w", hash, err)
		}
		d.addNode(n)
		return nil
	})
	if err != nil {
		return fmt.Errorf("dag: store inconsistent: %w", err)
	}
	d.updateVirtual()
	if len(legacy) > 0 {
		if err := d.writeLegacyGhostdag(ctx, legacy); err != nil {
			return fmt.Errorf("dag: storing GHOSTDAG data: %w", err)
		}
	}
	if err := d.moveLegacyBlocks(ctx); err != nil {
		return fmt.Errorf("dag: moving blocks into height order: %w", err)
	}
	if d.index[d.params.GenesisHash] == nil {
		return errors.New("dag: store inconsistent: genesis block missing")
	}
	stored := make(map[Hash]bool)
	err = queryKeys(ctx, d.store, prefixTip, true, func(key string, _ []byte) error {
		h, err := parseHashKey(key, prefixTip)
		stored[h] = true
		return err
	})
	if err != nil {
		return fmt.Errorf("dag: reading tips: %w", err)
	}
	if len(stored) != len(d.tips) {
		return fmt.Errorf("dag: store inconsistent: %d tips stored, %d blocks have no children", len(stored), len(d.tips))
	}
	for h := range d.tips {
		if !stored[h] {
			return fmt.Errorf("dag: store inconsistent: block %s has no children but is not a stored tip", h)
		}
	}
	d.log.Info("dag loaded", "network", d.params.Name, "blocks", len(d.index), "height", len(d.byHeight)-1, "tips", len(d.tips))
	return nil
}

// newNode builds an index node, without its GHOSTDAG data, for a header
// whose parents are indexed.
func newNode(hash Hash, h *Header, parents []*blockNode) *blockNode {
	n := &blockNode{hash: hash, parents: parents, timestamp: h.Timestamp, bits: h.Bits, work: sharedWork(h.Bits)}
	if len(parents) > 0 {
		n.height = maxHeight(parents) + 1
	}
	return n
}

// computeGhostdag sets the GHOSTDAG data of a node whose parents are
// indexed, without checking the merge set limit (the block was accepted
// under its rules).
func (d *DAG) computeGhostdag(n *blockNode) {
	if len(n.parents) == 0 {
		n.setScores()
		return
	}
	sp := selectParent(n.parents)
	rest, _ := mergeSet(sp, n.parents, math.MaxInt)
	colour(n, sp, rest, d.params.K)
}

// addNode links n, with its GHOSTDAG data, into the reachability index and
// the index. The caller moves the virtual block (updateVirtual) once it has
// added its blocks. Called with mu held for writing (or before the DAG is
// shared).
func (d *DAG) addNode(n *blockNode) {
	if !d.plain {
		d.reach.add(n)
	}
	d.indexNode(n)
}

// indexNode links n into the index: the block becomes visible to readers.
// Called with mu held for writing.
func (d *DAG) indexNode(n *blockNode) {
	d.index[n.hash] = n
	for int64(len(d.byHeight)) <= n.height {
		d.byHeight = append(d.byHeight, nil)
	}
	d.byHeight[n.height] = append(d.byHeight[n.height], n)
	for _, p := range n.parents {
		p.children = append(p.children, n)
		delete(d.tips, p.hash)
	}
	d.tips[n.hash] = n
	d.totalWork.Add(d.totalWork, n.work)
	d.version.Add(1)
}

// ProcessBlock validates a block and, if it is valid and new, adds it to the
// DAG. A nil error means the block is accepted and on disk: it survives a
// crash. Otherwise the error is a *RuleError (invalid block), a
// *MissingParentsError (an orphan: fetch its parents), ErrDuplicateBlock, or a
// storage error.
func (d *DAG) ProcessBlock(ctx context.Context, b *Block) error {
	return d.ProcessBlocks(ctx, []*Block{b})[0]
}

// ProcessBlocks processes blocks in order, as ProcessBlock does, and waits for
// the disk once for all of them; a block may name an earlier one as parent.
// errs[i] is the outcome for blocks[i].
//
// The accepted blocks are written in one batch and indexed together once it
// is committed, so readers never see a block the store does not hold yet;
// the call then moves the virtual block once and syncs once.
func (d *DAG) ProcessBlocks(ctx context.Context, blocks []*Block) []error {
	checked, errs := d.checkAll(blocks)
	return d.processBlocks(ctx, checked, errs, true)
}

// CommitBlocks is ProcessBlocks without the wait for stable storage: the
// accepted blocks are committed to the store (readers see them at once) and
// reach the disk with the next Sync or ProcessBlocks. A crash before then,
// of the process or the machine, may lose them, never anything before them:
// the store keeps a prefix of its log, and what is left is a consistent DAG
// (TestCrashConsistency). It is for blocks that peers can send again; the
// caller bounds how long they wait for Sync.
func (d *DAG) CommitBlocks(ctx context.Context, blocks []*Block) []error {
	checked, errs := d.checkAll(blocks)
	return d.processBlocks(ctx, checked, errs, false)
}

// Checked is a block that passed CheckSanity (Check), with its hash and its
// encoding: CommitChecked takes it without checking or encoding it again.
type Checked struct {
	block *Block
	hash  Hash
	raw   []byte // the block's encoding; nil: encode when stored
}

// Block returns the block. The caller must not change it.
func (c Checked) Block() *Block { return c.block }

// Hash returns the block's hash.
func (c Checked) Hash() Hash { return c.hash }

// Check decodes a block and runs CheckSanity on it, outside any lock: the
// part of adding a block that needs no other block, so that a caller with
// blocks from the network can do it beside the writer. raw is kept (as the
// block's stored encoding) and must not be changed afterwards.
func (d *DAG) Check(raw []byte) (Checked, error) { return CheckRaw(raw, d.params, d.now()) }

// CheckRaw is Check for a caller without the DAG (a gossip validator).
func CheckRaw(raw []byte, p *Params, now time.Time) (Checked, error) {
	b, err := DecodeBlock(raw)
	if err != nil {
		return Checked{}, err
	}
	hash, err := CheckSanity(b, p, now)
	if err != nil {
		return Checked{}, err
	}
	return Checked{block: b, hash: hash, raw: raw}, nil
}

// CommitChecked is CommitBlocks for blocks that passed Check.
func (d *DAG) CommitChecked(ctx context.Context, blocks []Checked) []error {
	return d.processBlocks(ctx, blocks, make([]error, len(blocks)), false)
}

// checkAll runs CheckSanity on blocks: errs[i] is blocks[i]'s verdict.
func (d *DAG) checkAll(blocks []*Block) (checked []Checked, errs []error) {
	checked, errs = make([]Checked, len(blocks)), make([]error, len(blocks))
	now := d.now()
	for i, b := range blocks {
		checked[i].block = b
		checked[i].hash, errs[i] = CheckSanity(b, d.params, now)
	}
	return checked, errs
}

// Sync waits until every block committed so far is on stable storage. A
// failure fails the DAG, as a failed write does.
func (d *DAG) Sync(ctx context.Context) error {
	if err := d.store.Sync(ctx, ds.RawKey("/dag")); err != nil {
		d.writeMu.Lock()
		defer d.writeMu.Unlock()
		return d.fail(err)
	}
	return nil
}

// processBlocks adds blocks whose errs[i] is nil (errs holds the sanity
// verdicts and is filled in with the outcomes), syncing if durable.
func (d *DAG) processBlocks(ctx context.Context, blocks []Checked, errs []error, durable bool) []error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if d.failed != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = d.failed
			}
		}
		return errs
	}
	batch, err := d.store.Batch(ctx)
	if err != nil {
		failed := d.fail(err)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = failed
			}
		}
		return errs
	}
	st := &staging{pending: make(map[Hash]*blockNode, len(blocks)), untipped: make(map[*blockNode]bool, len(blocks))}
	for i, c := range blocks {
		if errs[i] != nil {
			continue
		}
		if errs[i] = d.stage(ctx, batch, st, c); errs[i] == nil {
			st.nodes = append(st.nodes, st.pending[c.hash])
		}
	}
	failAll := func(err error) []error {
		failed := d.fail(err)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = failed
			}
		}
		return errs
	}
	if d.failed != nil { // the batch could not take a block: commit none
		return failAll(d.failed)
	}
	if len(st.nodes) == 0 {
		return errs
	}
	if err := batch.Commit(ctx); err != nil {
		return failAll(err)
	}
	d.mu.Lock()
	for _, n := range st.nodes {
		d.indexNode(n)
	}
	if !d.plain {
		d.updateVirtual()
	}
	d.mu.Unlock()
	if !durable {
		return errs
	}
	// Wait for the disk without holding mu: readers and the miner see the
	// new blocks meanwhile, but nobody is told they are accepted before they
	// are durable.
	if err := d.store.Sync(ctx, ds.RawKey("/dag")); err != nil {
		return failAll(err)
	}
	return errs
}

// staging holds the blocks of one ProcessBlocks call that are checked and
// in the batch but not yet indexed.
type staging struct {
	pending  map[Hash]*blockNode
	nodes    []*blockNode        // pending, in order
	untipped map[*blockNode]bool // blocks (indexed or pending) that gained a pending child
}

// stage checks a block against the index and the blocks staged before it,
// computes its GHOSTDAG data, enters it into the reachability index (later
// blocks of the call query it; readers cannot reach it before it is
// indexed) and puts it into the batch. Called with writeMu held.
func (d *DAG) stage(ctx context.Context, batch ds.Batch, st *staging, c Checked) error {
	hash, b := c.hash, c.block
	d.mu.RLock()
	n, err := d.checkConnect(hash, b, true, st.pending)
	var formerTips []Hash
	if err == nil {
		for _, p := range n.parents {
			if st.untipped[p] {
				continue
			}
			if _, tip := d.tips[p.hash]; tip || st.pending[p.hash] != nil {
				formerTips = append(formerTips, p.hash)
			}
		}
	}
	d.mu.RUnlock()
	if err != nil {
		return err
	}
	raw := c.raw
	if raw == nil {
		raw = b.Encode()
	}
	entry := raw[:b.Header.EncodedSize():b.Header.EncodedSize()]
	if !d.plain {
		entry = appendGhostdag(entry, n)
	}
	if err := putBlock(ctx, batch, raw, n, entry, formerTips); err != nil {
		return d.fail(err)
	}
	if !d.plain {
		d.mu.Lock()
		d.reach.add(n)
		d.mu.Unlock()
	}
	st.pending[hash] = n
	for _, p := range n.parents {
		st.untipped[p] = true
	}
	return nil
}

// CheckConnect is CheckBlock for a block that passed Check: the checks
// that need the DAG.
func (d *DAG) CheckConnect(c Checked) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, err := d.checkConnect(c.hash, c.block, false, nil)
	return err
}

// CheckBlock runs every check ProcessBlock runs, without storing the block:
// a nil error means ProcessBlock would accept it now (barring a storage
// failure or the same block arriving first). Gossip validators use it to
// forward a block before it is on disk. It returns the block hash.
func (d *DAG) CheckBlock(b *Block) (Hash, error) {
	hash, err := CheckSanity(b, d.params, d.now())
	if err != nil {
		return hash, err
	}
	return hash, d.CheckConnect(Checked{block: b, hash: hash})
}

// checkConnect finds the parents, in the index or among pending (blocks
// staged by the same ProcessBlocks call), and runs the contextual checks; it
// returns the new block's node, with its GHOSTDAG data if colourIt (the
// colouring never makes a block invalid, so CheckBlock skips it). Called
// with the lock held (read or write).
func (d *DAG) checkConnect(hash Hash, b *Block, colourIt bool, pending map[Hash]*blockNode) (*blockNode, error) {
	if d.index[hash] != nil || pending[hash] != nil {
		return nil, ErrDuplicateBlock
	}
	parents := make([]*blockNode, len(b.Header.Parents))
	var missing []Hash
	for i, ph := range b.Header.Parents {
		if parents[i] = d.index[ph]; parents[i] == nil {
			parents[i] = pending[ph]
		}
		if parents[i] == nil {
			missing = append(missing, ph)
		}
	}
	if missing != nil {
		return nil, &MissingParentsError{Block: hash, Missing: missing}
	}
	n := newNode(hash, &b.Header, parents)
	if d.plain {
		n.selectedParent = parents[0]
		n.blueWork = new(big.Int).Add(n.selectedParent.blueWork, n.work)
		return n, nil
	}
	sp, rest, err := d.checkContext(&b.Header, parents)
	if err != nil {
		return nil, err
	}
	if colourIt {
		colour(n, sp, rest, d.params.K)
	}
	return n, nil
}

// fail records a storage failure and returns it: the store may now lag the
// index, so the DAG refuses further writes. Called with writeMu held.
func (d *DAG) fail(err error) error {
	if d.failed == nil {
		d.failed = fmt.Errorf("dag: storage failed, restart the node: %w", err)
		d.log.Error("dag storage failed", "err", err)
	}
	return d.failed
}

// Params returns the network parameters.
func (d *DAG) Params() *Params { return d.params }

// Version changes every time a block is added; the miner compares it to notice
// new tips without taking the lock.
func (d *DAG) Version() uint64 { return d.version.Load() }

// Count returns the number of blocks, genesis included.
func (d *DAG) Count() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.index)
}

// MaxHeight returns the greatest block height.
func (d *DAG) MaxHeight() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return int64(len(d.byHeight)) - 1
}

// Tips returns the hashes of the blocks without children, sorted.
func (d *DAG) Tips() []Hash {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return sortedHashes(d.tips)
}

func sortedHashes(m map[Hash]*blockNode) []Hash {
	out := make([]Hash, 0, len(m))
	for h := range m {
		out = append(out, h)
	}
	slices.SortFunc(out, compareHash)
	return out
}

func compareHash(a, b Hash) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}

// TotalWork returns the sum of the work of every block, red or blue.
func (d *DAG) TotalWork() *big.Int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return new(big.Int).Set(d.totalWork)
}

// Status is a consistent snapshot of the DAG's summary, as peers exchange it.
type Status struct {
	Genesis   Hash
	Tips      []Hash
	MaxHeight int64
	Count     int
	// BlueWork is the virtual block's blue work: the work of the blue blocks
	// of the DAG. It is the DAG's score, which peers compare.
	BlueWork *big.Int
	Version  uint64
}

// Status returns a snapshot of the DAG's summary.
func (d *DAG) Status() Status {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return Status{
		Genesis:   d.params.GenesisHash,
		Tips:      sortedHashes(d.tips),
		MaxHeight: int64(len(d.byHeight)) - 1,
		Count:     len(d.index),
		BlueWork:  new(big.Int).Set(d.virtual.blueWork),
		Version:   d.version.Load(),
	}
}

// HaveBlock reports whether the DAG holds the block.
func (d *DAG) HaveBlock(h Hash) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.index[h] != nil
}

// BlockInfo is what the index knows about a block.
type BlockInfo struct {
	Hash      Hash
	Height    int64
	Parents   []Hash
	Children  []Hash
	Timestamp int64
	Bits      uint32

	// SelectedParent is the parent with the most blue work (zero for the
	// genesis).
	SelectedParent Hash
	// BlueScore and BlueWork count the blue blocks of the block's past (in
	// its own view), by number and by work.
	BlueScore uint64
	BlueWork  *big.Int
	// MergeSetBlues (the selected parent first) and MergeSetReds are the
	// block's merge set, coloured in the block's view, in candidate order.
	MergeSetBlues []Hash
	MergeSetReds  []Hash
	// IsBlue reports whether the block is blue in the virtual block's view;
	// IsInChain whether it is on the virtual's selected chain. A block the
	// virtual does not merge (a tip left out) is neither.
	IsBlue    bool
	IsInChain bool
	// Order is the block's position in the total order (GHOSTDAG order),
	// -1 if the virtual does not merge it.
	Order int64
}

// BlockInfo returns the index entry of a block.
func (d *DAG) BlockInfo(h Hash) (BlockInfo, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	n := d.index[h]
	if n == nil {
		return BlockInfo{}, false
	}
	info := BlockInfo{
		Hash: n.hash, Height: n.height, Timestamp: n.timestamp, Bits: n.bits,
		BlueScore: n.blueScore, BlueWork: new(big.Int).Set(n.blueWork),
		MergeSetBlues: hashesOf(n.blues), MergeSetReds: hashesOf(n.reds),
	}
	if n.selectedParent != nil {
		info.SelectedParent = n.selectedParent.hash
	}
	info.Parents = hashesOf(n.parents)
	info.Children = hashesOf(n.children)
	slices.SortFunc(info.Children, compareHash)
	info.IsBlue, info.IsInChain, info.Order = d.colourOf(n)
	return info, true
}

func hashesOf(ns []*blockNode) []Hash {
	out := make([]Hash, len(ns))
	for i, n := range ns {
		out[i] = n.hash
	}
	return out
}

// HashesAtHeight returns the hashes of the blocks at a height, sorted.
func (d *DAG) HashesAtHeight(height int64) []Hash {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if height < 0 || height >= int64(len(d.byHeight)) {
		return nil
	}
	out := make([]Hash, len(d.byHeight[height]))
	for i, n := range d.byHeight[height] {
		out[i] = n.hash
	}
	slices.SortFunc(out, compareHash)
	return out
}

// ErrUnknownBlock is returned when asking for a block the DAG does not hold.
var ErrUnknownBlock = errors.New("dag: unknown block")

// BlockBytes returns the stored encoding of a block.
func (d *DAG) BlockBytes(ctx context.Context, h Hash) ([]byte, error) {
	d.mu.RLock()
	n := d.index[h]
	d.mu.RUnlock()
	if n == nil {
		return nil, fmt.Errorf("%w %s", ErrUnknownBlock, h)
	}
	return d.readBlock(ctx, n.height, h)
}

// readBlock reads the stored encoding of the block h at height.
func (d *DAG) readBlock(ctx context.Context, height int64, h Hash) ([]byte, error) {
	raw, err := d.store.Get(ctx, blockKey(height, h))
	if err != nil {
		return nil, fmt.Errorf("dag: reading block %s: %w", h, err)
	}
	return raw, nil
}

// Block returns a stored block.
func (d *DAG) Block(ctx context.Context, h Hash) (*Block, error) {
	raw, err := d.BlockBytes(ctx, h)
	if err != nil {
		return nil, err
	}
	b, err := DecodeBlock(raw)
	if err != nil {
		return nil, fmt.Errorf("dag: stored block %s: %w", h, err)
	}
	return b, nil
}

// Template is what a miner needs to build a block on the current tips.
type Template struct {
	// Parents are the virtual block's parents: the tips with the most blue
	// work, up to MaxParents, leaving out tips that would take the merge set
	// over its limit; sorted as a header wants them.
	Parents []Hash
	// Bits is the difficulty the DAG requires of a block with these parents.
	Bits uint32
	// Height is the height the block will have.
	Height int64
	// MinTimestamp is the earliest valid timestamp (the selected parent's), in
	// Unix milliseconds.
	MinTimestamp int64
	// Version is the DAG's Version when the template was made; work on the
	// template is stale once Version differs (the virtual changed).
	Version uint64
}

// Template returns a block template on the current tips.
func (d *DAG) Template() Template {
	d.mu.RLock()
	defer d.mu.RUnlock()
	v := d.virtual
	t := Template{
		Parents:      hashesOf(v.parents),
		Bits:         d.requiredBits(v.selectedParent, d.virtualRest),
		Height:       maxHeight(v.parents) + 1,
		MinTimestamp: v.selectedParent.timestamp,
		Version:      d.version.Load(),
	}
	slices.SortFunc(t.Parents, compareHash)
	return t
}

// RequiredBits returns the bits a block with the given parents must carry,
// or the rule error such a block would get for its parents (one in the past
// of another, a merge set over the limit).
func (d *DAG) RequiredBits(parents []Hash) (uint32, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	nodes := make([]*blockNode, len(parents))
	for i, h := range parents {
		if nodes[i] = d.index[h]; nodes[i] == nil {
			return 0, fmt.Errorf("%w %s", ErrUnknownBlock, h)
		}
	}
	if len(nodes) == 0 {
		return 0, ruleError(ErrNoParents, "no parents")
	}
	sp, rest, err := d.checkParents(nodes)
	if err != nil {
		return 0, err
	}
	return d.requiredBits(sp, rest), nil
}

// IsAncestorOf reports whether block a is in the past of block b (a block is
// not in its own past). It answers from the reachability index, in about
// constant time.
func (d *DAG) IsAncestorOf(a, b Hash) (bool, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	na, nb := d.index[a], d.index[b]
	switch {
	case na == nil:
		return false, fmt.Errorf("%w %s", ErrUnknownBlock, a)
	case nb == nil:
		return false, fmt.Errorf("%w %s", ErrUnknownBlock, b)
	}
	return na != nb && isAncestorOrSelf(na, nb), nil
}
