package host

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// Default listen ports, one per network, so that nodes of several networks
// can run on one machine. Each is used for both TCP and QUIC (UDP).
const (
	MainnetPort = 9700
	TestnetPort = 9701
	SimnetPort  = 9702
	RegtestPort = 9703
)

// Connection manager defaults.
//
// A blockDAG node keeps a GossipSub mesh of D=8 (up to Dhi=12) peers per
// topic plus about as many non-mesh peers for gossip emission (Dlazy) and
// fanout, a few sync peers, and short-lived Kademlia query connections. Public
// nodes must also leave room for the home nodes that can only dial out.
// DefaultLowWater keeps four times Dhi after a trim, so trimming never breaks
// the mesh; DefaultHighWater is twice that, so trims are rare and each one
// closes a batch of connections. Both sit between Spacemesh (40/100) and Lotus
// (150/180): home nodes are small and their routers' NAT tables are too.
// DefaultGracePeriod protects a new connection long enough for identify, the
// sync status handshake, a mesh GRAFT (1 s heartbeats) and a DHT query to
// finish, as Spacemesh does (Lotus: 20 s).
const (
	DefaultLowWater    = 48
	DefaultHighWater   = 96
	DefaultGracePeriod = 30 * time.Second
)

// DefaultVersion is the version put in the identify agent string
// ("dagnode/<version>") when Config.Version is empty.
const DefaultVersion = "dev"

// AgentPrefix starts the identify agent version of every dagnode host.
const AgentPrefix = "dagnode/"

// Config is what New turns into libp2p options. Network and PrivKey are
// required; the zero value of every other field is a working default.
type Config struct {
	// Network is "mainnet", "testnet", "simnet" or "regtest".
	Network string
	// PrivKey is the node's identity key.
	PrivKey crypto.PrivKey
	// ListenAddrs are multiaddrs to listen on; port 0 lets the OS choose.
	// Empty: TCP and QUIC-v1 on 0.0.0.0 and :: on DefaultPort(Network).
	ListenAddrs []string
	// LowWater and HighWater are the connection manager's watermarks: above
	// HighWater connections it trims down to LowWater. 0 means
	// DefaultLowWater / DefaultHighWater. LowWater must not exceed HighWater.
	LowWater, HighWater int
	// GracePeriod is how long a new connection is safe from trimming.
	// 0 means DefaultGracePeriod.
	GracePeriod time.Duration
	// DisableNATService turns off the AutoNAT service (v1 and v2) that the
	// node offers other peers while it is itself publicly reachable (or does
	// not know yet): dial-backs that tell home nodes whether they are
	// reachable, rate limited to AutoNATGlobalLimit / AutoNATPeerLimit per
	// AutoNATLimitInterval. libp2p stops serving when it finds itself private.
	DisableNATService bool
	// DisableRelayService turns off the circuit relay v2 service that the
	// node runs while it is publicly reachable, within RelayResources.
	DisableRelayService bool
	// ForceReachability, "public" or "private", skips AutoNAT's verdict: a
	// server known to be public serves relay and AutoNAT at once; a node known
	// to be private reserves relay slots at once. Empty: learn it.
	ForceReachability string
	// StaticRelays are relays AutoRelay reserves slots on when the node is not
	// publicly reachable, tried before connected peers that offer the relay
	// service: one AddrInfo per relay peer.
	StaticRelays []peer.AddrInfo
	// DisableNAT turns off UPnP / NAT-PMP port mapping (tests).
	DisableNAT bool
	// ExternalAddrs are addresses the operator knows the node is reachable
	// at (a port forward, a load balancer): announced in identify, and so
	// in the DHT and to every peer, beside the addresses libp2p finds. Each
	// starts with /ip4, /ip6 or /dns*, has a TCP or UDP port and no /p2p.
	ExternalAddrs []string
	// Version goes into the identify agent version "dagnode/<Version>".
	// Empty means DefaultVersion.
	Version string
	// Logger receives the host's logs. Nil means slog.Default().
	Logger *slog.Logger
	// PrometheusRegisterer receives libp2p's metrics. Nil disables them.
	PrometheusRegisterer prometheus.Registerer
}

// DefaultPort returns the network's default TCP and UDP port, or 0 for an
// unknown network.
func DefaultPort(network string) int {
	switch network {
	case "mainnet":
		return MainnetPort
	case "testnet":
		return TestnetPort
	case "simnet":
		return SimnetPort
	case "regtest":
		return RegtestPort
	}
	return 0
}

// settings is a validated Config with its defaults applied.
type settings struct {
	Config
	listen   []multiaddr.Multiaddr
	external []multiaddr.Multiaddr
	agent    string
}

func (cfg Config) validate() (*settings, error) {
	s := &settings{Config: cfg}
	listen, err := ListenAddrs(cfg.Network, cfg.ListenAddrs)
	if err != nil {
		return nil, err
	}
	s.listen = listen
	if cfg.PrivKey == nil {
		return nil, errors.New("host: no private key")
	}
	for _, a := range cfg.ExternalAddrs {
		m, err := ParseExternalAddr(a)
		if err != nil {
			return nil, err
		}
		s.external = append(s.external, m)
	}
	if cfg.LowWater < 0 || cfg.HighWater < 0 || cfg.GracePeriod < 0 {
		return nil, fmt.Errorf("host: negative connection manager setting (low %d, high %d, grace %s)",
			cfg.LowWater, cfg.HighWater, cfg.GracePeriod)
	}
	if s.LowWater == 0 {
		s.LowWater = DefaultLowWater
	}
	if s.HighWater == 0 {
		s.HighWater = DefaultHighWater
	}
	if s.GracePeriod == 0 {
		s.GracePeriod = DefaultGracePeriod
	}
	if s.LowWater > s.HighWater {
		return nil, fmt.Errorf("host: low water %d above high water %d (set both)", s.LowWater, s.HighWater)
	}
	seen := make(map[peer.ID]bool, len(cfg.StaticRelays))
	for i, r := range cfg.StaticRelays {
		switch {
		case r.ID == "":
			return nil, fmt.Errorf("host: static relay %d has no peer ID", i)
		case len(r.Addrs) == 0:
			return nil, fmt.Errorf("host: static relay %s has no address", r.ID)
		case seen[r.ID]:
			return nil, fmt.Errorf("host: static relay %s given twice (one AddrInfo per peer)", r.ID)
		}
		seen[r.ID] = true
	}
	switch s.ForceReachability {
	case "", "public", "private":
	default:
		return nil, fmt.Errorf("host: reachability %q (want public, private or empty)", s.ForceReachability)
	}
	if s.Version == "" {
		s.Version = DefaultVersion
	}
	s.agent = AgentPrefix + s.Version
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	return s, nil
}

// protocolVersion is the identify protocol version: the network's protocol
// prefix, so a peer of another network is visible at a glance.
func protocolVersion(network string) string { return "/dagnode/" + network }

// New validates cfg and builds a libp2p host listening on its addresses. The
// tracker, if not nil, becomes the connection gater (bans) and the bandwidth
// reporter; a tracker serves one host only. New starts no goroutines of ours;
// call tr.Start(h) next. The caller closes the host.
func New(cfg Config, tr *Tracker) (host.Host, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(s.LowWater, s.HighWater, connmgr.WithGracePeriod(s.GracePeriod))
	if err != nil {
		return nil, fmt.Errorf("host: connection manager: %w", err)
	}
	rm, err := newResourceManager(s.HighWater, s.PrometheusRegisterer != nil, s.Logger)
	if err != nil {
		cm.Close()
		return nil, fmt.Errorf("host: resource manager: %w", err)
	}
	relays := &relaySource{static: s.StaticRelays}
	opts := []libp2p.Option{
		libp2p.Identity(s.PrivKey),
		libp2p.ListenAddrs(s.listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(tls.ID, tls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		libp2p.UserAgent(s.agent),
		libp2p.ProtocolVersion(protocolVersion(s.Network)),
		libp2p.EnableRelay(),
		libp2p.EnableAutoNATv2(),
		libp2p.EnableAutoRelayWithPeerSource(relays.source,
			autorelay.WithMinCandidates(1),
			autorelay.WithBootDelay(AutoRelayBootDelay),
			autorelay.WithBackoff(AutoRelayBackoff),
			autorelay.WithNumRelays(AutoRelayNumRelays)),
	}
	if tr != nil {
		opts = append(opts, libp2p.EnableHolePunching(holePunchTracer(tr, s.PrometheusRegisterer)))
	} else {
		opts = append(opts, libp2p.EnableHolePunching())
	}
	if !s.DisableNAT {
		opts = append(opts, libp2p.NATPortMap())
	}
	if !s.DisableNATService {
		opts = append(opts,
			libp2p.EnableNATService(),
			libp2p.AutoNATServiceRateLimit(AutoNATGlobalLimit, AutoNATPeerLimit, AutoNATLimitInterval),
			// A fresh public node would otherwise refuse QUIC and IPv6
			// dial-backs until it had made 5 successful dials of each kind.
			libp2p.UDPBlackHoleSuccessCounter(nil),
			libp2p.IPv6BlackHoleSuccessCounter(nil))
	}
	if !s.DisableRelayService {
		opts = append(opts, libp2p.EnableRelayService(relayv2.WithResources(RelayResources())))
	}
	switch s.ForceReachability {
	case "public":
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case "private":
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if len(s.external) > 0 {
		external := s.external
		opts = append(opts, libp2p.AddrsFactory(func(addrs []multiaddr.Multiaddr) []multiaddr.Multiaddr {
			out := slices.Clone(addrs)
			for _, a := range external {
				if !slices.ContainsFunc(out, a.Equal) {
					out = append(out, a)
				}
			}
			return out
		}))
	}
	if s.PrometheusRegisterer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(s.PrometheusRegisterer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	if tr != nil {
		if !tr.attached.CompareAndSwap(false, true) {
			cm.Close()
			rm.Close()
			return nil, errors.New("host: tracker already serves another host")
		}
		if id, err := peer.IDFromPrivateKey(s.PrivKey); err == nil {
			tr.mu.Lock()
			tr.self = id
			tr.mu.Unlock()
		}
		opts = append(opts, libp2p.ConnectionGater(tr), libp2p.BandwidthReporter(tr.bw))
	}
	h, err := libp2p.New(opts...)
	if err == nil {
		relays.setHost(h)
	}
	if err != nil {
		// libp2p closes them on some failure paths; both Close methods are idempotent.
		cm.Close()
		rm.Close()
		if tr != nil {
			tr.attached.Store(false)
		}
		return nil, fmt.Errorf("host: %w", err)
	}
	s.Logger.Info("listening", "addrs", FullAddrs(h), "peer", h.ID(), "network", s.Network, "agent", s.agent)
	return h, nil
}

// ParseExternalAddr parses an operator's external address (--externaladdr):
// a multiaddr starting with /ip4, /ip6, /dns, /dns4 or /dns6, with a TCP or
// UDP port other than 0, and without /p2p or /p2p-circuit (the node's own
// ID is added by whoever dials it).
func ParseExternalAddr(s string) (multiaddr.Multiaddr, error) {
	m, err := multiaddr.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("host: external address %q: %w", s, err)
	}
	switch m[0].Protocol().Code {
	case multiaddr.P_IP4, multiaddr.P_IP6, multiaddr.P_DNS, multiaddr.P_DNS4, multiaddr.P_DNS6:
	default:
		return nil, fmt.Errorf("host: external address %q: want /ip4, /ip6 or /dns* first", s)
	}
	port := ""
	for _, c := range m {
		switch c.Protocol().Code {
		case multiaddr.P_P2P, multiaddr.P_CIRCUIT:
			return nil, fmt.Errorf("host: external address %q: leave out /p2p and /p2p-circuit", s)
		case multiaddr.P_TCP, multiaddr.P_UDP:
			if port == "" {
				port = c.Value()
			}
		}
	}
	if port == "" || port == "0" {
		return nil, fmt.Errorf("host: external address %q: want a TCP or UDP port other than 0", s)
	}
	return m, nil
}

// FullAddrs returns the host's addresses with /p2p/<id> appended: what
// another node is given to dial this one.
func FullAddrs(h host.Host) []multiaddr.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	if err != nil { // only for an empty peer ID, which a host never has
		return nil
	}
	return addrs
}
