package syncproto

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/dagnode/dagnode/dag"
)

// Sync tuning. The exported defaults can be changed with an Option.
const (
	// DefaultStallTimeout bounds the wait for each frame of a reply (and the
	// writing of a request): a peer that lets it pass is stalling. During a
	// session that is a claim not served (PenaltyStall).
	DefaultStallTimeout = 10 * time.Second

	// DefaultElectionWait bounds how long an election waits for handshakes
	// still in flight; with every status in, it runs at once.
	DefaultElectionWait = 3 * time.Second

	// DefaultSampleInterval is how often every peer is asked for its status
	// again (bitmarkd's sampling state), to sync if someone got ahead.
	DefaultSampleInterval = 30 * time.Second

	// DefaultProgressInterval is the period of the progress log line.
	DefaultProgressInterval = 10 * time.Second

	// BehindGrace: a tip a peer has and we lack makes it a sync candidate
	// only once the tip has had this long to arrive by gossip, so blocks in
	// flight do not start sessions all the time.
	BehindGrace = time.Second

	// syncLeadHeights and syncLeadBlocks: a peer this many heights, or
	// this many blocks, ahead of us is a candidate at once, without the
	// grace: that is more than gossip has in flight. (After a partition
	// heals, the peers of the first node to sync see it far ahead in
	// blocks, though not in height.)
	syncLeadHeights = 2
	syncLeadBlocks  = 16

	// pipelineDepth is how many getdata requests are in flight at once.
	pipelineDepth = 4

	// pipelineWindow bounds the getdata batches fetched or in flight but not
	// yet added to the DAG, so a slow first batch cannot make the others
	// pile up in memory.
	pipelineWindow = 2 * pipelineDepth

	// Election backoff: a peer whose session failed is not elected again
	// for backoffBase, doubling with each failure in a row up to backoffMax.
	backoffBase = 2 * time.Second
	backoffMax  = 10 * time.Minute

	// maxFaults: after this many sessions in a row ended by faults (resets,
	// closed streams), the connection to the peer is closed. No ban: faults
	// are not offences.
	maxFaults = 3

	// preemptAfter: a sync peer that sends nothing for this long while
	// another peer claims the blocks we want is left for that peer (no
	// penalty: slow links happen; it is backed off like any failed
	// session).
	preemptAfter = 2 * time.Second

	// maxBackoffPeers bounds the election backoff records kept.
	maxBackoffPeers = 1024

	// Orphan parent fetches run beside sessions and elections:
	// orphanFetchers at once, each bounded by orphanFetchTimeout, at most
	// maxOrphanFetchDepth generations of parents; a deeper gap is closed by
	// a sync session with the sender.
	orphanFetchers      = 4
	orphanFetchQueue    = 256
	orphanFetchTimeout  = 10 * time.Second
	maxOrphanFetchDepth = 4

	// DefaultServeRate bounds the blocks per second served to one peer:
	// twice the import rate of the on-disk DAG, so an honest syncing peer is
	// never slowed, while a peer looping on getdata cannot monopolise the
	// node. An exhausted budget delays the reply; it never fails it.
	DefaultServeRate = 100_000

	// serveBurst is the bucket size: a few full getdata replies.
	serveBurst = 4 * MaxGetDataHashes

	// invEntriesPerToken: listing this many inventory entries costs the
	// peer's serving budget as much as sending one block.
	invEntriesPerToken = 20

	// maxConcurrentInventories bounds getblocks walks at once: a walk for a
	// client at the genesis reads the whole DAG index.
	maxConcurrentInventories = 2
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

// backoff is a peer's election record: failed sessions in a row, and when
// it may be elected again.
type backoff struct {
	failures  int
	faults    int // failures in a row that were faults, not offences
	notBefore time.Time
	reason    string
}

// Session end reasons, as SyncInfo and the logs report them.
const (
	EndDone       = "done"        // we hold the peer's tips
	EndStalled    = "stalled"     // the peer let StallTimeout pass (PenaltyStall)
	EndOffense    = "offense"     // a protocol violation, an invalid block or a claim not served
	EndFault      = "fault"       // a reset, closed stream or lost connection: no penalty
	EndNoProgress = "no progress" // the peer's replies added nothing
	EndPreempted  = "preempted"   // the peer went silent while another had its blocks
	EndClosed     = "closed"      // the manager is shutting down
	EndLocal      = "local error" // our own failure (storage)
)

// SessionEnd describes how a sync session ended.
type SessionEnd struct {
	Peer    peer.ID
	Reason  string
	Err     string
	Blocks  int
	Elapsed time.Duration
	At      time.Time
}

// PeerBackoff is a peer whose last Failures sessions failed, the last for
// Reason: it is not elected again before Until.
type PeerBackoff struct {
	Peer     peer.ID
	Until    time.Time
	Failures int
	Reason   string
}

type orphanFetch struct {
	peer    peer.ID
	missing []dag.Hash
	depth   int
}

// progress is the state getsyncinfo reports.
type progress struct {
	mu         sync.Mutex
	peer       peer.ID
	startCount int
	target     int // the sync peer's block count
	startedAt  time.Time
	last       SessionEnd
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
	// Orphans and OrphanBytes are the orphan pool's size; OrphanFetches the
	// parent fetches in flight.
	Orphans       int
	OrphanBytes   int
	OrphanFetches int
	// LastSession is how the last session ended (zero before the first).
	LastSession SessionEnd
	// Backoffs are the peers whose last session failed: not elected again
	// before Until.
	Backoffs []PeerBackoff
}

// Syncing reports whether the manager is in sync mode.
func (m *Manager) Syncing() bool { return m.syncing.Load() }

// SyncInfo returns the sync state.
func (m *Manager) SyncInfo() SyncInfo {
	st := m.cfg.DAG.Status()
	info := SyncInfo{
		Syncing: m.syncing.Load(), Blocks: st.Count, Sessions: m.sessions.Load(),
		Orphans: int(m.orphanGauge.Load()), OrphanBytes: int(m.orphanBytes.Load()), OrphanFetches: int(m.fetchesInFlight.Load()),
	}
	m.statusMu.Lock()
	for p, b := range m.backoffs {
		info.Backoffs = append(info.Backoffs, PeerBackoff{Peer: p, Until: b.notBefore, Failures: b.failures, Reason: b.reason})
	}
	m.statusMu.Unlock()
	slices.SortFunc(info.Backoffs, func(a, b PeerBackoff) int { return compareIDs(a.Peer, b.Peer) })
	m.progress.mu.Lock()
	defer m.progress.mu.Unlock()
	info.LastSession = m.progress.last
	if !info.Syncing {
		return info
	}
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

// setPeerStatus records a peer's status and, if it names tips we lack,
// wakes the election.
func (m *Manager) setPeerStatus(p peer.ID, st *Status) {
	ahead := m.ahead(st)
	m.statusMu.Lock()
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
	m.statusMu.Unlock()
	if ahead {
		m.pokeSync()
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
	if isOffense(err) {
		if errors.Is(err, ErrWrongNetwork) {
			m.wrongNetwork.Add(1)
		}
		m.cfg.Peers.Penalize(p, err)
	}
}

func isOffense(err error) bool {
	var pe *ProtocolError
	var re *dag.RuleError
	return errors.As(err, &pe) || errors.As(err, &re)
}

// isTimeout reports whether err is a deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// syncLoop elects sync peers and runs sessions. It is the only goroutine
// that syncs, so there is at most one sync peer. Orphan parent fetches run
// beside it (orphanFetcher).
func (m *Manager) syncLoop() {
	sample := time.NewTicker(m.opts.SampleInterval)
	defer sample.Stop()
	wake := time.NewTimer(time.Hour)
	wake.Stop()
	var wakeAt, firstAhead time.Time
	schedule := func(at time.Time) {
		if wakeAt.IsZero() || at.Before(wakeAt) {
			wakeAt = at
			wake.Reset(time.Until(at))
		}
	}
	for {
		select {
		case <-m.quit:
			return
		case <-sample.C:
			m.sampleStatuses("")
		case <-m.poke:
		case <-wake.C:
			wakeAt = time.Time{}
		}
		p, st, recheck := m.elect("")
		if p == "" {
			firstAhead = time.Time{}
			if !recheck.IsZero() {
				schedule(recheck)
			}
			continue
		}
		// Elect at once unless handshakes are still in flight: their
		// statuses may change the vote (a handshake's end pokes us).
		if firstAhead.IsZero() {
			firstAhead = time.Now()
		}
		if m.hsInFlight.Load() > 0 && time.Since(firstAhead) < m.opts.ElectionWait {
			schedule(firstAhead.Add(m.opts.ElectionWait))
			continue
		}
		firstAhead = time.Time{}
		m.runSession(p, st)
		m.pokeSync() // look again: someone else may be ahead too
	}
}

// sampleStatuses exchanges statuses with every directly connected peer but
// skip (a peer reached only through a relay is never a sync peer). It is
// how we learn who got ahead, and how peers learn that we did.
func (m *Manager) sampleStatuses(skip peer.ID) {
	var wg sync.WaitGroup
	for _, p := range m.cfg.Host.Network().Peers() {
		if p == skip || m.cfg.Host.Network().Connectedness(p) != network.Connected {
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
// blocks we lack (ties: more blue work, then more blocks), then the sync
// peer among the directly connected peers that have it (a peer reached only
// through a relay is never chosen: Connectedness is then Limited). Peers in
// election backoff are left out. recheck, when not zero, is when a peer
// left out for now (grace or backoff) should be looked at again. skip, if
// set, is left out too.
func (m *Manager) elect(skip peer.ID) (_ peer.ID, _ *Status, recheck time.Time) {
	now := time.Now()
	ours := m.cfg.DAG.Status()
	ourHeight, ourCount := uint64(ours.MaxHeight), uint64(ours.Count)
	later := func(t time.Time) {
		if recheck.IsZero() || t.Before(recheck) {
			recheck = t
		}
	}
	type group struct {
		status *Status
		peers  []peer.ID
	}
	groups := map[string]*group{}
	m.statusMu.Lock()
	for p, ps := range m.statuses {
		if p == skip || m.cfg.Host.Network().Connectedness(p) != network.Connected || !m.ahead(ps.status) {
			continue
		}
		if b := m.backoffs[p]; b != nil && now.Before(b.notBefore) {
			later(b.notBefore)
			continue
		}
		if due := ps.aheadSince.Add(BehindGrace); now.Before(due) &&
			ps.status.MaxHeight < ourHeight+syncLeadHeights && ps.status.Count < ourCount+syncLeadBlocks {
			later(due)
			continue
		}
		key := fmt.Sprint(ps.status.Tips, ps.status.BlueWork)
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
		return "", nil, recheck
	}
	return m.preferred(best.peers), best.status, time.Time{}
}

// preferred picks, among peers that claim the same DAG, the one least
// likely to waste a session: fewest failed sessions in a row, then fewest
// orphans of its still waiting for parents (claims it has not backed, such
// as a flooder's), then the smallest ID.
func (m *Manager) preferred(peers []peer.ID) peer.ID {
	if len(peers) == 1 {
		return peers[0]
	}
	var pending map[peer.ID]int
	if m.call(m.ctx, func() { pending = maps.Clone(m.orphans.perPeer) }) != nil {
		pending = nil
	}
	failures := make(map[peer.ID]int, len(peers))
	m.statusMu.Lock()
	for _, p := range peers {
		if b := m.backoffs[p]; b != nil {
			failures[p] = b.failures
		}
	}
	m.statusMu.Unlock()
	slices.SortFunc(peers, func(a, b peer.ID) int {
		if c := cmp.Compare(failures[a], failures[b]); c != 0 {
			return c
		}
		if c := cmp.Compare(pending[a], pending[b]); c != 0 {
			return c
		}
		return compareIDs(a, b)
	})
	return peers[0]
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
	if c := a.BlueWork.Cmp(b.BlueWork); c != 0 {
		return c > 0
	}
	return a.Count > b.Count
}

// ahead reports whether a status names a tip we do not have.
func (m *Manager) ahead(st *Status) bool {
	return len(m.lacking(st.Tips)) > 0
}

// lacking returns the hashes we do not have.
func (m *Manager) lacking(hashes []dag.Hash) []dag.Hash {
	var out []dag.Hash
	for _, h := range hashes {
		if !m.cfg.DAG.HaveBlock(h) {
			out = append(out, h)
		}
	}
	return out
}

// errNoProgress ends a session whose replies added nothing.
var errNoProgress = errors.New("syncproto: the sync peer's replies added no block")

// runSession syncs from p until we hold the tips of its status, or fails,
// then records the outcome: a failed peer is penalised if it offended and
// is not elected again for a while. Only called from syncLoop.
func (m *Manager) runSession(p peer.ID, st *Status) {
	m.sessions.Add(1)
	start := m.cfg.DAG.Status()
	began := time.Now()
	m.progress.mu.Lock()
	m.progress.peer, m.progress.startCount, m.progress.target, m.progress.startedAt = p, start.Count, int(st.Count), began
	m.progress.mu.Unlock()
	m.syncPeer.Store(&p)
	m.syncing.Store(true)
	m.cfg.Peers.SetSyncPeer(p, true)
	m.log.Info("sync started", "peer", p, "blocks", start.Count, "target", st.Count, "peer_height", st.MaxHeight)
	ctx, cancel := context.WithCancelCause(m.ctx)
	stop := m.watchSession(p, cancel)
	err := m.session(ctx, p, st)
	stop()
	if cause := context.Cause(ctx); errors.Is(cause, errPreempted) {
		err = cause
	}
	cancel(nil)
	m.cfg.Peers.SetSyncPeer(p, false)
	m.syncing.Store(false)
	m.syncPeer.Store(nil)

	end := m.cfg.DAG.Status()
	added, elapsed := end.Count-start.Count, time.Since(began)
	reason := m.settle(p, err)
	m.progress.mu.Lock()
	m.progress.last = SessionEnd{Peer: p, Reason: reason, Blocks: added, Elapsed: elapsed, At: time.Now()}
	if err != nil {
		m.progress.last.Err = err.Error()
	}
	m.progress.mu.Unlock()
	if err != nil {
		m.log.Info("sync peer dropped", "peer", p, "reason", reason, "err", err, "blocks", added)
	} else {
		m.log.Info("sync finished", "peer", p, "blocks", added, "elapsed", elapsed.Round(time.Millisecond),
			"blocks_per_sec", int(float64(added)/max(elapsed.Seconds(), 1e-9)), "height", end.MaxHeight, "tips", len(end.Tips))
	}
	if added > 0 {
		// Tell the other peers at once: a healed partition converges in
		// seconds, not at the next sample.
		m.wg.Go(func() { m.sampleStatuses(p) })
	}
}

// settle classifies a session's outcome, penalises offences and sets the
// peer's election backoff. It returns the end reason.
func (m *Manager) settle(p peer.ID, err error) string {
	reason := EndDone
	switch {
	case err == nil:
	case m.ctx.Err() != nil:
		return EndClosed
	case isOffense(err):
		reason = EndOffense
		m.penalizeIfOffense(p, err)
	case isTimeout(err):
		reason = EndStalled
		m.stalls.Add(1)
		m.cfg.Peers.Penalize(p, offense(PenaltyStall, "claimed tips not served within %s: %v", m.opts.StallTimeout, err))
	case errors.Is(err, errNoProgress):
		reason = EndNoProgress
	case errors.Is(err, errPreempted):
		reason = EndPreempted
	case errors.Is(err, errLocal):
		return EndLocal
	default:
		reason = EndFault
	}
	m.statusMu.Lock()
	defer m.statusMu.Unlock()
	if err == nil {
		delete(m.backoffs, p)
		return reason
	}
	b := m.backoffs[p]
	if b == nil {
		if len(m.backoffs) >= maxBackoffPeers {
			m.pruneBackoffs()
		}
		b = &backoff{}
		m.backoffs[p] = b
	}
	b.failures++
	b.reason = reason
	b.notBefore = time.Now().Add(min(backoffBase<<min(b.failures-1, 20), backoffMax))
	if reason == EndFault {
		b.faults++
	} else {
		b.faults = 0
	}
	if b.faults >= maxFaults {
		b.faults = 0
		m.log.Debug("closing the connection to a peer whose sessions keep failing", "peer", p, "failures", b.failures)
		m.wg.Go(func() { m.cfg.Host.Network().ClosePeer(p) })
	}
	return reason
}

// pruneBackoffs drops expired backoff records, or the oldest if none has
// expired. Called with statusMu held.
func (m *Manager) pruneBackoffs() {
	now := time.Now()
	var oldest peer.ID
	for p, b := range m.backoffs {
		if now.After(b.notBefore) {
			delete(m.backoffs, p)
		} else if oldest == "" || b.notBefore.Before(m.backoffs[oldest].notBefore) {
			oldest = p
		}
	}
	if len(m.backoffs) >= maxBackoffPeers {
		delete(m.backoffs, oldest)
	}
}

// errPreempted ends a session whose peer went silent while another peer
// claims as much.
var errPreempted = errors.New("syncproto: sync peer silent while another peer has its blocks")

// watchSession logs a progress line every ProgressInterval and ends the
// session with errPreempted when p sends no frame for preemptAfter while
// another peer is a candidate, until stopped.
func (m *Manager) watchSession(p peer.ID, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(m.opts.ProgressInterval)
		defer t.Stop()
		check := time.NewTicker(preemptAfter / 4)
		defer check.Stop()
		frames, heard := m.syncFrames.Load(), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-check.C:
				if f := m.syncFrames.Load(); f != frames {
					frames, heard = f, now
				} else if now.Sub(heard) >= preemptAfter {
					if other, _, _ := m.elect(p); other != "" {
						cancel(errPreempted)
						return
					}
				}
			case <-t.C:
				i := m.SyncInfo()
				m.log.Info("sync progress", "peer", i.SyncPeer, "blocks", i.Blocks, "target", i.Target,
					"blocks_per_sec", int(i.BlocksPerSecond), "eta", i.ETA.Round(time.Second))
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// session fetches from p, round after round, every block of its DAG
// outside the past of ours, until we hold the tips of st. A round that
// ends without InvMore must have listed every claimed tip we lack.
func (m *Manager) session(ctx context.Context, p peer.ID, st *Status) error {
	for {
		before := m.cfg.DAG.Version()
		more, err := m.fetchRound(ctx, p)
		if err != nil {
			return err
		}
		missing := m.lacking(st.Tips)
		if len(missing) == 0 {
			return nil
		}
		if !more {
			return offense(PenaltyEmptyPromise, "its inventory lacks %d of the tips it claimed", len(missing))
		}
		if m.cfg.DAG.Version() == before {
			return errNoProgress
		}
	}
}

// batch is a getdata request in the pipeline; seq orders the results.
type batch struct {
	seq      int
	hashes   []dag.Hash
	blocks   []dag.Checked
	notFound []dag.Hash
	err      error
}

// errLocal marks our own failures (storage) in a session.
var errLocal = errors.New("syncproto: local failure")

// fetchRound asks p for its blocks outside the past of our DAG (getblocks
// with our locator), fetches the ones we lack with pipelineDepth getdata
// requests in flight while the inventory is still arriving, and adds them
// to the DAG in inventory order (parents first). more is the inventory's
// InvMore.
func (m *Manager) fetchRound(ctx context.Context, p peer.ID) (more bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// todo holds every batch an inventory can make (the inventory reader
	// never waits); window bounds the batches between getdata and the DAG.
	todo := make(chan *batch, MaxInvPerReply/MaxGetDataHashes+1)
	done := make(chan *batch, pipelineWindow)
	window := make(chan struct{}, pipelineWindow)
	var wg sync.WaitGroup
	var invErr error
	wg.Go(func() { // stage 1: getblocks → inv → batches of hashes we lack
		defer close(todo)
		seq, seen := 0, map[dag.Hash]bool{}
		var want []dag.Hash
		flush := func(all bool) {
			for len(want) >= MaxGetDataHashes || (all && len(want) > 0) {
				n := min(len(want), MaxGetDataHashes)
				todo <- &batch{seq: seq, hashes: want[:n:n]}
				seq++
				want = want[n:]
			}
		}
		// The last frame flushes everything: the last getdata need not
		// wait for the inventory stream's close.
		more, invErr = m.RequestInventory(ctx, p, m.cfg.DAG.Locator(), func(hashes []dag.Hash, last bool) error {
			for _, h := range hashes {
				if !seen[h] && !m.cfg.DAG.HaveBlock(h) {
					seen[h] = true
					want = append(want, h)
				}
			}
			flush(last)
			return nil
		})
		if invErr != nil {
			cancel()
		}
	})
	var fetchers sync.WaitGroup
	for range pipelineDepth { // stage 2: getdata
		fetchers.Go(func() {
			for {
				select {
				case window <- struct{}{}:
				case <-ctx.Done():
					return
				}
				b, ok := <-todo
				if !ok {
					return
				}
				b.blocks, b.notFound, b.err = m.RequestBlocks(ctx, p, b.hashes)
				select {
				case done <- b:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Go(func() { fetchers.Wait(); close(done) })

	// Stage 3: add to the DAG in sequence.
	pending := map[int]*batch{}
	next := 0
	for b := range done {
		if err != nil {
			continue // drain
		}
		pending[b.seq] = b
		for pending[next] != nil && err == nil {
			b := pending[next]
			delete(pending, next)
			next++
			err = m.addSessionBatch(ctx, p, b)
			<-window
		}
		if err != nil {
			cancel()
		}
	}
	wg.Wait()
	// The first cause wins: an offense, else the inventory's failure (which
	// cancelled the fetches), else a fetch's.
	switch {
	case isOffense(err):
		return false, err
	case invErr != nil:
		return false, invErr
	case err != nil:
		return false, err
	}
	return more, nil
}

// addSessionBatch adds one fetched batch to the DAG. The peer listed these
// blocks: a block it does not serve, or one whose parents neither we nor
// its inventory hold, is a claim not served.
func (m *Manager) addSessionBatch(ctx context.Context, p peer.ID, b *batch) error {
	if b.err != nil {
		return b.err
	}
	if len(b.notFound) > 0 {
		return offense(PenaltyEmptyPromise, "listed %d blocks it does not serve", len(b.notFound))
	}
	errs, err := m.submitBatch(ctx, p, b.blocks)
	if err != nil {
		return err
	}
	for i, e := range errs {
		var mp *dag.MissingParentsError
		var re *dag.RuleError
		switch {
		case e == nil, errors.Is(e, dag.ErrDuplicateBlock):
		case errors.As(e, &re):
			return e // an invalid block: the tracker bans for it
		case errors.As(e, &mp):
			return offense(PenaltyEmptyPromise, "listed block %s before its parents", b.blocks[i].Hash())
		default:
			return fmt.Errorf("%w: %w", errLocal, e)
		}
	}
	return nil
}

// queueFetch hands an orphan's missing parents to the orphan fetchers. A
// peer has at most one fetch queued or in flight (a peer that never answers
// holds one fetcher, not all of them); a fetch for a busy peer, or one that
// finds the queue full, is dropped: the orphan stays in the pool and its
// parents are asked for when the peer's current fetch is done.
func (m *Manager) queueFetch(f orphanFetch) {
	m.fetchMu.Lock()
	busy := m.fetchBusy[f.peer]
	if !busy {
		m.fetchBusy[f.peer] = true
	}
	m.fetchMu.Unlock()
	if busy {
		m.fetchesDropped.Add(1)
		return
	}
	select {
	case m.fetches <- f:
	default:
		m.fetchesDropped.Add(1)
		m.fetchDone(f.peer)
	}
}

func (m *Manager) fetchDone(p peer.ID) {
	m.fetchMu.Lock()
	delete(m.fetchBusy, p)
	m.fetchMu.Unlock()
}

// orphanFetcher fetches orphans' parents from the peers that sent the
// orphans, beside sessions and elections.
func (m *Manager) orphanFetcher() {
	for {
		select {
		case <-m.quit:
			return
		case f := <-m.fetches:
			next, ok := m.fetchParents(f)
			m.fetchDone(f.peer)
			if next.peer == "" && ok {
				// Orphans of this peer that came while it was busy.
				var missing []dag.Hash
				if m.call(m.ctx, func() { missing = m.orphans.missingFrom(f.peer) }) == nil && len(missing) > 0 {
					next = orphanFetch{peer: f.peer, missing: missing}
				}
			}
			if next.peer != "" {
				m.queueFetch(next)
			}
		}
	}
}

// fetchParents asks f.peer for the parents of an orphan it sent. It
// forwarded the orphan, so it holds them: notfound is a claim not served.
// Parents that are orphans in turn are fetched the same way (next), up to
// maxOrphanFetchDepth generations; a deeper gap is closed by a session. ok
// reports that the peer answered.
func (m *Manager) fetchParents(f orphanFetch) (next orphanFetch, ok bool) {
	hashes := m.claimFetch(f.missing)
	if len(hashes) == 0 {
		return next, true
	}
	defer m.releaseFetch(hashes)
	m.fetchesInFlight.Add(1)
	defer m.fetchesInFlight.Add(-1)
	ctx, cancel := context.WithTimeout(m.ctx, orphanFetchTimeout)
	defer cancel()
	blocks, notFound, err := m.RequestBlocks(ctx, f.peer, hashes)
	if err != nil {
		m.penalizeIfOffense(f.peer, err)
		m.log.Debug("fetching orphan parents failed", "peer", f.peer, "err", err)
		return next, false
	}
	if len(notFound) > 0 {
		m.cfg.Peers.Penalize(f.peer, offense(PenaltyEmptyPromise, "does not serve %d parents of blocks it sent", len(notFound)))
	}
	if len(blocks) == 0 {
		return next, true
	}
	errs, err := m.submitBatch(ctx, f.peer, blocks)
	if err != nil {
		return next, true
	}
	var deeper []dag.Hash
	for _, e := range errs {
		var mp *dag.MissingParentsError
		switch {
		case errors.As(e, &mp):
			deeper = append(deeper, mp.Missing...)
		case isOffense(e):
			m.penalizeIfOffense(f.peer, e)
		}
	}
	switch {
	case len(deeper) == 0:
	case f.depth+1 < maxOrphanFetchDepth:
		next = orphanFetch{peer: f.peer, missing: deeper, depth: f.depth + 1}
	default:
		m.exchangeStatus(f.peer) // a deep gap: a session with the sender closes it
	}
	return next, true
}

// claimFetch returns the hashes, at most MaxGetDataHashes, that are neither
// held nor being fetched, and marks them as being fetched.
func (m *Manager) claimFetch(hashes []dag.Hash) []dag.Hash {
	m.fetchMu.Lock()
	defer m.fetchMu.Unlock()
	var out []dag.Hash
	for _, h := range hashes {
		if len(out) == MaxGetDataHashes {
			break
		}
		if _, busy := m.fetching[h]; !busy && !m.cfg.DAG.HaveBlock(h) {
			m.fetching[h] = struct{}{}
			out = append(out, h)
		}
	}
	return out
}

func (m *Manager) releaseFetch(hashes []dag.Hash) {
	m.fetchMu.Lock()
	defer m.fetchMu.Unlock()
	for _, h := range hashes {
		delete(m.fetching, h)
	}
}
