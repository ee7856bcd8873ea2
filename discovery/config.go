package discovery

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Defaults of the tuning options and limits. Each is the value used when the
// matching option is not given.
const (
	// DefaultTargetPeers is the number of connected peers the service keeps
	// (Config.TargetPeers = 0). It is btcd's and soterd's default
	// TargetOutbound (8): enough for a GossipSub mesh (D = 6) with margin for
	// churn, while the connection manager's watermarks, not this loop, bound
	// how many peers (inbound included) a node holds.
	DefaultTargetPeers = 8

	// DefaultDiscoveryInterval is the period of the rendezvous query while
	// fewer than TargetPeers are connected, and the longest sleep of the dial
	// loop. A DHT lookup per minute is cheap and fills a node within minutes;
	// rounds that find nobody back off from the backoff minimum up to it.
	DefaultDiscoveryInterval = time.Minute

	// DefaultBackoffMin and DefaultBackoffMax bound the per-peer redial delay
	// (exponential, full jitter): btcd connmgr's retryDuration (5 s) and
	// maxRetryDuration (5 min).
	DefaultBackoffMin = 5 * time.Second
	DefaultBackoffMax = 5 * time.Minute

	// DefaultDialTimeout bounds one dial, including the identify exchange
	// that host.Connect waits for.
	DefaultDialTimeout = 15 * time.Second

	// DefaultRoutingTimeout bounds every DHT call (bootstrap, advertise, find
	// peers): the same bound go-libp2p's RoutingDiscovery puts on a provide.
	DefaultRoutingTimeout = time.Minute

	// DefaultMaxConcurrentDials bounds the dials in flight: one round can
	// dial a whole DefaultTargetPeers at once, never more.
	DefaultMaxConcurrentDials = 8

	// DefaultMaxStoredPeers bounds the persisted peer addresses; the peer
	// seen longest ago is evicted first. 256 is 32 times the target: enough
	// for a restart to find live peers after weeks away, small enough to load
	// at every start.
	DefaultMaxStoredPeers = 256

	// MaxAddrsPerPeer bounds the addresses stored for one peer; further
	// addresses are dropped (a peer may announce many).
	MaxAddrsPerPeer = 16

	// maxReadvertise bounds the wait between two advertisements whatever TTL
	// the router returns (go-libp2p's RoutingDiscovery TTL is 3 h).
	maxReadvertise = 3 * time.Hour

	// storeTimeout bounds one datastore call.
	storeTimeout = 10 * time.Second

	// mdnsQueueSize bounds the peers found by mDNS waiting to be dialed; more
	// are dropped (they are found again at the next mDNS query).
	mdnsQueueSize = 64

	// dhtBootstrapKnown bounds the stored peers handed to the DHT as
	// fallback bootstrap peers.
	dhtBootstrapKnown = 32

	// eventBufSize is the host event subscription's buffer: the event bus
	// blocks emitters on a full subscriber, and the event loop writes to the
	// store, so give it slack.
	eventBufSize = 256

	// maxBackoffEntries bounds the per-peer backoff table.
	maxBackoffEntries = 4096

	// routingWaitMax bounds the wait for a DHT peer that has identified to
	// enter the routing table: kad-dht first checks it with a FIND_NODE
	// (its lookup check, bounded by a 10 s timeout of its own).
	routingWaitMax = 15 * time.Second

	// routingPoll is how often the routing table's size is read while a
	// DHT peer is expected in it.
	routingPoll = 25 * time.Millisecond
)

// ProtectTag is the tag passed to Config.Protect for Connect and Persistent
// peers.
const ProtectTag = "discovery-persistent"

// Config holds the service's required dependencies and the operator's peer
// lists.
type Config struct {
	// Host is the libp2p host to discover peers for and dial from. Required.
	Host host.Host
	// Network is the network name ("mainnet", "testnet", "simnet",
	// "regtest"): lower-case letters and digits. Required. It is embedded in
	// the DHT protocol prefix, the rendezvous namespace and the mDNS service
	// name, so nodes of different networks never find each other.
	Network string
	// Store keeps the known peer addresses under StorePrefix. Required.
	Store datastore.Batching

	// Bootstrap peers (--bootstrap) are dialed at start and redialed with
	// backoff while fewer than TargetPeers are connected; they also seed the
	// DHT. Ignored when Connect is set.
	Bootstrap []peer.AddrInfo
	// Connect peers (--connect) are the ONLY peers dialed when non-empty: no
	// DHT, no rendezvous, no mDNS, no stored peers, no bootstrap peers. They
	// are redialed with backoff whenever lost. Inbound connections are still
	// accepted. Cannot be combined with Persistent (as in btcd).
	Connect []peer.AddrInfo
	// Persistent peers (--addpeer) are redialed with backoff whenever lost,
	// in addition to everything discovery finds.
	Persistent []peer.AddrInfo

	// DHT runs the Kademlia DHT (protocol prefix /dagnode/<network>) and the
	// rendezvous on it.
	DHT bool
	// MDNS runs LAN discovery with the service name dagnode-<network>.
	MDNS bool
	// TargetPeers is how many connected peers the service tries to keep;
	// DefaultTargetPeers if zero.
	TargetPeers int

	// Protect, if not nil, is called once at Start for every Connect and
	// Persistent peer with ProtectTag, so the connection manager never trims
	// them.
	Protect func(p peer.ID, tag string)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// DHTMode selects whether the DHT answers queries.
type DHTMode int

// DHT modes.
const (
	// DHTModeAuto answers queries unless the host has learned that it is
	// private: a server while its reachability is unknown or public, a
	// client once private (kad-dht's ModeAutoServer, following the host's
	// EvtLocalReachabilityChanged). kad-dht's own ModeAuto is a client until
	// AutoNAT says public, which on loopback, on a LAN and for the first
	// node of a network never happens: nobody would serve, and nodes would
	// never find each other. See the package documentation.
	DHTModeAuto DHTMode = iota
	// DHTModeServer always answers queries.
	DHTModeServer
	// DHTModeClient never answers queries.
	DHTModeClient
)

// ParseDHTMode returns the mode named "auto", "server" or "client".
func ParseDHTMode(name string) (DHTMode, error) {
	for _, m := range []DHTMode{DHTModeAuto, DHTModeServer, DHTModeClient} {
		if m.String() == name {
			return m, nil
		}
	}
	return 0, fmt.Errorf("discovery: DHT mode %q: want auto, server or client", name)
}

// String returns the mode's name.
func (m DHTMode) String() string {
	switch m {
	case DHTModeAuto:
		return "auto"
	case DHTModeServer:
		return "server"
	case DHTModeClient:
		return "client"
	}
	return fmt.Sprintf("DHTMode(%d)", int(m))
}

type options struct {
	interval       time.Duration
	backoffMin     time.Duration
	backoffMax     time.Duration
	dhtMode        DHTMode
	dialTimeout    time.Duration
	routingTimeout time.Duration
	maxDials       int
	maxStored      int
}

func defaultOptions() options {
	return options{
		interval:       DefaultDiscoveryInterval,
		backoffMin:     DefaultBackoffMin,
		backoffMax:     DefaultBackoffMax,
		dhtMode:        DHTModeAuto,
		dialTimeout:    DefaultDialTimeout,
		routingTimeout: DefaultRoutingTimeout,
		maxDials:       DefaultMaxConcurrentDials,
		maxStored:      DefaultMaxStoredPeers,
	}
}

// Option tunes the service; every option has a documented default.
type Option func(*options) error

// WithDiscoveryInterval sets the rendezvous period and the longest sleep of
// the dial loop (default DefaultDiscoveryInterval).
func WithDiscoveryInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("discovery: interval %v must be positive", d)
		}
		o.interval = d
		return nil
	}
}

// WithBackoff sets the bounds of the per-peer redial delay, which doubles
// from min to max with full jitter (default DefaultBackoffMin,
// DefaultBackoffMax).
func WithBackoff(minDelay, maxDelay time.Duration) Option {
	return func(o *options) error {
		if minDelay <= 0 || maxDelay < minDelay {
			return fmt.Errorf("discovery: backoff bounds %v..%v: need 0 < min <= max", minDelay, maxDelay)
		}
		o.backoffMin, o.backoffMax = minDelay, maxDelay
		return nil
	}
}

// WithDHTMode sets the DHT mode (default DHTModeAuto).
func WithDHTMode(m DHTMode) Option {
	return func(o *options) error {
		if m < DHTModeAuto || m > DHTModeClient {
			return fmt.Errorf("discovery: unknown DHT mode %d", int(m))
		}
		o.dhtMode = m
		return nil
	}
}

// WithDialTimeout bounds one dial (default DefaultDialTimeout).
func WithDialTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("discovery: dial timeout %v must be positive", d)
		}
		o.dialTimeout = d
		return nil
	}
}

// WithRoutingTimeout bounds every DHT call (default DefaultRoutingTimeout).
func WithRoutingTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("discovery: routing timeout %v must be positive", d)
		}
		o.routingTimeout = d
		return nil
	}
}

// WithMaxConcurrentDials bounds the dials in flight (default
// DefaultMaxConcurrentDials).
func WithMaxConcurrentDials(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("discovery: max concurrent dials %d must be positive", n)
		}
		o.maxDials = n
		return nil
	}
}

// WithMaxStoredPeers bounds the persisted peer addresses (default
// DefaultMaxStoredPeers).
func WithMaxStoredPeers(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("discovery: max stored peers %d must be positive", n)
		}
		o.maxStored = n
		return nil
	}
}

// validNetwork reports whether name is usable inside protocol IDs, datastore
// keys and DNS labels.
func validNetwork(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// checkPeers validates an operator peer list and merges duplicate IDs.
func checkPeers(flag string, self peer.ID, infos []peer.AddrInfo) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	index := make(map[peer.ID]int, len(infos))
	for _, ai := range infos {
		if err := ai.ID.Validate(); err != nil {
			return nil, fmt.Errorf("discovery: %s peer: %w", flag, err)
		}
		if ai.ID == self {
			return nil, fmt.Errorf("discovery: %s peer %s is this node", flag, ai.ID)
		}
		if len(ai.Addrs) == 0 {
			return nil, fmt.Errorf("discovery: %s peer %s has no address", flag, ai.ID)
		}
		if i, ok := index[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		index[ai.ID] = len(out)
		out = append(out, peer.AddrInfo{ID: ai.ID, Addrs: append([]ma.Multiaddr(nil), ai.Addrs...)})
	}
	return out, nil
}

func (c *Config) validate() error {
	if c.Host == nil {
		return errors.New("discovery: Config.Host is required")
	}
	if c.Store == nil {
		return errors.New("discovery: Config.Store is required")
	}
	if !validNetwork(c.Network) {
		return fmt.Errorf("discovery: Config.Network %q: need 1 to 32 lower-case letters or digits", c.Network)
	}
	if c.TargetPeers < 0 {
		return fmt.Errorf("discovery: Config.TargetPeers %d is negative", c.TargetPeers)
	}
	if len(c.Connect) > 0 && len(c.Persistent) > 0 {
		return errors.New("discovery: Connect and Persistent peers cannot both be set")
	}
	return nil
}
