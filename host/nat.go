package host

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"
)

// autonatConfidenceMetric is the gauge in which libp2p's AutoNAT (v1) keeps
// the confidence of its reachability verdict (0 to 3): the number of probes
// that agreed since the verdict last flipped. It is only exported through
// Prometheus, so NATMonitor reads it back from the registry.
const autonatConfidenceMetric = "libp2p_autonat_reachability_status_confidence"

// maxObservations bounds the identify observations kept, one per peer;
// observationTTL is how long one counts.
const (
	maxObservations = 64
	observationTTL  = 30 * time.Minute
)

// observation is the address one peer told us it sees us at.
type observation struct {
	addr multiaddr.Multiaddr
	at   time.Time
}

// NATStatus is a snapshot of what the node knows about its own reachability.
type NATStatus struct {
	// Reachability is "public", "private" or "unknown": the value every part
	// of the host acts on (relay service, AutoRelay, the DHT mode). It is
	// public as soon as AutoNAT v2 confirms one of our addresses, else
	// AutoNAT v1's verdict (see Basis), or forced by configuration.
	Reachability string
	// Basis says where Reachability comes from: "forced", "autonat-v2" (an
	// address confirmed reachable by dial-backs), "autonat-v1", or "none"
	// while nothing is known.
	Basis string
	// Since is when Reachability last changed (the monitor's start at first).
	Since time.Time
	// Changes counts reachability changes since start.
	Changes int
	// Reachable, Unreachable and UnknownAddrs are this node's public
	// addresses as AutoNAT v2 has classified them, one dial-back per
	// address.
	Reachable, Unreachable, UnknownAddrs []multiaddr.Multiaddr
	// ObservedAddrs are the public addresses peers told us they see us at
	// (identify), most observers first, then port mappings. Behind an
	// endpoint-independent NAT every observer sees the same address, which
	// is what hole punching advertises; behind a symmetric NAT each sees
	// another port.
	ObservedAddrs []multiaddr.Multiaddr
	// RelayAddrs are our /p2p-circuit addresses, one per relay reservation
	// and transport.
	RelayAddrs []multiaddr.Multiaddr
	// NATTypeTCP and NATTypeUDP are libp2p's guess of our NAT's mapping
	// ("endpoint-independent", "endpoint-dependent" or "unknown"); it needs
	// observations from several peers.
	NATTypeTCP, NATTypeUDP string
}

// NATMonitor follows the host's reachability, address and NAT events,
// keeps the latest of each for NATStatus, and logs changes at Info: they
// are the node's own state, not a peer's doing.
//
// It also decides the host's reachability. libp2p's AutoNAT v1 only
// probes through peers that list a public address, so the first public
// node of a network, whose peers are home nodes, never hears a verdict;
// AutoNAT v2 asks any peer to dial one of our addresses back, and its
// per-address verdicts arrive there too. The monitor combines both (see
// combineReachability) and, when the combination differs from what the
// event bus last said, emits EvtLocalReachabilityChanged itself, so the
// relay service, AutoRelay, the DHT mode and getnetworkinfo follow one
// value. With forced reachability it only watches.
type NATMonitor struct {
	log      *slog.Logger
	gatherer prometheus.Gatherer

	mu       sync.Mutex
	h        host.Host
	st       NATStatus
	observed map[peer.ID]observation // bounded by maxObservations
	mapped   []multiaddr.Multiaddr   // public host addresses that are not listen addresses
	sub      event.Subscription
	wg       sync.WaitGroup

	// The decider: fed by the event goroutine through pending fields and a
	// kick, so that emitting (which blocks while any subscriber, this
	// monitor included, is full) never stalls the goroutine draining our
	// own subscription.
	v1       autonat.AutoNAT // nil when reachability is forced or libp2p hides it
	emitter  event.Emitter
	kick     chan struct{}        // buffer 1
	quit     chan struct{}        // closed by Close
	busSeen  bool                 // an EvtLocalReachabilityChanged arrived since the decider last ran
	busLast  network.Reachability // its value
	lastWant network.Reachability // what the decider last decided
}

// NewNATMonitor returns a monitor. gatherer, if not nil, is the registry
// given to New as Config.PrometheusRegisterer, read for AutoNAT's confidence.
// Start it with the host.
func NewNATMonitor(log *slog.Logger, gatherer prometheus.Gatherer) *NATMonitor {
	if log == nil {
		log = slog.Default()
	}
	return &NATMonitor{log: log, gatherer: gatherer, kick: make(chan struct{}, 1), quit: make(chan struct{}),
		st: NATStatus{Reachability: "unknown", Basis: "none", NATTypeTCP: "unknown", NATTypeUDP: "unknown"}}
}

// combineReachability is the host's reachability from AutoNAT v1's verdict
// and the number of our addresses AutoNAT v2 confirmed reachable: public if
// either says so (one address other peers can dial makes a node a server;
// v2 tests each address through any peer, v1 only through peers with a
// public address), else v1's verdict. It returns the basis too.
func combineReachability(v1 network.Reachability, v2Reachable int) (network.Reachability, string) {
	switch {
	case v2Reachable > 0:
		return network.ReachabilityPublic, "autonat-v2"
	case v1 != network.ReachabilityUnknown:
		return v1, "autonat-v1"
	}
	return network.ReachabilityUnknown, "none"
}

// Start subscribes to h's events. It may be called once; Close stops it.
func (m *NATMonitor) Start(h host.Host) error {
	m.mu.Lock()
	if m.h != nil {
		m.mu.Unlock()
		return errors.New("host: NAT monitor already started")
	}
	m.h = h
	m.st.Since = time.Now()
	m.mu.Unlock()
	sub, err := h.EventBus().Subscribe([]any{
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtHostReachableAddrsChanged),
		new(event.EvtNATDeviceTypeChanged),
		new(event.EvtLocalAddressesUpdated),
		new(event.EvtPeerIdentificationCompleted),
	}, eventbus.Name("dagnode-nat"), eventbus.BufSize(32))
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.sub = sub
	m.mu.Unlock()
	m.refreshAddrs()
	if an, ok := h.(interface{ GetAutoNat() autonat.AutoNAT }); ok {
		if v1 := an.GetAutoNat(); v1 != nil {
			if _, static := v1.(*autonat.StaticAutoNAT); static {
				m.mu.Lock()
				m.st.Basis = "forced"
				m.mu.Unlock()
			} else if em, err := h.EventBus().Emitter(new(event.EvtLocalReachabilityChanged), eventbus.Stateful); err == nil {
				m.v1, m.emitter = v1, em
			} else {
				m.log.Warn("cannot emit reachability; following AutoNAT v1 only", "err", err)
			}
		}
	}
	m.wg.Go(func() {
		for ev := range sub.Out() {
			m.handle(ev)
		}
	})
	if m.emitter != nil {
		m.wg.Go(m.decideLoop)
	}
	return nil
}

// wake asks the decider to run, without blocking.
func (m *NATMonitor) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// decideLoop runs the decider on every kick until Close.
func (m *NATMonitor) decideLoop() {
	for {
		select {
		case <-m.quit:
			return
		case <-m.kick:
			m.decide()
		}
	}
}

// decide emits the combined reachability when it changed, or when the
// latest value on the bus (AutoNAT v1's own event) differs from it. Only
// called from the decider goroutine.
func (m *NATMonitor) decide() {
	m.mu.Lock()
	want, basis := combineReachability(m.v1.Status(), len(m.st.Reachable))
	busSeen, busLast := m.busSeen, m.busLast
	m.busSeen = false
	changed := want != m.lastWant
	m.lastWant = want
	m.st.Basis = basis
	m.mu.Unlock()
	if changed || (busSeen && busLast != want) {
		if err := m.emitter.Emit(event.EvtLocalReachabilityChanged{Reachability: want}); err != nil {
			m.log.Debug("cannot emit reachability", "err", err)
		}
	}
}

// Close stops following events. It is idempotent.
func (m *NATMonitor) Close() error {
	m.mu.Lock()
	sub := m.sub
	m.sub = nil
	m.mu.Unlock()
	if sub != nil {
		sub.Close()
		close(m.quit)
	}
	m.wg.Wait()
	if m.emitter != nil {
		m.emitter.Close()
	}
	return nil
}

// ReachabilityName is the lower-case name of r: "public", "private" or
// "unknown".
func ReachabilityName(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

func natTypeName(t network.NATDeviceType) string {
	switch t {
	case network.NATDeviceTypeEndpointIndependent:
		return "endpoint-independent"
	case network.NATDeviceTypeEndpointDependent:
		return "endpoint-dependent"
	}
	return "unknown"
}

// handle records one event. Only called from the monitor's goroutine.
func (m *NATMonitor) handle(ev any) {
	switch e := ev.(type) {
	case event.EvtLocalReachabilityChanged:
		r := ReachabilityName(e.Reachability)
		m.mu.Lock()
		prev := m.st.Reachability
		changed := r != prev
		if changed {
			m.st.Reachability, m.st.Since = r, time.Now()
			m.st.Changes++
		}
		m.busSeen, m.busLast = true, e.Reachability
		if m.v1 != nil {
			if want, basis := combineReachability(m.v1.Status(), len(m.st.Reachable)); want == e.Reachability {
				m.st.Basis = basis
			}
		}
		basis := m.st.Basis
		m.mu.Unlock()
		if changed {
			m.log.Info("reachability changed", "reachability", r, "was", prev, "basis", basis)
		}
		m.wake()
	case event.EvtHostReachableAddrsChanged:
		m.mu.Lock()
		m.st.Reachable = slices.Clone(e.Reachable)
		m.st.Unreachable = slices.Clone(e.Unreachable)
		m.st.UnknownAddrs = slices.Clone(e.Unknown)
		m.mu.Unlock()
		m.log.Info("address reachability changed", "reachable", e.Reachable, "unreachable", e.Unreachable)
		m.wake()
	case event.EvtNATDeviceTypeChanged:
		name := natTypeName(e.NatDeviceType)
		m.mu.Lock()
		if e.TransportProtocol == network.NATTransportUDP {
			m.st.NATTypeUDP = name
		} else {
			m.st.NATTypeTCP = name
		}
		m.mu.Unlock()
		m.log.Info("NAT type changed", "transport", natTransportName(e.TransportProtocol), "type", name)
	case event.EvtLocalAddressesUpdated:
		m.refreshAddrs()
	case event.EvtPeerIdentificationCompleted:
		if e.ObservedAddr != nil && manet.IsPublicAddr(e.ObservedAddr) && !IsRelayAddr(e.ObservedAddr) {
			m.observe(e.Peer, e.ObservedAddr, time.Now())
		}
	}
}

func natTransportName(t network.NATTransportProtocol) string {
	if t == network.NATTransportUDP {
		return "udp"
	}
	return "tcp"
}

// observe records that p sees us at a.
func (m *NATMonitor) observe(p peer.ID, a multiaddr.Multiaddr, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.observed == nil {
		m.observed = make(map[peer.ID]observation)
	}
	if _, ok := m.observed[p]; !ok && len(m.observed) >= maxObservations {
		oldest := peer.ID("")
		for q, o := range m.observed {
			if oldest == "" || o.at.Before(m.observed[oldest].at) {
				oldest = q
			}
		}
		delete(m.observed, oldest)
	}
	m.observed[p] = observation{addr: a, at: now}
}

// observedLocked returns the distinct observed addresses younger than
// observationTTL, most observers first. Called with m.mu held.
func (m *NATMonitor) observedLocked(now time.Time) []multiaddr.Multiaddr {
	count := map[string]int{}
	addrs := map[string]multiaddr.Multiaddr{}
	for _, o := range m.observed {
		if now.Sub(o.at) > observationTTL {
			continue
		}
		k := string(o.addr.Bytes())
		count[k]++
		addrs[k] = o.addr
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := count[b] - count[a]; c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	out := make([]multiaddr.Multiaddr, 0, len(keys))
	for _, k := range keys {
		out = append(out, addrs[k])
	}
	return out
}

// refreshAddrs takes the relay and mapped addresses from the host's
// advertised addresses and logs a change of relay addresses. libp2p emits
// EvtLocalAddressesUpdated whenever those change, so this runs on that
// event only.
func (m *NATMonitor) refreshAddrs() {
	m.mu.Lock()
	h := m.h
	m.mu.Unlock()
	if h == nil {
		return
	}
	var mapped, relays []multiaddr.Multiaddr
	listen := h.Network().ListenAddresses()
	for _, a := range h.Addrs() {
		switch {
		case IsRelayAddr(a):
			relays = append(relays, a)
		case manet.IsPublicAddr(a) && !slices.ContainsFunc(listen, a.Equal):
			mapped = append(mapped, a)
		}
	}
	m.mu.Lock()
	relayChanged := !slices.EqualFunc(relays, m.st.RelayAddrs, multiaddr.Multiaddr.Equal)
	m.st.RelayAddrs, m.mapped = relays, mapped
	m.mu.Unlock()
	if relayChanged {
		m.log.Info("relay addresses changed", "relay_addrs", relays)
	}
}

// Status returns the latest snapshot.
func (m *NATMonitor) Status() NATStatus {
	m.mu.Lock()
	st := m.st
	st.ObservedAddrs = m.observedLocked(time.Now()) // observations expire
	for _, a := range m.mapped {
		if !slices.ContainsFunc(st.ObservedAddrs, a.Equal) {
			st.ObservedAddrs = append(st.ObservedAddrs, a)
		}
	}
	st.Reachable = slices.Clone(st.Reachable)
	st.Unreachable = slices.Clone(st.Unreachable)
	st.UnknownAddrs = slices.Clone(st.UnknownAddrs)
	st.RelayAddrs = slices.Clone(st.RelayAddrs)
	m.mu.Unlock()
	return st
}

// Confidence returns AutoNAT's confidence in the reachability verdict, 0
// (one probe) to 3 (four agreeing probes), or -1 when unknown (libp2p's
// metrics are off). It gathers the registry: call it from RPC, not from a
// Prometheus collector.
func (m *NATMonitor) Confidence() int {
	if m.gatherer == nil {
		return -1
	}
	families, err := m.gatherer.Gather()
	if err != nil {
		return -1
	}
	for _, f := range families {
		if f.GetName() != autonatConfidenceMetric {
			continue
		}
		for _, mt := range f.GetMetric() {
			if g := mt.GetGauge(); g != nil {
				return int(g.GetValue())
			}
		}
	}
	return -1
}

// IsRelayAddr reports whether a goes through a circuit relay (/p2p-circuit).
func IsRelayAddr(a multiaddr.Multiaddr) bool {
	_, err := a.ValueForProtocol(multiaddr.P_CIRCUIT)
	return err == nil
}
