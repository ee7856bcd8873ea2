package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
)

// Chain is what the validator reads from the DAG.
type Chain interface {
	// HaveBlock reports whether the DAG holds the block.
	HaveBlock(h dag.Hash) bool
}

// Penalizer receives the peers that sent invalid blocks, with the
// *dag.RuleError that proves it. It is called from validation goroutines and
// must not block.
type Penalizer interface {
	Penalize(p peer.ID, err error)
}

// Config holds the service's required dependencies.
type Config struct {
	// Host is the libp2p host the router runs on.
	Host host.Host
	// Params selects the network; the topic is TopicName(Params.Name).
	Params *dag.Params
	// DAG is read to skip blocks already held.
	DAG Chain
	// Submit is the node's single write path (the sync manager): nil means
	// the block passed every check and the DAG's writer has it (the node
	// may finish writing it in the background, so forwarding does not wait
	// for the disk); otherwise it returns the dag errors (*dag.RuleError,
	// *dag.MissingParentsError, dag.ErrDuplicateBlock), an error wrapping
	// ErrDeferred, or others. It must not wait for the disk or for the
	// DAG's writer (queue the block and return; a full queue is ErrDeferred):
	// every validation in flight holds one of maxConcurrentValidations
	// slots. It is called with a context bounded by the validator timeout
	// and must honour it. The block has passed dag.CheckRaw (decoded, its
	// sanity checked, its hash and bytes kept), so the writer need not
	// check, hash or encode it again.
	Submit func(ctx context.Context, from peer.ID, c dag.Checked) error
	// Penalizer, if not nil, is told about every peer that sent an invalid
	// block.
	Penalizer Penalizer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Option tunes a Service.
type Option func(*options)

type options struct {
	now      func() time.Time
	appScore func(peer.ID) float64
}

// WithClock sets the clock that block timestamps are checked against. The
// default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithAppSpecificScore sets the application-specific part of the GossipSub
// peer score (P5, weight 1), e.g. a strongly negative value for peers the
// peer tracker has banned. The default scores every peer 0. The function is
// called from the router's event loop: it must be fast and must not block.
func WithAppSpecificScore(score func(peer.ID) float64) Option {
	return func(o *options) { o.appScore = score }
}

// Errors returned by Start and Publish.
var (
	// ErrNotStarted is returned by Publish before Start.
	ErrNotStarted = errors.New("gossip: not started")
	// ErrClosed is returned by Start and Publish after Close.
	ErrClosed = errors.New("gossip: closed")
)

// Stats are the service's counters since Start. Every message on the topic
// that reaches our validator from a peer is counted once in exactly one of
// Accepted, Rejected, Ignored, Duplicate and Orphan.
type Stats struct {
	// Topic is the block topic.
	Topic string
	// Accepted counts blocks the DAG accepted (Submit returned nil).
	Accepted uint64
	// Rejected counts invalid blocks (rule violations, undecodable data) and
	// messages refused by the signature policy before validation.
	Rejected uint64
	// Ignored counts blocks ignored for other reasons than Duplicate and
	// Orphan: a timestamp too far ahead of our clock, or a local failure.
	Ignored uint64
	// Duplicate counts blocks the DAG already held.
	Duplicate uint64
	// Orphan counts blocks with unknown parents, left to the sync manager.
	Orphan uint64
	// Dropped counts messages lost to full queues: inbound before
	// validation (queue full, throttled), outbound towards a peer, and
	// deliveries our subscription was too slow to take.
	Dropped uint64
	// Published counts our own blocks published.
	Published uint64
	// Delivered counts blocks from peers delivered to our subscription
	// (accepted and forwarded).
	Delivered uint64
	// MeshPeers is the current size of our mesh on the topic.
	MeshPeers int
}

type state int

const (
	stateNew state = iota
	stateStarted
	stateClosed
)

// Service announces blocks on the network's GossipSub topic and validates
// the blocks peers announce. Its methods are safe for concurrent use.
type Service struct {
	cfg       Config
	opts      options
	log       *slog.Logger
	self      peer.ID
	topicName string
	tracer    *tracer

	mu     sync.Mutex
	state  state
	ps     *pubsub.PubSub
	topic  *pubsub.Topic
	sub    *pubsub.Subscription
	cancel context.CancelFunc // ends the router
	wg     sync.WaitGroup     // the read loop

	accepted, rejected, ignored, duplicate, orphan atomic.Uint64
	dropped, published, delivered                  atomic.Uint64
}

// New returns a service for cfg. It builds and starts nothing; Start does.
func New(cfg Config, opts ...Option) (*Service, error) {
	if cfg.Host == nil || cfg.Params == nil || cfg.DAG == nil || cfg.Submit == nil {
		return nil, errors.New("gossip: Config.Host, Params, DAG and Submit are required")
	}
	topic := TopicName(cfg.Params.Name)
	if cfg.Params.Name == "" || len(topic) > maxTopicLen {
		return nil, fmt.Errorf("gossip: invalid network name %q", cfg.Params.Name)
	}
	o := options{now: time.Now, appScore: func(peer.ID) float64 { return 0 }}
	for _, opt := range opts {
		opt(&o)
	}
	if o.now == nil || o.appScore == nil {
		return nil, errors.New("gossip: nil function in options")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{
		cfg:       cfg,
		opts:      o,
		log:       cfg.Logger.With("topic", topic),
		self:      cfg.Host.ID(),
		topicName: topic,
	}
	s.tracer = newTracer(s)
	return s, nil
}

// pubsubOptions are the router options; see params.go for the values and
// their reasons.
func (s *Service) pubsubOptions() []pubsub.Option {
	return []pubsub.Option{
		pubsub.WithGossipSubParams(gossipSubParams()),
		// The message id is the block hash, so a block is validated once
		// whoever sends it.
		pubsub.WithMessageIdFn(messageID),
		// No per-message signatures or author: the proof of work is the
		// block's credential, and the forwarding peer is what we score.
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithPeerScore(peerScoreParams(s.topicName, s.opts.appScore), peerScoreThresholds()),
		// Our own blocks go to every topic peer above publishThreshold, not
		// only to the mesh: lowest latency for a fresh block, and no single
		// full queue can lose it (see Publish).
		pubsub.WithFloodPublish(true),
		// Peer exchange is for bootstrap nodes; discovery finds our peers.
		pubsub.WithPeerExchange(false),
		pubsub.WithPeerOutboundQueueSize(peerOutboundQueueSize),
		pubsub.WithValidateQueueSize(validateQueueSize),
		pubsub.WithValidateThrottle(maxConcurrentValidations),
		pubsub.WithMaxMessageSize(maxRPCSize),
		pubsub.WithSeenMessagesTTL(seenMessagesTTL),
		pubsub.WithRawTracer(s.tracer),
		// The library's own logs go through the node's logger, from Info
		// up: at Debug it traces every RPC.
		pubsub.WithLogger(slog.New(atLeast{s.cfg.Logger.Handler(), slog.LevelInfo}).With("system", "pubsub")),
	}
}

// Start creates the GossipSub router on the host, registers the block
// validator, joins and subscribes to the topic and starts the read loop.
func (s *Service) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateStarted:
		return errors.New("gossip: already started")
	case stateClosed:
		return ErrClosed
	}
	// The router lives until Close, not for the duration of a call.
	ctx, cancel := context.WithCancel(context.Background())
	fail := func(what string, err error) error {
		cancel()
		s.removeHandlers()
		return fmt.Errorf("gossip: %s: %w", what, err)
	}
	ps, err := pubsub.NewGossipSub(ctx, s.cfg.Host, s.pubsubOptions()...)
	if err != nil {
		return fail("start router", err)
	}
	err = ps.RegisterTopicValidator(s.topicName, pubsub.ValidatorEx(s.validate),
		pubsub.WithValidatorTimeout(validatorTimeout),
		pubsub.WithValidatorConcurrency(maxConcurrentValidations))
	if err != nil {
		return fail("register validator", err)
	}
	topic, err := ps.Join(s.topicName)
	if err != nil {
		return fail("join topic", err)
	}
	sub, err := topic.Subscribe(pubsub.WithBufferSize(subscriptionBuffer))
	if err != nil {
		return fail("subscribe", err)
	}
	s.ps, s.topic, s.sub, s.cancel = ps, topic, sub, cancel
	s.state = stateStarted
	s.wg.Go(func() { s.readLoop(ctx, sub) })
	s.log.Info("gossip started", "network", s.cfg.Params.Name)
	return nil
}

// Close leaves the topic, stops the router and waits for the read loop. It
// is idempotent. The router's own goroutines end with its context; the
// library offers no way to wait for them.
func (s *Service) Close() {
	s.mu.Lock()
	prev := s.state
	s.state = stateClosed
	sub, topic, cancel := s.sub, s.topic, s.cancel
	s.mu.Unlock()
	if prev != stateStarted {
		return
	}
	// Cancel is handled by the router's event loop before Close's request,
	// so the topic has no subscription left when it is closed.
	sub.Cancel()
	if err := topic.Close(); err != nil {
		s.log.Debug("topic close failed", "err", err)
	}
	cancel()
	s.wg.Wait()
	s.removeHandlers()
	s.log.Info("gossip stopped")
}

// removeHandlers unregisters the router's stream handlers, which the
// library leaves on the host after its context ends.
func (s *Service) removeHandlers() {
	for _, id := range pubsub.GossipSubDefaultProtocols {
		s.cfg.Host.RemoveStreamHandler(id)
	}
}

// readLoop takes the blocks delivered to our subscription. Acceptance
// already happened in the validator, so it only counts and logs them.
func (s *Service) readLoop(ctx context.Context, sub *pubsub.Subscription) {
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return // canceled or closed
		}
		if msg.ReceivedFrom == s.self {
			continue // our own Publish
		}
		s.delivered.Add(1)
		s.log.Debug("block delivered", "peer", msg.ReceivedFrom, "hash", hashOfID(msg.ID))
	}
}

// Publish announces one of our own blocks, which the DAG has already
// accepted, to the network. It returns once the block is handed to the
// router (it is then sent to every topic peer), or an error: ErrNotStarted,
// ErrClosed, or the router's.
//
// A published block is not lost to a full queue: go-libp2p-pubsub v0.17.0
// takes a local publish on a path that has no dropping queue until the
// per-peer send:
//   - Topic.Publish (topic.go:247) calls Topic.validate (topic.go:264),
//     which calls validation.ValidateLocal (validation.go:234) in our
//     goroutine. That runs validation.validate with local=true, and local
//     makes every validator run inline (validation.go:339), so the message
//     never enters the async validation queue (validation.Push,
//     validation.go:250, the one that drops when full, :254-259) nor the
//     throttle (:368-377). Our validator accepts our own messages at once.
//   - The message is then handed over with validation.sendMsgBlocking
//     (validation.go:296), which blocks until the router's event loop takes
//     it (or the router stops); it does not drop.
//   - The event loop publishes it (PubSub.publishMessage, pubsub.go:1686;
//     GossipSubRouter.Publish, gossipsub.go:1346), and sendRPC/doSendRPC
//     (gossipsub.go:1536/1605) push it into each peer's outbound queue
//     without blocking: a full queue drops the RPC for that one peer
//     (DropRPC, counted in Stats.Dropped). That is the only drop point; it
//     is covered by a 256-RPC queue, by flood publishing to every topic peer
//     rather than only the mesh (WithFloodPublish, gossipsub.go:1367), by
//     the message cache, whose IHAVE gossip lets a peer that missed the
//     block ask for it, and finally by the sync protocol.
//
// ctx bounds only the hand-over to the router's event loop
// (topic.go:359-367); the library does not pass it further.
func (s *Service) Publish(ctx context.Context, b *dag.Block) error {
	s.mu.Lock()
	st, topic := s.state, s.topic
	s.mu.Unlock()
	switch st {
	case stateNew:
		return ErrNotStarted
	case stateClosed:
		return ErrClosed
	}
	hash := b.Hash()
	if err := topic.Publish(ctx, b.Encode()); err != nil {
		return fmt.Errorf("gossip: publish block %s: %w", hash, err)
	}
	s.published.Add(1)
	s.log.Debug("block published", "hash", hash)
	return nil
}

// Topic returns the block topic name.
func (s *Service) Topic() string { return s.topicName }

// MeshPeers returns our current mesh peers on the topic, sorted.
func (s *Service) MeshPeers() []peer.ID { return s.tracer.meshPeers() }

// TopicPeers returns the connected peers subscribed to the topic (mesh or
// not), or nil when the service is not running.
func (s *Service) TopicPeers() []peer.ID {
	s.mu.Lock()
	st, ps := s.state, s.ps
	s.mu.Unlock()
	if st != stateStarted {
		return nil
	}
	return ps.ListPeers(s.topicName)
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	return Stats{
		Topic:     s.topicName,
		Accepted:  s.accepted.Load(),
		Rejected:  s.rejected.Load(),
		Ignored:   s.ignored.Load(),
		Duplicate: s.duplicate.Load(),
		Orphan:    s.orphan.Load(),
		Dropped:   s.dropped.Load(),
		Published: s.published.Load(),
		Delivered: s.delivered.Load(),
		MeshPeers: s.tracer.meshSize(),
	}
}
