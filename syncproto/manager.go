package syncproto

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/dagnode/dagnode/dag"
)

// DAG is what the sync manager reads from and writes to the DAG. The manager
// is its only writer.
type DAG interface {
	ProcessBlocks(ctx context.Context, blocks []*dag.Block) []error
	CommitBlocks(ctx context.Context, blocks []*dag.Block) []error
	Check(raw []byte) (dag.Checked, error)
	CommitChecked(ctx context.Context, blocks []dag.Checked) []error
	Sync(ctx context.Context) error
	Status() dag.Status
	HaveBlock(h dag.Hash) bool
	BlockInfo(h dag.Hash) (dag.BlockInfo, bool)
	BlocksBytes(ctx context.Context, hashes []dag.Hash, fn func(h dag.Hash, raw []byte) error) ([]dag.Hash, error)
	Locator() []dag.Hash
	NotInPast(have []dag.Hash, limit int) ([]dag.HashHeight, bool)
	Params() *dag.Params
	Version() uint64
}

// Peers is the peer tracker as the sync manager uses it: the one place that
// scores misbehaviour and keeps per-peer state.
type Peers interface {
	Penalize(p peer.ID, err error)
	SetStatus(p peer.ID, st dag.Status)
	SetSyncPeer(p peer.ID, on bool)
}

// Config holds the manager's required dependencies.
type Config struct {
	Host  host.Host
	DAG   DAG
	Peers Peers
	// OnAccepted, if set, is called from the manager loop for every block
	// added to the DAG (from is empty for blocks mined here), once it is
	// committed to the store (durable for blocks mined here; a peer's
	// within storeSyncDelay). relay is true
	// for a block gossip did not forward when it arrived (an orphan joined
	// once its parents came): the node should announce it now. It must not
	// block.
	OnAccepted func(b *dag.Block, hash dag.Hash, from peer.ID, relay bool)
	Logger     *slog.Logger
}

// ProtocolID returns the sync protocol id of a network.
func ProtocolID(network string) protocol.ID {
	return protocol.ID("/dagnode/" + network + "/sync/3")
}

// Timeouts.
const (
	// StatusTimeout bounds the status exchange with a new peer.
	StatusTimeout = 10 * time.Second
	// requestReadTimeout bounds reading a request on the serving side.
	requestReadTimeout = 10 * time.Second
	// replyWriteTimeout bounds writing a reply on the serving side.
	replyWriteTimeout = 30 * time.Second
	// orphanSweepInterval is how often expired orphans are dropped.
	orphanSweepInterval = 30 * time.Second
	// maxConcurrentHandshakes bounds status exchanges in flight.
	maxConcurrentHandshakes = 16
	// storeSyncDelay bounds how long a peer's block, committed to the store,
	// waits for stable storage. Blocks mined or submitted here are durable
	// before they are reported; a peer's are committed (readable at once)
	// and synced at most this much later, together with every block
	// committed meanwhile: a crash costs at most this much of what peers can
	// send again (the store stays a consistent DAG), and the disk's sync
	// (~65 µs of CPU per call here, plus the wait) stays out of the few
	// milliseconds in which a block crosses the network.
	storeSyncDelay = 250 * time.Millisecond
)

// ErrRelayed refuses a sync request that came over a relayed connection:
// a relay's limits (2 minutes, 128 KiB) would cut a block download, and a
// relay sees and may filter everything on it (an eclipse risk). The peer is
// not penalised: its libp2p may have had no other connection to use.
var ErrRelayed = errors.New("syncproto: no sync over a relayed connection")

// ErrNotDagnode is the failure of a status exchange with a peer that is not
// a dagnode node (its identify protocol version is not "/dagnode/..."):
// libp2p's AutoNAT dial-back hosts, plain DHT or relay clients. It is not
// an offense.
var ErrNotDagnode = errors.New("syncproto: peer is not a dagnode node")

// ErrWrongNetwork is the misbehaviour of a peer of another network: it does
// not speak our protocol, or its genesis differs.
var ErrWrongNetwork = errors.New("syncproto: peer is on another network")

// ErrSyncing is returned by Submit for a peer's orphan in sync mode: it is
// not kept, the session (or the next status of its sender) brings it.
var ErrSyncing = errors.New("syncproto: in sync mode, orphan announcement dropped")

// ErrClosed is returned by Submit, Enqueue and EnqueueOrphan after Close.
var ErrClosed = errors.New("syncproto: manager closed")

// ErrQueueFull is returned by Enqueue and EnqueueOrphan when the queue the
// block would wait in is full: the block is dropped (Stats.QueueFull), and
// sync brings it later (a child's parent fetch, or a peer's status).
var ErrQueueFull = errors.New("syncproto: manager queue full, block dropped")

// Stats are the manager's counters.
type Stats struct {
	Accepted       uint64
	Orphans        int
	OrphanBytes    int
	OrphansEvicted uint64
	OrphansExpired uint64
	OrphansJoined  uint64
	Handshakes     uint64
	WrongNetwork   uint64
	// BlocksServed counts blocks sent to peers.
	BlocksServed uint64
	// DroppedSyncing counts orphan announcements dropped in sync mode.
	DroppedSyncing uint64
	// OrphanFetches counts parent fetches in flight; FetchesDropped those
	// dropped because the fetch queue was full.
	OrphanFetches  int
	FetchesDropped uint64
	// BytesIn counts the bytes of the replies we read as a client.
	BytesIn uint64
	// Sessions counts sync sessions started; Stalls those ended by a stall.
	Sessions uint64
	Stalls   uint64
	// RelayedRefused counts requests refused because they came over a
	// relayed connection.
	RelayedRefused uint64
	// QueueFull counts blocks Enqueue and EnqueueOrphan dropped because
	// their queue was full.
	QueueFull uint64
}

// queued is a block waiting for the loop (Enqueue, EnqueueOrphan).
type queued struct {
	from  peer.ID
	block dag.Checked
	// orphan: its parents were missing when gossip checked it, so gossip did
	// not forward it. If it joins the DAG it is reported with relay set; if
	// it breaks a rule once its parents are known, its sender is charged.
	orphan bool
}

// Queue bounds. Enqueue and EnqueueOrphan never wait (a gossip validator
// must not wait on the disk or the loop): a full queue drops the block.
const (
	// enqueueQueue bounds the checked blocks waiting for the loop: a burst
	// of a few hundred gossiped blocks (a wide DAG round arriving while the
	// loop serves a sync batch) is absorbed.
	enqueueQueue = 512
	// orphanQueue bounds the orphan announcements waiting for the loop. They
	// have their own queue, taken after the checked blocks, so that a flood
	// of orphans never crowds out valid blocks. Each costs the loop one DAG
	// lookup (no disk write) unless its parents came meanwhile.
	orphanQueue = 256
)

// loopReq runs fn in the manager loop; done is closed after it ran.
type loopReq struct {
	fn   func()
	done chan struct{}
}

// Manager is the sync manager: the single writer of the DAG, the orphan
// pool, and the sync protocol's server and client.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	proto protocol.ID

	// unsynced: blocks committed without a sync since the last one (set by
	// the loop after a commit, cleared by whoever syncs next); committed
	// wakes storeSyncer.
	unsynced  atomic.Bool
	committed chan struct{}

	calls   chan loopReq
	queue   chan queued // checked blocks (Enqueue)
	orphanQ chan queued // orphan announcements (EnqueueOrphan)
	quit    chan struct{}
	// ctx is the parent of the manager's own requests; Close cancels it.
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
	sub     event.Subscription
	hsSlots chan struct{}
	// hsInFlight counts handshakes with new peers in flight: an election
	// waits for them (up to ElectionWait).
	hsInFlight atomic.Int64
	// handlersActive counts requests being served.
	handlersActive atomic.Int64
	invSlots       chan struct{}

	opts Options

	// Loop-owned state.
	orphans *orphanPool

	// Sync state (sync.go).
	statusMu        sync.Mutex
	statuses        map[peer.ID]*peerState
	backoffs        map[peer.ID]*backoff // guarded by statusMu
	fetchMu         sync.Mutex
	fetching        map[dag.Hash]struct{} // parents being fetched; guarded by fetchMu
	fetchBusy       map[peer.ID]bool      // peers with a fetch queued or in flight; guarded by fetchMu
	fetchesInFlight atomic.Int64
	bytesIn         atomic.Uint64
	syncFrames      atomic.Uint64 // frames read from the sync peer
	limiterMu       sync.Mutex
	limiters        map[peer.ID]*rate.Limiter
	fetches         chan orphanFetch
	poke            chan struct{}
	syncing         atomic.Bool
	syncPeer        atomic.Pointer[peer.ID]
	progress        progress
	served          atomic.Uint64
	droppedSyncing  atomic.Uint64
	fetchesDropped  atomic.Uint64
	sessions        atomic.Uint64
	stalls          atomic.Uint64

	accepted       atomic.Uint64
	joined         atomic.Uint64
	handshakes     atomic.Uint64
	wrongNetwork   atomic.Uint64
	relayedRefused atomic.Uint64
	queueFull      atomic.Uint64
	orphanGauge    atomic.Int64
	orphanBytes    atomic.Int64
	orphanEvicted  atomic.Uint64
	orphanExpired  atomic.Uint64
}

// New returns a manager; Start starts it.
func New(cfg Config, opts ...Option) (*Manager, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if cfg.Host == nil || cfg.DAG == nil || cfg.Peers == nil {
		return nil, errors.New("syncproto: Config.Host, DAG and Peers are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		ctx:       ctx,
		cancel:    cancel,
		cfg:       cfg,
		log:       cfg.Logger,
		proto:     ProtocolID(cfg.DAG.Params().Name),
		calls:     make(chan loopReq),
		queue:     make(chan queued, enqueueQueue),
		orphanQ:   make(chan queued, orphanQueue),
		committed: make(chan struct{}, 1),
		statuses:  make(map[peer.ID]*peerState),
		backoffs:  make(map[peer.ID]*backoff),
		fetching:  make(map[dag.Hash]struct{}),
		fetchBusy: make(map[peer.ID]bool),
		invSlots:  make(chan struct{}, maxConcurrentInventories),
		limiters:  make(map[peer.ID]*rate.Limiter),
		fetches:   make(chan orphanFetch, orphanFetchQueue),
		poke:      make(chan struct{}, 1),
		opts:      o,
		quit:      make(chan struct{}),
		hsSlots:   make(chan struct{}, maxConcurrentHandshakes),
		orphans:   newOrphanPool(),
	}, nil
}

// Start registers the stream handler and starts the manager loop and the
// handshake with every connected and newly connected peer.
func (m *Manager) Start() error {
	sub, err := m.cfg.Host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return fmt.Errorf("syncproto: subscribing to peer events: %w", err)
	}
	m.sub = sub
	m.cfg.Host.SetStreamHandler(m.proto, m.handleStream)
	m.wg.Go(m.loop)
	m.wg.Go(m.storeSyncer)
	m.wg.Go(m.watchPeers)
	m.wg.Go(m.syncLoop)
	for range orphanFetchers {
		m.wg.Go(m.orphanFetcher)
	}
	for _, p := range m.cfg.Host.Network().Peers() {
		m.handshake(p)
	}
	return nil
}

// Close stops the manager and waits for its goroutines. It is idempotent.
func (m *Manager) Close() error {
	m.once.Do(func() {
		m.cfg.Host.RemoveStreamHandler(m.proto)
		m.cancel()
		close(m.quit)
		if m.sub != nil {
			m.sub.Close()
		}
		m.wg.Wait()
		m.syncStore(context.Background()) // nothing commits any more
	})
	return nil
}

// Submit hands a block to the DAG through the manager loop and returns the
// outcome: nil when accepted (durable if from is empty; a peer's block
// reaches stable storage within storeSyncDelay). A block with unknown parents is
// kept as an orphan (its parents are fetched from from) and
// *dag.MissingParentsError is returned; in sync mode a peer's orphan is not
// kept (ErrSyncing): the session brings what it lacks. from is the peer it
// came from, or empty for blocks mined here. Blocks whose parents we hold
// are taken from every peer, also in sync mode.
func (m *Manager) Submit(ctx context.Context, from peer.ID, b *dag.Block) error {
	if from != "" && m.syncing.Load() && len(m.lacking(b.Header.Parents)) > 0 {
		// Dropped before the loop: a flood of orphans costs the session
		// nothing.
		m.droppedSyncing.Add(1)
		return ErrSyncing
	}
	var err error
	if cerr := m.call(ctx, func() { err = m.process(ctx, from, b, false) }); cerr != nil {
		return cerr
	}
	return err
}

// Enqueue hands a block that dag.CheckRaw and DAG.CheckConnect have
// already accepted to the manager loop and returns at once, without waiting
// for the loop or the disk, so gossip can forward the block at once; the
// outcome reaches OnAccepted. It never blocks: when the queue (enqueueQueue) is full the
// block is dropped and ErrQueueFull returned (gossip should then not
// forward it: the node could not store it now). After Close it returns
// ErrClosed.
func (m *Manager) Enqueue(from peer.ID, c dag.Checked) error {
	return m.enqueue(m.queue, queued{from: from, block: c})
}

// EnqueueOrphan hands a peer's block (passed dag.CheckRaw) whose parents
// DAG.CheckConnect did not find to the manager loop and returns at once, as
// Enqueue does. The loop
// keeps it as an orphan and fetches its parents from from, or, if they
// arrived meanwhile, adds it and reports it to OnAccepted with relay set
// (gossip ignored it). In sync mode it is dropped at once (ErrSyncing), as
// Submit does. A full queue (orphanQueue) drops it: ErrQueueFull.
func (m *Manager) EnqueueOrphan(from peer.ID, c dag.Checked) error {
	if from != "" && m.syncing.Load() && len(m.lacking(c.Block().Header.Parents)) > 0 {
		m.droppedSyncing.Add(1)
		return ErrSyncing
	}
	return m.enqueue(m.orphanQ, queued{from: from, block: c, orphan: true})
}

// enqueue puts q into ch unless ch is full or the manager is closed.
func (m *Manager) enqueue(ch chan queued, q queued) error {
	select {
	case <-m.quit:
		return ErrClosed
	default:
	}
	select {
	case ch <- q:
		return nil
	default:
		m.queueFull.Add(1)
		return ErrQueueFull
	}
}

// submitBatch processes blocks in order with one commit (sync sessions,
// orphans' parents): peers' blocks, checked by RequestBlocks.
func (m *Manager) submitBatch(ctx context.Context, from peer.ID, blocks []dag.Checked) ([]error, error) {
	var errs []error
	if err := m.call(ctx, func() { errs = m.processBatch(ctx, from, blocks) }); err != nil {
		return nil, err
	}
	return errs, nil
}

// call runs fn in the manager loop and waits for it.
func (m *Manager) call(ctx context.Context, fn func()) error {
	r := loopReq{fn: fn, done: make(chan struct{})}
	select {
	case m.calls <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-m.quit:
		return ErrClosed
	}
	// Once taken, the loop finishes fn: wait for it, so fn's results are
	// never read while it runs.
	<-r.done
	return nil
}

// Stats returns the manager's counters.
func (m *Manager) Stats() Stats {
	return Stats{
		Accepted:       m.accepted.Load(),
		Orphans:        int(m.orphanGauge.Load()),
		OrphanBytes:    int(m.orphanBytes.Load()),
		OrphanFetches:  int(m.fetchesInFlight.Load()),
		FetchesDropped: m.fetchesDropped.Load(),
		BytesIn:        m.bytesIn.Load(),
		OrphansEvicted: m.orphanEvicted.Load(),
		OrphansExpired: m.orphanExpired.Load(),
		OrphansJoined:  m.joined.Load(),
		Handshakes:     m.handshakes.Load(),
		WrongNetwork:   m.wrongNetwork.Load(),
		RelayedRefused: m.relayedRefused.Load(),
		QueueFull:      m.queueFull.Load(),
		BlocksServed:   m.served.Load(),
		DroppedSyncing: m.droppedSyncing.Load(),
		Sessions:       m.sessions.Load(),
		Stalls:         m.stalls.Load(),
	}
}

// loop is the single writer.
func (m *Manager) loop() {
	sweep := time.NewTicker(orphanSweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-m.quit:
			return
		case r := <-m.calls:
			// Blocks already checked and queued go first: a call (a mined
			// block, a session's batch) may be a child of one of them.
			m.drainQueue()
			r.fn()
			close(r.done)
		case q := <-m.queue:
			m.processQueued(q)
		case q := <-m.orphanQ:
			// Checked blocks first: the orphan may be a child of one.
			m.drainQueue()
			m.processQueued(q)
		case now := <-sweep.C:
			m.orphans.expire(now)
			m.syncOrphanStats()
		}
	}
}

// add adds blocks that came from from (empty: made here) to the DAG. Blocks
// made here are durable when it returns; a peer's are committed, and
// storeSyncer syncs them within storeSyncDelay. Only called from the manager
// loop, the only committer.
func (m *Manager) add(ctx context.Context, from peer.ID, blocks []*dag.Block) []error {
	if from == "" {
		errs := m.cfg.DAG.ProcessBlocks(ctx, blocks)
		m.unsynced.Store(false) // its sync covered every earlier commit
		return errs
	}
	errs := m.cfg.DAG.CommitBlocks(ctx, blocks)
	m.committedPeerBlocks()
	return errs
}

// commitChecked commits a peer's blocks that passed dag.Check; storeSyncer
// syncs them within storeSyncDelay. Only called from the manager loop.
func (m *Manager) commitChecked(ctx context.Context, blocks []dag.Checked) []error {
	errs := m.cfg.DAG.CommitChecked(ctx, blocks)
	m.committedPeerBlocks()
	return errs
}

// committedPeerBlocks tells storeSyncer that a peer's blocks were committed.
func (m *Manager) committedPeerBlocks() {
	m.unsynced.Store(true)
	select {
	case m.committed <- struct{}{}:
	default: // storeSyncer already has a sync coming
	}
}

// storeSyncer syncs the store storeSyncDelay after a peer's block was
// committed, for every block committed by then, so that neither the loop
// nor gossip waits for the disk for a peer's block. Close syncs what is
// left once the loop has stopped.
func (m *Manager) storeSyncer() {
	t := time.NewTimer(storeSyncDelay)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-m.quit:
			return
		case <-m.committed:
		}
		t.Reset(storeSyncDelay)
		select {
		case <-m.quit:
			return
		case <-t.C:
		}
		m.syncStore(m.ctx)
	}
}

// syncStore waits for the blocks committed since the last sync to reach
// stable storage.
func (m *Manager) syncStore(ctx context.Context) {
	if !m.unsynced.Swap(false) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := m.cfg.DAG.Sync(ctx); err != nil {
		m.unsynced.Store(true)
		m.log.Error("store sync failed", "err", err)
	}
}

// process adds one block and then every orphan it completes; relay is
// passed to OnAccepted for the block. Only called from the manager loop.
func (m *Manager) process(ctx context.Context, from peer.ID, b *dag.Block, relay bool) error {
	return m.settleBlock(ctx, from, b, b.Hash(), relay, m.add(ctx, from, []*dag.Block{b})[0])
}

// processChecked is process for a peer's block that passed dag.Check.
func (m *Manager) processChecked(ctx context.Context, from peer.ID, c dag.Checked, relay bool) error {
	return m.settleBlock(ctx, from, c.Block(), c.Hash(), relay, m.commitChecked(ctx, []dag.Checked{c})[0])
}

// settleBlock acts on the outcome err of adding b, whose hash is hash:
// reports and connects an accepted block, keeps an orphan. Only called from
// the manager loop.
func (m *Manager) settleBlock(ctx context.Context, from peer.ID, b *dag.Block, hash dag.Hash, relay bool, err error) error {
	var mp *dag.MissingParentsError
	switch {
	case err == nil:
		m.accepted.Add(1)
		m.notify(b, hash, from, relay)
		m.connectOrphans(ctx, hash)
	case errors.As(err, &mp):
		if from != "" && m.syncing.Load() {
			m.droppedSyncing.Add(1)
			return ErrSyncing
		}
		m.keepOrphan(b, mp, from)
		if from != "" {
			m.queueFetch(orphanFetch{peer: from, missing: mp.Missing})
		}
	}
	m.syncOrphanStats()
	return err
}

// processBatch is process for a peer's checked blocks, with one commit.
// Only called from the manager loop.
func (m *Manager) processBatch(ctx context.Context, from peer.ID, blocks []dag.Checked) []error {
	errs := m.commitChecked(ctx, blocks)
	for i, err := range errs {
		var mp *dag.MissingParentsError
		switch {
		case err == nil:
			m.accepted.Add(1)
			hash := blocks[i].Hash()
			m.notify(blocks[i].Block(), hash, from, false)
			m.connectOrphans(ctx, hash)
		case errors.As(err, &mp):
			m.keepOrphan(blocks[i].Block(), mp, from)
		}
	}
	m.syncOrphanStats()
	return errs
}

// keepOrphan adds a block to the orphan pool. Only called from the manager
// loop.
func (m *Manager) keepOrphan(b *dag.Block, mp *dag.MissingParentsError, from peer.ID) {
	if m.orphans.has(mp.Block) {
		return
	}
	m.orphans.add(b, mp.Block, from, mp.Missing, time.Now())
	m.log.Debug("orphan block kept", "hash", mp.Block, "missing", len(mp.Missing), "peer", from)
}

// connectOrphans processes the orphans waiting on an accepted block, and
// theirs in turn.
func (m *Manager) connectOrphans(ctx context.Context, parent dag.Hash) {
	queue := []dag.Hash{parent}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		for _, o := range m.orphans.takeChildren(h, time.Now()) {
			err := m.add(ctx, o.from, []*dag.Block{o.block})[0]
			var mp *dag.MissingParentsError
			switch {
			case err == nil:
				m.accepted.Add(1)
				m.joined.Add(1)
				m.notify(o.block, o.hash, o.from, o.from != "")
				queue = append(queue, o.hash)
			case errors.As(err, &mp):
				// Still waiting on another parent.
				m.orphans.add(o.block, o.hash, o.from, mp.Missing, o.added)
			case errors.Is(err, dag.ErrDuplicateBlock):
			default:
				if o.from != "" {
					m.cfg.Peers.Penalize(o.from, err)
				}
				m.log.Debug("orphan block refused", "hash", o.hash, "peer", o.from, "err", err)
			}
		}
	}
}

func (m *Manager) notify(b *dag.Block, hash dag.Hash, from peer.ID, relay bool) {
	if m.cfg.OnAccepted != nil {
		m.cfg.OnAccepted(b, hash, from, relay)
	}
}

// drainQueue processes every block waiting in the queue. Only called from
// the manager loop.
func (m *Manager) drainQueue() {
	for {
		select {
		case q := <-m.queue:
			m.processQueued(q)
		default:
			return
		}
	}
}

func (m *Manager) processQueued(q queued) {
	err := m.processChecked(m.ctx, q.from, q.block, q.orphan)
	var (
		mp *dag.MissingParentsError
		re *dag.RuleError
	)
	switch {
	case err == nil, errors.Is(err, dag.ErrDuplicateBlock), errors.Is(err, ErrSyncing):
	case q.orphan && errors.As(err, &mp):
		// Kept as an orphan; its parents are being fetched.
	case q.orphan && q.from != "" && errors.As(err, &re):
		// Its parents came and it breaks a rule: as an orphan that joins
		// and fails (connectOrphans).
		m.cfg.Peers.Penalize(q.from, err)
		m.log.Debug("queued orphan refused", "hash", q.block.Hash(), "peer", q.from, "err", err)
	default:
		m.log.Debug("queued block not added", "hash", q.block.Hash(), "peer", q.from, "err", err)
	}
}

// syncOrphanStats publishes the pool's counters and charges the senders of
// orphans that never connected. Only called from the manager loop.
func (m *Manager) syncOrphanStats() {
	m.orphanGauge.Store(int64(m.orphans.len()))
	m.orphanBytes.Store(int64(m.orphans.bytes))
	m.orphanEvicted.Store(m.orphans.evicted)
	m.orphanExpired.Store(m.orphans.expired)
	for p, n := range m.orphans.takeCharged() {
		m.cfg.Peers.Penalize(p, offense(n*PenaltyOrphan, "%d orphans whose parents never came", n))
	}
}

// watchPeers starts a handshake with every newly connected peer.
func (m *Manager) watchPeers() {
	for {
		select {
		case <-m.quit:
			return
		case ev, ok := <-m.sub.Out():
			if !ok {
				return
			}
			e := ev.(event.EvtPeerConnectednessChanged)
			switch e.Connectedness {
			case network.Connected:
				m.handshake(e.Peer)
			case network.NotConnected:
				m.forgetPeer(e.Peer)
			}
		}
	}
}

// handshake exchanges statuses with p in the background, bounded by
// maxConcurrentHandshakes.
func (m *Manager) handshake(p peer.ID) {
	select {
	case m.hsSlots <- struct{}{}:
	case <-m.quit:
		return
	}
	m.hsInFlight.Add(1)
	m.wg.Go(func() {
		defer func() { <-m.hsSlots }()
		st := m.exchangeStatus(p)
		if st != nil {
			m.skipGrace(p)
		}
		m.hsInFlight.Add(-1)
		m.pokeSync()
		if st != nil {
			m.handshakes.Add(1)
			m.log.Debug("peer status", "peer", p, "height", st.MaxHeight, "blocks", st.Count, "tips", len(st.Tips))
		}
	})
}

// skipGrace makes p a sync candidate at once if its status names tips we
// lack: the status came with a new connection's handshake, so those tips
// are not blocks that gossip from p has in flight to us (BehindGrace is for
// those). A healed partition's first link syncs without waiting.
func (m *Manager) skipGrace(p peer.ID) {
	m.statusMu.Lock()
	defer m.statusMu.Unlock()
	if ps := m.statuses[p]; ps != nil && !ps.aheadSince.IsZero() {
		ps.aheadSince = time.Now().Add(-BehindGrace)
	}
}

// exchangeStatus exchanges statuses with p, bounded by StatusTimeout, and
// reports an offense to the tracker. It returns p's status, or nil.
func (m *Manager) exchangeStatus(p peer.ID) *Status {
	ctx, cancel := context.WithTimeout(m.ctx, StatusTimeout)
	defer cancel()
	st, err := m.RequestStatus(ctx, p)
	if err != nil {
		m.penalizeIfOffense(p, err)
		m.log.Debug("status exchange failed", "peer", p, "err", err)
		return nil
	}
	return st
}
