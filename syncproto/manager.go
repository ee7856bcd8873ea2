package syncproto

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

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
	ProcessBlock(ctx context.Context, b *dag.Block) error
	ProcessBlocks(ctx context.Context, blocks []*dag.Block) []error
	Status() dag.Status
	HaveBlock(h dag.Hash) bool
	BlockInfo(h dag.Hash) (dag.BlockInfo, bool)
	BlockBytes(ctx context.Context, h dag.Hash) ([]byte, error)
	HashesAtHeight(height int64) []dag.Hash
	Params() *dag.Params
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
	// added to the DAG (from is empty for blocks mined here). It must not
	// block.
	OnAccepted func(b *dag.Block, hash dag.Hash, from peer.ID)
	Logger     *slog.Logger
}

// ProtocolID returns the sync protocol id of a network.
func ProtocolID(network string) protocol.ID {
	return protocol.ID("/dagnode/" + network + "/sync/1")
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
)

// ErrWrongNetwork is the misbehaviour of a peer of another network: it does
// not speak our protocol, or its genesis differs.
var ErrWrongNetwork = errors.New("syncproto: peer is on another network")

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("syncproto: manager closed")

// Stats are the manager's counters.
type Stats struct {
	Accepted       uint64
	Orphans        int
	OrphansEvicted uint64
	OrphansExpired uint64
	OrphansJoined  uint64
	Handshakes     uint64
	WrongNetwork   uint64
}

type submitReq struct {
	ctx   context.Context
	from  peer.ID
	block *dag.Block
	reply chan error // buffered 1: the loop never blocks on it
}

// Manager is the sync manager: the single writer of the DAG, the orphan
// pool, and the sync protocol's server and client.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	proto protocol.ID

	submits chan submitReq
	quit    chan struct{}
	// ctx is the parent of the manager's own requests; Close cancels it.
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
	sub     event.Subscription
	hsSlots chan struct{}

	// Loop-owned state.
	orphans *orphanPool

	accepted      atomic.Uint64
	joined        atomic.Uint64
	handshakes    atomic.Uint64
	wrongNetwork  atomic.Uint64
	orphanGauge   atomic.Int64
	orphanEvicted atomic.Uint64
	orphanExpired atomic.Uint64
}

// New returns a manager; Start starts it.
func New(cfg Config) (*Manager, error) {
	if cfg.Host == nil || cfg.DAG == nil || cfg.Peers == nil {
		return nil, errors.New("syncproto: Config.Host, DAG and Peers are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		ctx:     ctx,
		cancel:  cancel,
		cfg:     cfg,
		log:     cfg.Logger,
		proto:   ProtocolID(cfg.DAG.Params().Name),
		submits: make(chan submitReq),
		quit:    make(chan struct{}),
		hsSlots: make(chan struct{}, maxConcurrentHandshakes),
		orphans: newOrphanPool(),
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
	m.wg.Go(m.watchPeers)
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
	})
	return nil
}

// Submit hands a block to the DAG through the manager loop and returns the
// outcome: nil when accepted (and durable). A block with unknown parents is
// kept as an orphan and *dag.MissingParentsError is returned. from is the
// peer it came from, or empty for blocks mined here.
func (m *Manager) Submit(ctx context.Context, from peer.ID, b *dag.Block) error {
	r := submitReq{ctx: ctx, from: from, block: b, reply: make(chan error, 1)}
	select {
	case m.submits <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-m.quit:
		return ErrClosed
	}
	select {
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-m.quit:
		return ErrClosed
	}
}

// Stats returns the manager's counters.
func (m *Manager) Stats() Stats {
	return Stats{
		Accepted:       m.accepted.Load(),
		Orphans:        int(m.orphanGauge.Load()),
		OrphansEvicted: m.orphanEvicted.Load(),
		OrphansExpired: m.orphanExpired.Load(),
		OrphansJoined:  m.joined.Load(),
		Handshakes:     m.handshakes.Load(),
		WrongNetwork:   m.wrongNetwork.Load(),
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
		case r := <-m.submits:
			r.reply <- m.process(r.ctx, r.from, r.block)
		case now := <-sweep.C:
			m.orphans.expire(now)
			m.syncOrphanStats()
		}
	}
}

// process adds one block and then every orphan it completes. Only called
// from the manager loop.
func (m *Manager) process(ctx context.Context, from peer.ID, b *dag.Block) error {
	err := m.cfg.DAG.ProcessBlock(ctx, b)
	var mp *dag.MissingParentsError
	switch {
	case err == nil:
		m.accepted.Add(1)
		hash := b.Hash()
		m.notify(b, hash, from)
		m.connectOrphans(ctx, hash)
	case errors.As(err, &mp):
		if !m.orphans.has(mp.Block) {
			m.orphans.add(b, mp.Block, from, mp.Missing, time.Now())
			m.log.Debug("orphan block kept", "hash", mp.Block, "missing", len(mp.Missing), "peer", from)
		}
	}
	m.syncOrphanStats()
	return err
}

// connectOrphans processes the orphans waiting on an accepted block, and
// theirs in turn.
func (m *Manager) connectOrphans(ctx context.Context, parent dag.Hash) {
	queue := []dag.Hash{parent}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		for _, o := range m.orphans.takeChildren(h) {
			err := m.cfg.DAG.ProcessBlock(ctx, o.block)
			var mp *dag.MissingParentsError
			switch {
			case err == nil:
				m.accepted.Add(1)
				m.joined.Add(1)
				m.notify(o.block, o.hash, o.from)
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

func (m *Manager) notify(b *dag.Block, hash dag.Hash, from peer.ID) {
	if m.cfg.OnAccepted != nil {
		m.cfg.OnAccepted(b, hash, from)
	}
}

func (m *Manager) syncOrphanStats() {
	m.orphanGauge.Store(int64(m.orphans.len()))
	m.orphanEvicted.Store(m.orphans.evicted)
	m.orphanExpired.Store(m.orphans.expired)
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
			if e.Connectedness == network.Connected {
				m.handshake(e.Peer)
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
	m.wg.Go(func() {
		defer func() { <-m.hsSlots }()
		ctx, cancel := context.WithTimeout(m.ctx, StatusTimeout)
		defer cancel()
		st, err := m.RequestStatus(ctx, p)
		if err != nil {
			if errors.Is(err, ErrWrongNetwork) {
				m.wrongNetwork.Add(1)
				m.cfg.Peers.Penalize(p, err)
			}
			m.log.Debug("status exchange failed", "peer", p, "err", err)
			return
		}
		m.handshakes.Add(1)
		m.log.Debug("peer status", "peer", p, "height", st.MaxHeight, "blocks", st.Count, "tips", len(st.Tips))
	})
}
