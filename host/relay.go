package host

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"
)

// AutoNAT service limits: dial-backs served per interval in all and per
// peer. A dial-back costs a public node one outgoing connection attempt, so
// a burst of home nodes may not turn it into a scanner; a home node needs
// one probe per minute and a half while it is unsure, fewer after.
const (
	AutoNATGlobalLimit   = 30
	AutoNATPeerLimit     = 3
	AutoNATLimitInterval = time.Minute
)

// AutoRelay tuning for a private node. A blockDAG network is small next
// to IPFS: waiting for four candidates (libp2p's default) or three minutes
// would leave a home node unreachable for that long, so one relay-capable
// peer is enough to start, and a failed candidate is retried after
// AutoRelayBackoff rather than an hour.
const (
	// AutoRelayNumRelays is how many relays a private node holds a
	// reservation on: two, so one relay going away does not leave it
	// unreachable.
	AutoRelayNumRelays = 2
	// AutoRelayBootDelay is how long AutoRelay waits for more candidates
	// before it settles for fewer than it wants.
	AutoRelayBootDelay = 20 * time.Second
	// AutoRelayBackoff is how long a relay that refused or failed a
	// reservation is left alone.
	AutoRelayBackoff = 2 * time.Minute
	// maxRelayCandidates bounds one answer of the candidate source.
	maxRelayCandidates = 16
)

// RelayResources are the limits of the relay service a public node runs.
// A relayed connection exists to reach a home node and to coordinate a
// hole punch (a few kilobytes over a few round trips): blocks never travel
// over it, neither sync (refused on relayed connections) nor gossip
// (GossipSub only uses peers with a direct connection). So the circuit
// limits stay libp2p's conservative 2 minutes and 128 KiB each way, and the
// slots are fewer than libp2p's defaults: 64 reservations of an hour, 4 per
// IP address (a household), 16 per ASN, 8 circuits per peer.
func RelayResources() relayv2.Resources {
	r := relayv2.DefaultResources()
	r.Limit = &relayv2.RelayLimit{Duration: 2 * time.Minute, Data: 128 << 10}
	r.ReservationTTL = time.Hour
	r.MaxReservations = 64
	r.MaxReservationsPerIP = 4
	r.MaxReservationsPerASN = 16
	r.MaxCircuits = 8
	return r
}

// relaySource gives AutoRelay its candidates: the static relays first, then
// connected peers that offer the relay service (the hop protocol, which a
// public dagnode node runs) on a public address. AutoRelay calls it only
// once the node is private, long after New has set the host.
type relaySource struct {
	static []peer.AddrInfo

	mu sync.Mutex
	h  host.Host
}

func (r *relaySource) setHost(h host.Host) {
	r.mu.Lock()
	r.h = h
	r.mu.Unlock()
}

// source is an autorelay.PeerSource.
func (r *relaySource) source(ctx context.Context, num int) <-chan peer.AddrInfo {
	num = min(num, maxRelayCandidates)
	out := make(chan peer.AddrInfo, num)
	defer close(out)
	for _, ai := range r.candidates(num) {
		out <- ai
	}
	return out
}

var _ autorelay.PeerSource = (*relaySource)(nil).source

// candidates returns at most num relay candidates.
func (r *relaySource) candidates(num int) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, ai := range r.static {
		if len(out) == num {
			return out
		}
		out = append(out, ai)
	}
	r.mu.Lock()
	h := r.h
	r.mu.Unlock()
	if h == nil {
		return out
	}
	peers := h.Network().Peers()
	slices.Sort(peers) // a stable order: the same relays keep being offered
	for _, p := range peers {
		if len(out) == num {
			break
		}
		if h.Network().Connectedness(p) != network.Connected ||
			slices.ContainsFunc(out, func(ai peer.AddrInfo) bool { return ai.ID == p }) {
			continue
		}
		if ok, err := h.Peerstore().SupportsProtocols(p, proto.ProtoIDv2Hop); err != nil || len(ok) == 0 {
			continue
		}
		ai := peer.AddrInfo{ID: p}
		for _, a := range h.Peerstore().Addrs(p) {
			if manet.IsPublicAddr(a) && !IsRelayAddr(a) {
				ai.Addrs = append(ai.Addrs, a)
			}
		}
		if len(ai.Addrs) > 0 {
			out = append(out, ai)
		}
	}
	return out
}

// holePunchTracer sends hole punch events to the tracker and, when reg is
// set, to libp2p's hole punch metrics (one option must carry both: each
// tracer option replaces the other).
func holePunchTracer(tr *Tracker, reg prometheus.Registerer) holepunch.Option {
	if reg == nil {
		return holepunch.WithTracer(tr)
	}
	return holepunch.WithMetricsAndEventTracer(holepunch.NewMetricsTracer(holepunch.WithRegisterer(reg)), tr)
}
