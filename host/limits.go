package host

import (
	"log/slog"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Resource manager sizing. libp2p's defaults (rcmgr.DefaultLimits, auto-scaled
// to 1/8 of RAM) start at 64 inbound / 128 total system connections, 1024
// inbound streams, 32 inbound transient connections and 128 inbound transient
// streams, and memory of 128 MiB on a small machine: less than HighWater peers
// need. The floors below are raised to what HighWater peers use; a larger
// auto-scaled value is kept.
//
// With the defaults (HighWater 96): peers = 96+32 = 128; system conns
// 2*96+32 = 224; system streams 128*8 = 1024 in each direction; system memory
// 1024*256 KiB = 256 MiB; transient conns 96/2+32 = 80; transient streams
// 128*4 = 512.
const (
	// peerSlack is how many peers may exist above HighWater: the connection
	// manager trims at most once per 10 s silence period, and dials and
	// handshakes are in flight meanwhile.
	peerSlack = 32
	// connsPerPeer allows two connections to one peer: TCP and QUIC dialled
	// together, or a relayed connection waiting for its hole punch.
	connsPerPeer = 2
	// streamsPerPeer is the average number of streams a peer keeps open at
	// once, both directions: GossipSub 2 (one each way), Kademlia 2, identify
	// and identify push 2, ping 1, sync 1. The budget is system-wide, so the
	// few sync peers that pipeline several requests borrow from the many
	// peers that only gossip.
	streamsPerPeer = 8
	// transientStreamsPerPeer is the streams a peer opens together right after
	// connecting (identify, GossipSub, Kademlia, sync status); each is
	// transient until its protocol is negotiated.
	transientStreamsPerPeer = 4
	// streamMemory is what yamux reserves for every stream (its initial
	// receive window, 256 KiB), so memory must cover the stream budget.
	streamMemory = 256 << 10
)

// newResourceManager builds the resource manager for a host whose connection
// manager trims above high peers.
func newResourceManager(high int, metrics bool, log *slog.Logger) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	limits := raiseLimits(scaling.AutoScale(), high)
	limiter := rcmgr.NewFixedLimiter(limits)
	sys := limiter.GetSystemLimits()
	if fd := sys.GetFDLimit(); fd < sys.GetConnTotalLimit() {
		// QUIC connections share one socket; only TCP needs a descriptor each.
		log.Warn("file descriptor limit below connection limit: raise ulimit -n for many TCP peers",
			"fd", fd, "conns", sys.GetConnTotalLimit())
	}
	var opts []rcmgr.Option
	if !metrics {
		opts = append(opts, rcmgr.WithMetricsDisabled())
	}
	return rcmgr.NewResourceManager(limiter, opts...)
}

// raiseLimits returns base with its system and transient connection, stream
// and memory limits raised to what high peers need (see the constants).
func raiseLimits(base rcmgr.ConcreteLimitConfig, high int) rcmgr.ConcreteLimitConfig {
	peers := high + peerSlack
	sysConns := connsPerPeer*high + peerSlack
	sysStreams := peers * streamsPerPeer
	sysMemory := int64(sysStreams) * streamMemory
	trConns := high/2 + peerSlack
	trStreams := peers * transientStreamsPerPeer

	l := rcmgr.NewFixedLimiter(base)
	sys, tr := l.GetSystemLimits(), l.GetTransientLimits()
	partial := rcmgr.PartialLimitConfig{
		System:    floor(sys, sysConns, sysStreams, sysMemory),
		Transient: floor(tr, trConns, trStreams, 0),
	}
	return partial.Build(base)
}

// floor returns l's connection, stream and memory limits, each at least the
// given minimum (memory 0: unchanged).
func floor(l rcmgr.Limit, conns, streams int, memory int64) rcmgr.ResourceLimits {
	atLeast := func(cur, min int) rcmgr.LimitVal { return rcmgr.LimitVal(max(cur, min)) }
	return rcmgr.ResourceLimits{
		Conns:           atLeast(l.GetConnTotalLimit(), conns),
		ConnsInbound:    atLeast(l.GetConnLimit(network.DirInbound), conns),
		ConnsOutbound:   atLeast(l.GetConnLimit(network.DirOutbound), conns),
		Streams:         atLeast(l.GetStreamTotalLimit(), streams),
		StreamsInbound:  atLeast(l.GetStreamLimit(network.DirInbound), streams),
		StreamsOutbound: atLeast(l.GetStreamLimit(network.DirOutbound), streams),
		FD:              rcmgr.LimitVal(l.GetFDLimit()),
		Memory:          rcmgr.LimitVal64(max(l.GetMemoryLimit(), memory)),
	}
}
