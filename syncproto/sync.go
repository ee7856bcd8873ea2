package syncproto

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/dagnode/dagnode/dag"
)

// Sync tuning. Each can be changed with an Option (tests shorten them).
const (
	// SyncRequestTimeout bounds one request to the sync peer.
	SyncRequestTimeout = 20 * time.Second

	// DefaultStallTimeout: a sync peer that lets this pass without a single
	// block accepted is dropped as sync peer.
	DefaultStallTimeout = 30 * time.Second

	// DefaultElectionWait is how long to wait for MinElectionPeers statuses
	// before electing among the few we have (small networks).
	DefaultElectionWait = 3 * time.Second

	// MinElectionPeers is how many statuses make an election without waiting.
	MinElectionPeers = 3

	// DefaultSampleInterval is how often every peer is asked for its status
	// again (bitmarkd's sampling state), to sync if someone got ahead.
	DefaultSampleInterval = 30 * time.Second

	// DefaultProgressInterval is the period of the progress log line.
	DefaultProgressInterval = 10 * time.Second

	// BehindGrace: a tip a peer has and we lack counts as "behind" only
	// once it has had this long to arrive by gossip, so blocks in flight do
	// not throw nodes into sync mode (which drops gossip) all the time.
	BehindGrace = 2 * time.Second

	// syncLeadHeights: a peer this many heights ahead of us is behind-worthy
	// at once, without the grace.
	syncLeadHeights = 2

	// pipelineDepth is how many getdata batches are in flight at once.
	pipelineDepth = 4

	// maxSessionRounds bounds the getblocks passes of one session; a peer
	// still claiming unknown tips after them is dropped.
	maxSessionRounds = 4

	// maxOrphanFetchRounds bounds fetching an orphan's ancestry by getdata;
	// a deeper gap is closed by a sync session with that peer.
	maxOrphanFetchRounds = 4

	// orphanFetchQueue bounds queued parent fetches.
	orphanFetchQueue = 64

	// DefaultServeRate bounds the blocks per second served to one peer:
	// twice the import rate of the on-disk DAG, so an honest syncing peer is
	// never slowed, while a peer looping on getdata cannot monopolise the
	// node. An exhausted budget delays the reply; it never fails it.
	DefaultServeRate = 100_000

	// serveBurst is the bucket size: a few full getdata replies.
	serveBurst = 4 * MaxGetDataHashes
)

// Options tune the manager.
type Options struct {
	StallTimeout     time.Duration
	ElectionWait     time.Duration
	SampleInterval   time.Duration
	ProgressInterval time.Duration
	ServeRate        rate.Limit
}

func defaultOptions() Options {
	return Options{
		StallTimeout:     DefaultStallTimeout,
		ElectionWait:     DefaultElectionWait,
		SampleInterval:   DefaultSampleInterval,
		ProgressInterval: DefaultProgressInterval,
		ServeRate:        DefaultServeRate,
	}
}

// Option changes one tuning value.
type Option func(*Options)

// WithStallTimeout sets the stall timeout (default DefaultStallTimeout).
func WithStallTimeout(d time.Duration) Option { return func(o *Options) { o.StallTimeout = d } }

// WithElectionWait sets the election wait (default DefaultElectionWait).
func WithElectionWait(d time.Duration) Option { return func(o *Options) { o.ElectionWait = d } }

// WithSampleInterval sets the re-sampling period (default DefaultSampleInterval).
func WithSampleInterval(d time.Duration) Option { return func(o *Options) { o.SampleInterval = d } }

// WithProgressInterval sets the progress log period (default DefaultProgressInterval).
func WithProgressInterval(d time.Duration) Option { return func(o *Options) { o.ProgressInterval = d } }

// WithServeRate sets the blocks per second served to one peer (default DefaultServeRate).
func WithServeRate(blocksPerSec float64) Option {
	return func(o *Options) { o.ServeRate = rate.Limit(blocksPerSec) }
}

type peerState struct {
	status *Status
	// aheadSince is when the peer first showed a tip we lack, zero while
	// it shows none.
	aheadSince time.Time
}

type orphanFetch struct {
	peer    peer.ID
	missing []dag.Hash
}

// progress is the state getsyncinfo reports.
type progress struct {
	mu         sync.Mutex
	peer       peer.ID
	startCount int
	target     int // the sync peer's block count
	startedAt  time.Time
}

// SyncInfo is the sync manager's state for getsyncinfo.
type SyncInfo struct {
	// Syncing is true in sync mode.
	Syncing bool
	// SyncPeer is the peer we sync from, if any.
	SyncPeer peer.ID
	// Blocks is our block count; Target the sync peer's.
	Blocks int
	Target int
	// Done is the blocks added since the session started.
	Done int
	// BlocksPerSecond is the session's average rate.
	BlocksPerSecond float64
	// ETA estimates the time left.
	ETA time.Duration
	// Sessions counts sync sessions so far.
	Sessions uint64
}

// Syncing reports whether the manager is in sync mode.
func (m *Manager) Syncing() bool { return m.syncing.Load() }

// SyncInfo returns the sync state.
func (m *Manager) SyncInfo() SyncInfo {
	st := m.cfg.DAG.Status()
	info := SyncInfo{Syncing: m.syncing.Load(), Blocks: st.Count, Sessions: m.sessions.Load()}
	if !info.Syncing {
		return info
	}
	m.progress.mu.Lock()
	defer m.progress.mu.Unlock()
	info.SyncPeer = m.progress.peer
	info.Target = m.progress.target
	info.Done = st.Count - m.progress.startCount
	if secs := time.Since(m.progress.startedAt).Seconds(); secs > 0 && info.Done > 0 {
		info.BlocksPerSecond = float64(info.Done) / secs
		if left := info.Target - st.Count; left > 0 {
			info.ETA = time.Duration(float64(left) / info.BlocksPerSecond * float64(time.Second))
		}
	}
	return info
}

func (m *Manager) currentSyncPeer() peer.ID {
	if p := m.syncPeer.Load(); p != nil {
		return *p
	}
	return ""
}

func (m *Manager) setPeerStatus(p peer.ID, st *Status) {
	ahead := m.ahead(st)
	m.statusMu.Lock()
	defer m.statusMu.Unlock()
	ps := m.statuses[p]
	if ps == nil {
		ps = &peerState{}
		m.statuses[p] = ps
	}
	ps.status = st
	switch {
	case !ahead:
		ps.aheadSince = time.Time{}
	case ps.aheadSince.IsZero():
		ps.aheadSince = time.Now()
	}
}

func (m *Manager) forgetPeer(p peer.ID) {
	m.statusMu.Lock()
	delete(m.statuses, p)
	m.statusMu.Unlock()
	m.limiterMu.Lock()
	delete(m.limiters, p)
	m.limiterMu.Unlock()
}

// limiter returns p's serving budget.
func (m *Manager) limiter(p peer.ID) *rate.Limiter {
	m.limiterMu.Lock()
	defer m.limiterMu.Unlock()
	l := m.limiters[p]
	if l == nil {
		l = rate.NewLimiter(m.opts.ServeRate, serveBurst)
		m.limiters[p] = l
	}
	return l
}

// pokeSync asks the syncer to look at the peers' statuses now.
func (m *Manager) pokeSync() {
	select {
	case m.poke <- struct{}{}:
	default:
	}
}

// penalizeIfOffense reports errors that are the peer's fault: protocol
// violations and invalid blocks. Timeouts and closed streams are not.
func (m *Manager) penalizeIfOffense(p peer.ID, err error) {
	var pe *ProtocolError
	var re *dag.RuleError
	if errors.As(err, &pe) || errors.As(err, &re) {
		if errors.Is(err, ErrWrongNetwork) {
			m.wrongNetwork.Add(1)
		}
		m.cfg.Peers.Penalize(p, err)
	}
}

// syncLoop elects sync peers and runs sessions; it also fetches orphans'
// parents. It is the only goroutine that syncs, so there is at most one
// sync peer.
func (m *Manager) syncLoop() {
	sample := time.NewTicker(m.opts.SampleInterval)
	defer sample.Stop()
	var wait *time.Timer
	var waitC <-chan time.Time
	firstAhead := time.Time{}
	for {
		select {
		case <-m.quit:
			return
		case f := <-m.fetches:
			m.fetchOrphanParents(f)
			continue
		case <-sample.C:
			m.sampleStatuses()
		case <-m.poke:
		case <-waitC:
			waitC = nil
		}
		p, st, n, recheck := m.elect()
		if p == "" {
			firstAhead = time.Time{}
			if !recheck.IsZero() && waitC == nil {
				wait = time.NewTimer(time.Until(recheck))
				waitC = wait.C
			}
			continue
		}
		if firstAhead.IsZero() {
			firstAhead = time.Now()
		}
		if n < MinElectionPeers && time.Since(firstAhead) < m.opts.ElectionWait {
			if waitC == nil {
				wait = time.NewTimer(m.opts.ElectionWait - time.Since(firstAhead))
				waitC = wait.C
			}
			continue
		}
		firstAhead = time.Time{}
		m.runSession(p, st)
		m.pokeSync() // look again: someone else may be ahead too
	}
}

// sampleStatuses asks every directly connected peer for its status (a peer
// reached only through a relay is never a sync peer).
func (m *Manager) sampleStatuses() {
	var wg sync.WaitGroup
	for _, p := range m.cfg.Host.Network().Peers() {
		if m.cfg.Host.Network().Connectedness(p) != network.Connected {
			continue
		}
		select {
		case m.hsSlots <- struct{}{}:
		case <-m.quit:
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-m.hsSlots }()
			m.exchangeStatus(p)
		})
	}
	wg.Wait()
}

// elect picks the target most peers agree on among the peers that have
// blocks we lack (ties: more total work, then more blocks), then the sync
// peer among the directly connected peers that have it (a peer reached only
// through a relay is never chosen: Connectedness is then Limited). n is
// the number of statuses the election saw; recheck, when not zero, is when
// a peer that is ahead only within BehindGrace should be looked at again.
func (m *Manager) elect() (_ peer.ID, _ *Status, n int, recheck time.Time) {
	now := time.Now()
	ourHeight := uint64(m.cfg.DAG.Status().MaxHeight)
	m.statusMu.Lock()
	type group struct {
		status *Status
		peers  []peer.ID
	}
	groups := map[string]*group{}
	n = len(m.statuses)
	for p, ps := range m.statuses {
		if m.cfg.Host.Network().Connectedness(p) != network.Connected || !m.ahead(ps.status) {
			continue
		}
		if due := ps.aheadSince.Add(BehindGrace); now.Before(due) && ps.status.MaxHeight < ourHeight+syncLeadHeights {
			if recheck.IsZero() || due.Before(recheck) {
				recheck = due
			}
			continue
		}
		key := fmt.Sprint(ps.status.Tips, ps.status.TotalWork)
		g := groups[key]
		if g == nil {
			g = &group{status: ps.status}
			groups[key] = g
		}
		g.peers = append(g.peers, p)
	}
	m.statusMu.Unlock()
	var best *group
	for _, g := range groups {
		if best == nil || better(g.status, len(g.peers), best.status, len(best.peers)) {
			best = g
		}
	}
	if best == nil {
		return "", nil, n, recheck
	}
	slices.SortFunc(best.peers, compareIDs)
	return best.peers[0], best.status, n, time.Time{}
}

func compareIDs(a, b peer.ID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// better orders election groups: more peers, then more work, then more blocks.
func better(a *Status, na int, b *Status, nb int) bool {
	if na != nb {
		return na > nb
	}
	if c := a.TotalWork.Cmp(b.TotalWork); c != 0 {
		return c > 0
	}
	return a.Count > b.Count
}

// ahead reports whether a status names a tip we do not have.
func (m *Manager) ahead(st *Status) bool {
	for _, t := range st.Tips {
		if !m.cfg.DAG.HaveBlock(t) {
			return true
		}
	}
	return false
}

// errStall ends a session whose peer made no progress.
var errStall = errors.New("syncproto: sync peer stalled")

// runSession syncs from p until we have the tips of its status, it stalls,
// or it fails. Only called from syncLoop.
func (m *Manager) runSession(p peer.ID, st *Status) {
	m.sessions.Add(1)
	start := m.cfg.DAG.Status()
	m.progress.mu.Lock()
	m.progress.peer, m.progress.startCount, m.progress.target, m.progress.startedAt = p, start.Count, int(st.Count), time.Now()
	m.progress.mu.Unlock()
	m.syncPeer.Store(&p)
	m.syncing.Store(true)
	m.cfg.Peers.SetSyncPeer(p, true)
	m.log.Info("sync started", "peer", p, "blocks", start.Count, "target", st.Count, "peer_height", st.MaxHeight)
	defer func() {
		m.cfg.Peers.SetSyncPeer(p, false)
		m.syncing.Store(false)
		m.syncPeer.Store(nil)
	}()

	ctx, cancel := context.WithCancelCause(m.ctx)
	defer cancel(nil)
	stop := m.watchProgress(ctx, cancel)
	defer stop()

	var err error
	for round := 0; round < maxSessionRounds; round++ {
		var from uint64
		if from, err = m.findStart(ctx, p, st); err != nil {
			break
		}
		if err = m.pipeline(ctx, p, from); err != nil {
			break
		}
		if err = m.fetchMissingParents(ctx, p); err != nil {
			break
		}
		if !m.ahead(st) {
			break
		}
		if err = m.checkPromise(ctx, p, st); err != nil {
			break
		}
		// The peer may have moved on; ask again.
		if st, err = m.RequestStatus(ctx, p); err != nil {
			break
		}
	}
	if cause := context.Cause(ctx); errors.Is(cause, errStall) {
		err = offense(PenaltyStall, "no block within %s", m.opts.StallTimeout)
		m.stalls.Add(1)
	}
	end := m.cfg.DAG.Status()
	elapsed := time.Since(m.progress.startedAt)
	if err != nil {
		m.penalizeIfOffense(p, err)
		m.forgetStatus(p) // elect someone else next
		m.log.Info("sync peer dropped", "peer", p, "err", err, "blocks", end.Count-start.Count)
		return
	}
	m.log.Info("sync finished", "peer", p, "blocks", end.Count-start.Count, "elapsed", elapsed.Round(time.Millisecond),
		"blocks_per_sec", int(float64(end.Count-start.Count)/max(elapsed.Seconds(), 1e-9)), "height", end.MaxHeight, "tips", len(end.Tips))
}

func (m *Manager) forgetStatus(p peer.ID) {
	m.statusMu.Lock()
	delete(m.statuses, p)
	m.statusMu.Unlock()
}

// watchProgress logs progress and cancels the session with errStall when
// no block is added for StallTimeout.
func (m *Manager) watchProgress(ctx context.Context, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		check := time.NewTicker(min(m.opts.StallTimeout/4, time.Second))
		defer check.Stop()
		logT := time.NewTicker(m.opts.ProgressInterval)
		defer logT.Stop()
		last, lastAt := m.cfg.DAG.Version(), time.Now()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-check.C:
				if v := m.cfg.DAG.Version(); v != last {
					last, lastAt = v, time.Now()
				} else if time.Since(lastAt) > m.opts.StallTimeout {
					cancel(errStall)
					return
				}
			case <-logT.C:
				i := m.SyncInfo()
				m.log.Info("sync progress", "peer", i.SyncPeer, "blocks", i.Blocks, "target", i.Target,
					"blocks_per_sec", int(i.BlocksPerSecond), "eta", i.ETA.Round(time.Second))
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// findStart finds a height from which to ask p for blocks. It starts at
// the lowest height of p's tips that we lack (capped at our greatest
// height) and walks down in growing steps until p's blocks at a height are
// all known to us. Blocks below that on side branches arrive as orphans and
// are fetched by hash afterwards.
func (m *Manager) findStart(ctx context.Context, p peer.ID, st *Status) (uint64, error) {
	h := uint64(m.cfg.DAG.Status().MaxHeight)
	for i, t := range st.Tips {
		if !m.cfg.DAG.HaveBlock(t) {
			h = min(h, st.TipHeights[i])
		}
	}
	for step := uint64(1); h > 0; step *= 2 {
		rctx, cancel := context.WithTimeout(ctx, SyncRequestTimeout)
		hashes, err := m.RequestHeight(rctx, p, h)
		cancel()
		if err != nil {
			return 0, err
		}
		known := true
		for _, hash := range hashes {
			known = known && m.cfg.DAG.HaveBlock(hash)
		}
		if known {
			return h, nil
		}
		h -= min(step, h)
	}
	return 0, nil
}

// checkPromise asks p for the tips of its status that we still lack after a
// session. A tip p says it does not have is an empty promise.
func (m *Manager) checkPromise(ctx context.Context, p peer.ID, st *Status) error {
	var unknown []dag.Hash
	for _, t := range st.Tips {
		if !m.cfg.DAG.HaveBlock(t) {
			unknown = append(unknown, t)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, SyncRequestTimeout)
	defer cancel()
	_, notFound, err := m.RequestBlocks(rctx, p, unknown[:min(len(unknown), MaxGetDataHashes)])
	if err != nil {
		return err
	}
	if len(notFound) > 0 {
		return offense(PenaltyEmptyPromise, "claims %d tips it does not serve", len(notFound))
	}
	return nil
}

// batch is a getdata request in the pipeline; seq orders the results.
type batch struct {
	seq    int
	hashes []dag.Hash
	blocks []*dag.Block
	err    error
}

// pipeline pages through p's inventory from start, fetches what we lack
// with pipelineDepth getdata requests in flight, and submits the blocks in
// inventory order (parents first).
func (m *Manager) pipeline(ctx context.Context, p peer.ID, start uint64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	todo := make(chan *batch, pipelineDepth)
	done := make(chan *batch, pipelineDepth)
	var wg sync.WaitGroup
	var invErr error
	wg.Go(func() { // stage 1: getblocks → inv → batches of unknown hashes
		defer close(todo)
		invErr = m.page(ctx, p, start, todo)
	})
	var fetchers sync.WaitGroup
	for range pipelineDepth { // stage 2: getdata
		fetchers.Go(func() {
			for b := range todo {
				rctx, rcancel := context.WithTimeout(ctx, SyncRequestTimeout)
				b.blocks, _, b.err = m.RequestBlocks(rctx, p, b.hashes)
				rcancel()
				select {
				case done <- b:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Go(func() { fetchers.Wait(); close(done) })

	// Stage 3: submit in sequence.
	pending := map[int]*batch{}
	next := 0
	var err error
	for b := range done {
		if err != nil {
			continue // drain
		}
		pending[b.seq] = b
		for pending[next] != nil && err == nil {
			b := pending[next]
			delete(pending, next)
			next++
			if b.err != nil {
				err = b.err
				break
			}
			errs, serr := m.submitBatch(ctx, p, b.blocks)
			if serr != nil {
				err = serr
				break
			}
			for _, e := range errs {
				var mp *dag.MissingParentsError
				if e != nil && !errors.Is(e, dag.ErrDuplicateBlock) && !errors.As(e, &mp) {
					err = e // an invalid block: the peer served garbage
					break
				}
			}
		}
		if err != nil {
			cancel()
		}
	}
	wg.Wait()
	if err != nil {
		return err
	}
	return invErr
}

// page requests inventory pages from start on and queues batches of the
// hashes we lack.
func (m *Manager) page(ctx context.Context, p peer.ID, start uint64, todo chan<- *batch) error {
	seq := 0
	seen := map[dag.Hash]bool{}
	for {
		rctx, cancel := context.WithTimeout(ctx, SyncRequestTimeout)
		inv, err := m.RequestInv(rctx, p, start, dag.ZeroHash)
		cancel()
		if err != nil {
			return err
		}
		if len(inv) == 0 {
			return nil
		}
		var want []dag.Hash
		for _, e := range inv {
			if !seen[e.Hash] && !m.cfg.DAG.HaveBlock(e.Hash) {
				want = append(want, e.Hash)
				seen[e.Hash] = true
			}
		}
		for len(want) > 0 {
			n := min(len(want), MaxGetDataHashes)
			select {
			case todo <- &batch{seq: seq, hashes: want[:n]}:
				seq++
			case <-ctx.Done():
				return ctx.Err()
			}
			want = want[n:]
		}
		last := inv[len(inv)-1].Height
		if last < start {
			return violation("inv below the requested start height")
		}
		start = last + 1
	}
}

// fetchMissingParents asks p for the parents the orphan pool waits for,
// a bounded number of rounds.
func (m *Manager) fetchMissingParents(ctx context.Context, p peer.ID) error {
	for range maxOrphanFetchRounds {
		var missing []dag.Hash
		if err := m.call(ctx, func() { missing = m.orphans.missingParents() }); err != nil {
			return err
		}
		if len(missing) == 0 {
			return nil
		}
		if err := m.fetchBlocks(ctx, p, missing); err != nil {
			return err
		}
	}
	return nil
}

// fetchBlocks gets blocks by hash from p and submits them.
func (m *Manager) fetchBlocks(ctx context.Context, p peer.ID, hashes []dag.Hash) error {
	for len(hashes) > 0 {
		n := min(len(hashes), MaxGetDataHashes)
		rctx, cancel := context.WithTimeout(ctx, SyncRequestTimeout)
		blocks, _, err := m.RequestBlocks(rctx, p, hashes[:n])
		cancel()
		if err != nil {
			return err
		}
		hashes = hashes[n:]
		if len(blocks) == 0 {
			continue
		}
		errs, err := m.submitBatch(ctx, p, blocks)
		if err != nil {
			return err
		}
		for _, e := range errs {
			var re *dag.RuleError
			if errors.As(e, &re) {
				return e
			}
		}
	}
	return nil
}

// fetchOrphanParents fetches the parents of an orphan announced by f.peer.
// A gap deeper than maxOrphanFetchRounds becomes a sync session with it.
func (m *Manager) fetchOrphanParents(f orphanFetch) {
	ctx, cancel := context.WithTimeout(m.ctx, 4*SyncRequestTimeout)
	defer cancel()
	if err := m.fetchBlocks(ctx, f.peer, f.missing); err != nil {
		m.penalizeIfOffense(f.peer, err)
		m.log.Debug("fetching orphan parents failed", "peer", f.peer, "err", err)
		return
	}
	if err := m.fetchMissingParents(ctx, f.peer); err != nil {
		m.penalizeIfOffense(f.peer, err)
		return
	}
	var left int
	if err := m.call(ctx, func() { left = len(m.orphans.missingParents()) }); err == nil && left > 0 {
		if _, err := m.RequestStatus(ctx, f.peer); err == nil {
			m.pokeSync()
		}
	}
}
