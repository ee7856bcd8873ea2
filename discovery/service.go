package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/discovery/backoff"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
)

// ErrStarted is returned by Start when the service was already started.
var ErrStarted = errors.New("discovery: already started")

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("discovery: closed")

// Service finds peers and keeps the node connected: see the package
// documentation. It is safe for concurrent use.
type Service struct {
	cfg  Config
	opts options
	log  *slog.Logger

	target      int
	connectOnly bool
	mustMu      sync.Mutex
	must        []peer.AddrInfo  // Connect or Persistent peers: redialed whenever lost. Guarded by mustMu.
	mustSet     map[peer.ID]bool // Guarded by mustMu.
	bootstrap   []peer.AddrInfo  // empty when connectOnly
	protoPrefix protocol.ID      // /dagnode/<network>
	namespace   string           // rendezvous namespace dagnode/<network>
	mdnsName    string           // mDNS service name dagnode-<network>
	backoffs    backoff.BackoffFactory

	// lifecycle
	mu      sync.Mutex
	started bool
	closed  bool
	ctx     context.Context // cancelled by Close: the parent of every per-call context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	sub     event.Subscription
	kad     *dht.IpfsDHT
	disc    *drouting.RoutingDiscovery
	mdns    mdns.Service

	kick      chan struct{}      // wakes the dial loop; buffer 1
	dhtPeer   chan struct{}      // a DHT server identified: watch the routing table; buffer 1
	advKick   chan struct{}      // the routing table gained its first peer: advertise now; buffer 1
	rdvKick   chan struct{}      // the routing table gained its first peer: look up now; buffer 1
	mdnsFound chan peer.AddrInfo // from the mDNS notifee to its loop
	dialSem   chan struct{}      // one token per dial in flight

	dmu      sync.Mutex
	retries  map[peer.ID]*retryState
	inflight map[peer.ID]struct{}

	kmu   sync.Mutex
	known map[peer.ID]storedPeer

	smu           sync.Mutex
	lastRound     RoundResult
	lastAdvertise time.Time

	rounds       atomic.Uint64
	roundsEmpty  atomic.Uint64
	rdvDials     atomic.Uint64
	dialRounds   atomic.Uint64
	dialAttempts atomic.Uint64
	dialFailures atomic.Uint64
	mdnsFoundN   atomic.Uint64
	mdnsDropped  atomic.Uint64
}

// retryState is one peer's redial backoff.
type retryState struct {
	strat backoff.BackoffStrategy
	next  time.Time // no dial before
	since time.Time // connected since; zero while not connected
}

// RoundResult is the outcome of one rendezvous round.
type RoundResult struct {
	// At is when the round ended; zero before the first round.
	At time.Time
	// Found counts the peers the rendezvous query returned.
	Found int
	// Dialed counts the dials the round started.
	Dialed int
	// Err is the routing error, if any.
	Err error
}

// Stats are counters and recent results, for logs and RPC.
type Stats struct {
	// KnownPeers is the number of persisted peers.
	KnownPeers int
	// ConnectedPeers is the number of peers the host is connected to.
	ConnectedPeers int
	// TargetPeers is the number of peers the service tries to keep.
	TargetPeers int
	// Rounds counts rendezvous rounds since Start; EmptyTableRounds the
	// rounds skipped because the DHT's routing table was empty.
	Rounds, EmptyTableRounds uint64
	// LastRound is the last rendezvous round's result.
	LastRound RoundResult
	// RendezvousDials counts dials started from rendezvous results.
	RendezvousDials uint64
	// LastAdvertise is when the last successful advertisement ended.
	LastAdvertise time.Time
	// DialAttempts and DialFailures count the service's own dials.
	DialAttempts, DialFailures uint64
	// MDNSFound counts peers reported by mDNS; MDNSDropped those dropped
	// because the queue was full.
	MDNSFound, MDNSDropped uint64
	// DHTServing reports whether the DHT answers queries now (see
	// DHTModeAuto); RoutingTable is the number of peers in its routing
	// table. Both zero without a DHT.
	DHTServing   bool
	RoutingTable int
	// BackoffEntries is the size of the per-peer redial backoff table.
	BackoffEntries int
}

// New validates cfg and opts and returns a service that does nothing until
// Start.
func New(cfg Config, opts ...Option) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	self := cfg.Host.ID()
	connect, err := checkPeers("connect", self, cfg.Connect)
	if err != nil {
		return nil, err
	}
	persistent, err := checkPeers("persistent", self, cfg.Persistent)
	if err != nil {
		return nil, err
	}
	bootstrap, err := checkPeers("bootstrap", self, cfg.Bootstrap)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Service{
		cfg:         cfg,
		opts:        o,
		log:         log,
		target:      cfg.TargetPeers,
		connectOnly: len(connect) > 0,
		protoPrefix: protocol.ID("/dagnode/" + cfg.Network),
		namespace:   "dagnode/" + cfg.Network,
		mdnsName:    "dagnode-" + cfg.Network,
		backoffs: backoff.NewExponentialBackoff(o.backoffMin, o.backoffMax, backoff.FullJitter,
			o.backoffMin, 2, 0, rand.NewSource(time.Now().UnixNano())),
		kick:      make(chan struct{}, 1),
		dhtPeer:   make(chan struct{}, 1),
		advKick:   make(chan struct{}, 1),
		rdvKick:   make(chan struct{}, 1),
		mdnsFound: make(chan peer.AddrInfo, mdnsQueueSize),
		dialSem:   make(chan struct{}, o.maxDials),
		retries:   make(map[peer.ID]*retryState),
		inflight:  make(map[peer.ID]struct{}),
		known:     make(map[peer.ID]storedPeer),
	}
	if s.target == 0 {
		s.target = DefaultTargetPeers
	}
	if s.connectOnly {
		s.must = connect
	} else {
		s.must = persistent
		s.bootstrap = bootstrap
	}
	s.mustSet = make(map[peer.ID]bool, len(s.must))
	for _, ai := range s.must {
		s.mustSet[ai.ID] = true
	}
	return s, nil
}

// Start loads the persisted peers, starts the DHT, rendezvous and mDNS as
// configured, and starts dialing. It returns an error if called twice, after
// Close, or if the DHT cannot be built.
func (s *Service) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return ErrStarted
	}
	h := s.cfg.Host

	// Loaded in connect-only mode too (not dialed then), so the store stays
	// bounded as peers connect.
	if err := s.loadKnown(); err != nil {
		s.log.Warn("cannot load stored peers; continuing without them", "err", err)
	}
	for _, ai := range s.must {
		h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
		if s.cfg.Protect != nil {
			s.cfg.Protect(ai.ID, ProtectTag)
		}
	}
	for _, ai := range s.bootstrap {
		h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
	}
	if s.connectOnly && len(s.cfg.Bootstrap) > 0 {
		s.log.Info("bootstrap peers ignored: connect-only mode", "bootstrap", len(s.cfg.Bootstrap))
	}

	// Subscribe before the first dial, so no connection goes unrecorded.
	sub, err := h.EventBus().Subscribe([]any{
		new(event.EvtPeerConnectednessChanged),
		new(event.EvtPeerIdentificationCompleted),
		new(event.EvtPeerProtocolsUpdated),
	}, eventbus.Name("discovery"), eventbus.BufSize(eventBufSize))
	if err != nil {
		return fmt.Errorf("discovery: subscribing to host events: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	if s.cfg.DHT && !s.connectOnly {
		kad, err := dht.New(h,
			dht.ProtocolPrefix(s.protoPrefix),
			dht.Mode(kadMode(s.opts.dhtMode)),
			dht.BootstrapPeersFunc(s.dhtBootstrapPeers),
		)
		if err != nil {
			cancel()
			_ = sub.Close()
			return fmt.Errorf("discovery: starting DHT: %w", err)
		}
		s.kad = kad
		s.disc = drouting.NewRoutingDiscovery(kad)
	}
	s.ctx, s.cancel, s.sub = ctx, cancel, sub
	s.started = true

	s.wg.Add(2)
	go s.eventLoop()
	go s.dialLoop()
	if s.kad != nil {
		s.wg.Add(3)
		go s.advertiseLoop()
		go s.rendezvousLoop()
		go s.routingWatchLoop()
	}
	if s.cfg.MDNS && !s.connectOnly {
		svc := mdns.NewMdnsService(h, s.mdnsName, mdnsNotifee{s})
		if err := svc.Start(); err != nil {
			_ = svc.Close()
			s.log.Warn("mDNS unavailable; continuing without LAN discovery", "err", err)
		} else {
			s.mdns = svc
			s.wg.Add(1)
			go s.mdnsLoop()
		}
	}
	s.log.Info("discovery started", "network", s.cfg.Network, "dht", s.kad != nil,
		"dht_mode", s.opts.dhtMode.String(), "mdns", s.mdns != nil, "connect_only", s.connectOnly,
		"bootstrap", len(s.bootstrap), "persistent", len(s.mustPeers()), "known", s.knownCount(),
		"target", s.target)
	return nil
}

// Close stops every loop, closes mDNS and the DHT and waits for them. It is
// idempotent and may be called before Start.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if !s.started {
		return nil
	}
	s.cancel()
	var errs []error
	if s.mdns != nil {
		errs = append(errs, s.mdns.Close())
	}
	s.wg.Wait()
	if s.kad != nil {
		errs = append(errs, s.kad.Close())
	}
	errs = append(errs, s.sub.Close())
	return errors.Join(errs...)
}

// Stats returns the service's counters and recent results.
func (s *Service) Stats() Stats {
	s.smu.Lock()
	st := Stats{LastRound: s.lastRound, LastAdvertise: s.lastAdvertise}
	s.smu.Unlock()
	st.KnownPeers = s.knownCount()
	st.ConnectedPeers = len(s.cfg.Host.Network().Peers())
	st.TargetPeers = s.target
	st.Rounds = s.rounds.Load()
	st.EmptyTableRounds = s.roundsEmpty.Load()
	st.RendezvousDials = s.rdvDials.Load()
	st.DialAttempts = s.dialAttempts.Load()
	st.DialFailures = s.dialFailures.Load()
	st.MDNSFound = s.mdnsFoundN.Load()
	st.MDNSDropped = s.mdnsDropped.Load()
	st.DHTServing = s.DHTServing()
	s.mu.Lock()
	if s.kad != nil {
		st.RoutingTable = s.kad.RoutingTable().Size()
	}
	s.mu.Unlock()
	st.BackoffEntries = s.retryEntries()
	return st
}

// kadMode maps a DHTMode to kad-dht's.
func kadMode(m DHTMode) dht.ModeOpt {
	switch m {
	case DHTModeServer:
		return dht.ModeServer
	case DHTModeClient:
		return dht.ModeClient
	}
	return dht.ModeAutoServer
}

// DHTServing reports whether the DHT answers queries now: its protocol is
// registered on the host (kad-dht adds and removes the handler as it
// switches mode). False without a DHT.
func (s *Service) DHTServing() bool {
	s.mu.Lock()
	kad := s.kad
	s.mu.Unlock()
	if kad == nil {
		return false
	}
	return slices.Contains(s.cfg.Host.Mux().Protocols(), s.kadProtocol())
}

// kadProtocol is the DHT's protocol id, /dagnode/<network>/kad/1.0.0.
func (s *Service) kadProtocol() protocol.ID { return s.protoPrefix + "/kad/1.0.0" }

// signal sends on a buffer-1 channel without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// dhtBootstrapPeers returns the peers the DHT falls back on when its routing
// table is empty: bootstrap, persistent, then stored peers. Called from DHT
// goroutines.
func (s *Service) dhtBootstrapPeers() []peer.AddrInfo {
	known := s.KnownPeers()
	if len(known) > dhtBootstrapKnown {
		known = known[:dhtBootstrapKnown]
	}
	out := make([]peer.AddrInfo, 0, len(s.bootstrap)+len(s.must)+len(known))
	out = append(out, s.bootstrap...)
	out = append(out, s.mustPeers()...)
	return append(out, known...)
}

// connected returns the number of connected peers.
func (s *Service) connected() int {
	return len(s.cfg.Host.Network().Peers())
}

// wake asks the dial loop for a round, without blocking.
func (s *Service) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// mustPeers returns a copy of the Connect/Persistent peers.
func (s *Service) mustPeers() []peer.AddrInfo {
	s.mustMu.Lock()
	defer s.mustMu.Unlock()
	return append([]peer.AddrInfo(nil), s.must...)
}

// isMust reports whether p is a Connect/Persistent peer.
func (s *Service) isMust(p peer.ID) bool {
	s.mustMu.Lock()
	defer s.mustMu.Unlock()
	return s.mustSet[p]
}

// AddPersistent adds a peer to redial whenever lost, as --addpeer does
// (the addnode add RPC). The peer is protected from trimming and dialled at
// once. Adding a known persistent peer merges its addresses.
func (s *Service) AddPersistent(ai peer.AddrInfo) error {
	if ai.ID == s.cfg.Host.ID() {
		return errors.New("discovery: cannot add this node as a persistent peer")
	}
	if len(ai.Addrs) == 0 {
		return errors.New("discovery: a persistent peer needs an address")
	}
	s.mustMu.Lock()
	found := false
	for i := range s.must {
		if s.must[i].ID == ai.ID {
			s.must[i].Addrs = append(s.must[i].Addrs, ai.Addrs...)
			found = true
		}
	}
	if !found {
		s.must = append(s.must, ai)
		s.mustSet[ai.ID] = true
	}
	s.mustMu.Unlock()
	if s.cfg.Protect != nil {
		s.cfg.Protect(ai.ID, ProtectTag)
	}
	s.wake()
	return nil
}

// RemovePersistent stops redialing a persistent peer (addnode remove). It
// reports whether the peer was persistent. The connection stays up.
func (s *Service) RemovePersistent(id peer.ID) bool {
	s.mustMu.Lock()
	defer s.mustMu.Unlock()
	if !s.mustSet[id] {
		return false
	}
	delete(s.mustSet, id)
	for i := range s.must {
		if s.must[i].ID == id {
			s.must = append(s.must[:i], s.must[i+1:]...)
			break
		}
	}
	return true
}
