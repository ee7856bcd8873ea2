package host

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dagnode/dagnode/dag"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/multiformats/go-multiaddr"
)

// DefaultBanDuration is how long a ban lasts unless WithBanDuration says
// otherwise: a day, as btcd. Peer IDs are free to make, so a ban only stops a
// lazy attacker anyway; a day is long enough for that and short enough for a
// misconfigured honest node to come back once fixed.
const DefaultBanDuration = 24 * time.Hour

// DefaultPingInterval is how often every connected peer is pinged unless
// WithPingInterval says otherwise.
const DefaultPingInterval = 30 * time.Second

// pingTimeout bounds one ping.
const pingTimeout = 10 * time.Second

// bandwidthIdle is how long a peer's bandwidth meters may stay idle before
// they are dropped (after a disconnect).
const bandwidthIdle = 10 * time.Minute

// SyncTag is the connection manager protection tag of the sync peer.
const SyncTag = "sync"

// Bounds of the tracker's per-peer tables that outlive connections. Peer IDs
// cost nothing to make, so a peer that misbehaves under many identities must
// not grow them without end.
const (
	// MaxBans bounds the ban list; a new ban past it evicts the ban that
	// expires first. 1024 bans cover a day of one ban a minute and a half.
	MaxBans = 1024
	// maxScores bounds the misbehaviour scores of peers below the ban
	// threshold; past it the lowest (decayed) score is dropped.
	maxScores = 4096
)

// Tracker holds the state of every connected peer and decides penalties and
// bans. It is the host's connection gater (banned peers are refused both ways)
// and bandwidth reporter. Its methods are safe for concurrent use.
type Tracker struct {
	log          *slog.Logger
	now          func() time.Time
	banDuration  time.Duration
	pingInterval time.Duration
	bw           *metrics.BandwidthCounter
	attached     atomic.Bool // given to New

	penalties, ignored, banCount, refused atomic.Uint64

	mu      sync.Mutex // a leaf lock: never held while calling into the host
	h       host.Host
	self    peer.ID // this node: never banned; set by New
	started bool
	closed  bool
	peers   map[peer.ID]*peerState
	lastNum int32 // the last peerState.num given
	scores  map[peer.ID]score
	bans    map[peer.ID]BanInfo
	pending map[peer.ID][]string // Protect calls before Start

	holePunches map[peer.ID]*HolePunchInfo // bounded by maxHolePunchPeers
	hpStats     HolePunchStats

	cancel    context.CancelFunc
	sub       event.Subscription
	notifee   *network.NotifyBundle
	pingNow   chan peer.ID
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// peerState is what the tracker knows about a connected peer beyond what the
// host knows.
type peerState struct {
	num             int32
	connectedAt     time.Time
	agentVersion    string
	protocolVersion string
	protocols       []protocol.ID
	status          *dag.Status
	syncPeer        bool
	pinging         bool
}

// TrackerOption tunes a Tracker.
type TrackerOption func(*Tracker)

// WithBanDuration sets how long Penalize bans a peer and the duration Ban uses
// for d <= 0. Default: DefaultBanDuration.
func WithBanDuration(d time.Duration) TrackerOption {
	return func(t *Tracker) {
		if d > 0 {
			t.banDuration = d
		}
	}
}

// WithLogger sets the logger. Default: slog.Default().
func WithLogger(l *slog.Logger) TrackerOption {
	return func(t *Tracker) {
		if l != nil {
			t.log = l
		}
	}
}

// WithClock sets the clock used for bans, score decay and connection times.
// Default: time.Now. It must be safe for concurrent use.
func WithClock(now func() time.Time) TrackerOption {
	return func(t *Tracker) {
		if now != nil {
			t.now = now
		}
	}
}

// WithPingInterval sets how often connected peers are pinged. Default:
// DefaultPingInterval.
func WithPingInterval(d time.Duration) TrackerOption {
	return func(t *Tracker) {
		if d > 0 {
			t.pingInterval = d
		}
	}
}

// NewTracker returns a tracker. Give it to New, then Start it with the host.
func NewTracker(opts ...TrackerOption) *Tracker {
	t := &Tracker{
		log:          slog.Default(),
		now:          time.Now,
		banDuration:  DefaultBanDuration,
		pingInterval: DefaultPingInterval,
		bw:           metrics.NewBandwidthCounter(),
		peers:        make(map[peer.ID]*peerState),
		scores:       make(map[peer.ID]score),
		bans:         make(map[peer.ID]BanInfo),
		pending:      make(map[peer.ID][]string),
		holePunches:  make(map[peer.ID]*HolePunchInfo),
		pingNow:      make(chan peer.ID, 64),
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Start watches h (connections, identify results), applies the protections
// asked for before, and starts pinging peers. It may be called once.
func (t *Tracker) Start(h host.Host) error {
	t.mu.Lock()
	switch {
	case t.closed:
		t.mu.Unlock()
		return errors.New("host: tracker closed")
	case t.started:
		t.mu.Unlock()
		return errors.New("host: tracker already started")
	}
	t.started = true
	t.mu.Unlock()

	sub, err := h.EventBus().Subscribe(
		[]any{new(event.EvtPeerConnectednessChanged), new(event.EvtPeerIdentificationCompleted)},
		eventbus.Name("dagnode-tracker"), eventbus.BufSize(128))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.notifee = &network.NotifyBundle{ConnectedF: t.connected}

	t.mu.Lock()
	if t.closed { // closed while subscribing
		t.mu.Unlock()
		cancel()
		sub.Close()
		return errors.New("host: tracker closed")
	}
	t.h, t.sub, t.cancel = h, sub, cancel
	t.self = h.ID()
	pending := t.pending
	t.pending = nil
	t.wg.Add(2)
	t.mu.Unlock()

	h.Network().Notify(t.notifee)
	for p, tags := range pending {
		for _, tag := range tags {
			h.ConnManager().Protect(p, tag)
		}
	}
	for _, p := range h.Network().Peers() { // connected before Start
		t.ensure(h, p)
	}
	go t.eventLoop(ctx, h, sub)
	go t.pingLoop(ctx, h)
	return nil
}

// Close stops the tracker's goroutines and waits for them. It does not close
// the host. Bans stay in force for the gater. Close is idempotent.
func (t *Tracker) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		h, sub, cancel := t.h, t.sub, t.cancel
		t.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		if h != nil {
			h.Network().StopNotify(t.notifee)
		}
		if sub != nil {
			sub.Close()
		}
		t.wg.Wait()
	})
	return nil
}

// host returns the host given to Start, or nil.
func (t *Tracker) host() host.Host {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.h
}

// connected closes a connection of a banned peer that got past the gater
// while the ban was being imposed.
func (t *Tracker) connected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	if !t.IsBanned(p) {
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.wg.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.wg.Done()
		t.log.Debug("closing connection of banned peer", "peer", p)
		c.Close()
	}()
}

func isConnected(c network.Connectedness) bool {
	return c == network.Connected || c == network.Limited
}

// ensure returns p's state, creating it if p is connected; nil otherwise.
// Called without t.mu.
func (t *Tracker) ensure(h host.Host, p peer.ID) *peerState {
	connected := isConnected(h.Network().Connectedness(p))
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.peers[p]
	if st == nil && connected {
		t.lastNum++
		if t.lastNum <= 0 { // after math.MaxInt32 connections
			t.lastNum = 1
		}
		st = &peerState{num: t.lastNum, connectedAt: t.now()}
		t.peers[p] = st
	}
	return st
}

func (t *Tracker) eventLoop(ctx context.Context, h host.Host, sub event.Subscription) {
	defer t.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.Out():
			if !ok {
				return
			}
			switch e := ev.(type) {
			case event.EvtPeerConnectednessChanged:
				t.connectednessChanged(h, e)
			case event.EvtPeerIdentificationCompleted:
				t.identified(ctx, h, e)
			}
		}
	}
}

func (t *Tracker) connectednessChanged(h host.Host, e event.EvtPeerConnectednessChanged) {
	if isConnected(e.Connectedness) {
		t.ensure(h, e.Peer)
		return
	}
	if isConnected(h.Network().Connectedness(e.Peer)) {
		return // reconnected since the event was emitted
	}
	t.mu.Lock()
	st := t.peers[e.Peer]
	delete(t.peers, e.Peer)
	t.mu.Unlock()
	if st != nil && st.syncPeer {
		h.ConnManager().Unprotect(e.Peer, SyncTag)
	}
	t.log.Debug("peer disconnected", "peer", e.Peer)
}

func (t *Tracker) identified(ctx context.Context, h host.Host, e event.EvtPeerIdentificationCompleted) {
	if t.ensure(h, e.Peer) == nil {
		return
	}
	t.mu.Lock()
	if st := t.peers[e.Peer]; st != nil {
		st.agentVersion = e.AgentVersion
		st.protocolVersion = e.ProtocolVersion
		st.protocols = slices.Clone(e.Protocols)
	}
	t.mu.Unlock()
	t.log.Debug("peer identified", "peer", e.Peer, "agent", e.AgentVersion, "protocol_version", e.ProtocolVersion)
	select { // a first latency figure now rather than at the next tick
	case t.pingNow <- e.Peer:
	case <-ctx.Done():
	default:
	}
}

func (t *Tracker) pingLoop(ctx context.Context, h host.Host) {
	defer t.wg.Done()
	tick := time.NewTicker(t.pingInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-t.pingNow:
			t.ping(ctx, h, p)
		case <-tick.C:
			t.sweep(h)
			for _, p := range h.Network().Peers() {
				t.ping(ctx, h, p)
			}
		}
	}
}

// ping pings p in a goroutine unless a ping to p is in flight. A peer we
// reach only through a relay is not pinged: that would spend the relay's
// byte budget (and libp2p refuses the stream anyway).
func (t *Tracker) ping(ctx context.Context, h host.Host, p peer.ID) {
	if h.Network().Connectedness(p) != network.Connected {
		return
	}
	t.mu.Lock()
	st := t.peers[p]
	if st == nil || st.pinging || t.closed {
		t.mu.Unlock()
		return
	}
	st.pinging = true
	t.wg.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.wg.Done()
		// WithNoDial: a ping must never reconnect a peer that just left.
		ctx, cancel := context.WithTimeout(network.WithNoDial(ctx, "tracker ping"), pingTimeout)
		defer cancel()
		var res ping.Result
		select {
		case res = <-ping.Ping(ctx, h, p): // records the RTT in the peerstore
		case <-ctx.Done():
			res.Error = ctx.Err()
		}
		if res.Error != nil && ctx.Err() == nil {
			t.log.Debug("ping failed", "peer", p, "err", res.Error)
		}
		t.mu.Lock()
		if st := t.peers[p]; st != nil {
			st.pinging = false
		}
		t.mu.Unlock()
	}()
}

// sweep drops expired bans, decayed scores, state of peers that left without
// an event, and idle bandwidth meters.
func (t *Tracker) sweep(h host.Host) {
	now := t.now()
	t.mu.Lock()
	for p, b := range t.bans {
		if !now.Before(b.Until) {
			delete(t.bans, p)
		}
	}
	for p, s := range t.scores {
		if s.decayed(now) < 0.5 {
			delete(t.scores, p)
		}
	}
	var gone []peer.ID
	for p := range t.peers {
		gone = append(gone, p)
	}
	t.mu.Unlock()
	gone = slices.DeleteFunc(gone, func(p peer.ID) bool { return isConnected(h.Network().Connectedness(p)) })
	t.mu.Lock()
	for _, p := range gone {
		delete(t.peers, p)
	}
	t.mu.Unlock()
	t.bw.TrimIdle(time.Now().Add(-bandwidthIdle))
}

// InterceptPeerDial refuses to dial a banned peer.
func (t *Tracker) InterceptPeerDial(p peer.ID) bool { return t.allow(p, "dial") }

// InterceptAddrDial refuses to dial a banned peer.
func (t *Tracker) InterceptAddrDial(p peer.ID, _ multiaddr.Multiaddr) bool { return !t.IsBanned(p) }

// InterceptAccept accepts every connection: the peer is not known yet.
func (t *Tracker) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses a connection (either direction) to a banned peer.
func (t *Tracker) InterceptSecured(dir network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return t.allow(p, dir.String())
}

// InterceptUpgraded accepts every connection that got this far.
func (t *Tracker) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

var _ connmgr.ConnectionGater = (*Tracker)(nil)

func (t *Tracker) allow(p peer.ID, what string) bool {
	if !t.IsBanned(p) {
		return true
	}
	t.refused.Add(1)
	t.log.Debug("connection refused: peer banned", "peer", p, "direction", what)
	return false
}

// BanInfo describes a ban.
type BanInfo struct {
	ID     peer.ID
	Until  time.Time
	Reason string
}

// Ban refuses connections to and from p for d (d <= 0: the tracker's ban
// duration) and disconnects it. A longer ban in force is kept. At most
// MaxBans bans are kept: past that the ban expiring first is lifted. This
// node itself is never banned (the call is refused and logged).
func (t *Tracker) Ban(p peer.ID, d time.Duration, reason string) {
	t.ban(p, d, reason, slog.LevelInfo)
}

func (t *Tracker) ban(p peer.ID, d time.Duration, reason string, level slog.Level) {
	if d <= 0 {
		d = t.banDuration
	}
	now := t.now()
	until := now.Add(d)
	t.mu.Lock()
	if p == t.self || p == "" {
		t.mu.Unlock()
		t.log.Log(context.Background(), level, "ban refused: not a remote peer", "peer", p, "reason", reason)
		return
	}
	if old, ok := t.bans[p]; ok && old.Until.After(until) {
		until = old.Until
	}
	if _, ok := t.bans[p]; !ok && len(t.bans) >= MaxBans {
		t.evictBanLocked(now)
	}
	t.bans[p] = BanInfo{ID: p, Until: until, Reason: reason}
	delete(t.scores, p)
	h := t.h
	t.mu.Unlock()
	t.banCount.Add(1)
	t.log.Log(context.Background(), level, "peer banned", "peer", p, "reason", reason, "until", until)
	if h != nil {
		if err := h.Network().ClosePeer(p); err != nil {
			t.log.Debug("closing banned peer", "peer", p, "err", err)
		}
	}
}

// evictBanLocked makes room for one ban: it drops the expired bans, or
// else the one that expires first. Called with t.mu held.
func (t *Tracker) evictBanLocked(now time.Time) {
	var first peer.ID
	for p, b := range t.bans {
		if !now.Before(b.Until) {
			delete(t.bans, p)
			continue
		}
		if first == "" || b.Until.Before(t.bans[first].Until) {
			first = p
		}
	}
	if len(t.bans) >= MaxBans && first != "" {
		delete(t.bans, first)
	}
}

// Unban lifts p's ban.
func (t *Tracker) Unban(p peer.ID) {
	t.mu.Lock()
	_, ok := t.bans[p]
	delete(t.bans, p)
	t.mu.Unlock()
	if ok {
		t.log.Info("peer unbanned", "peer", p)
	}
}

// IsBanned reports whether a ban on p is in force.
func (t *Tracker) IsBanned(p peer.ID) bool {
	_, ok := t.banInfo(p)
	return ok
}

func (t *Tracker) banInfo(p peer.ID) (BanInfo, bool) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.bans[p]
	if ok && !now.Before(b.Until) {
		delete(t.bans, p)
		return BanInfo{}, false
	}
	return b, ok
}

// Banned returns the bans in force, sorted by peer ID.
func (t *Tracker) Banned() []BanInfo {
	now := t.now()
	t.mu.Lock()
	out := make([]BanInfo, 0, len(t.bans))
	for _, b := range t.bans {
		if now.Before(b.Until) {
			out = append(out, b)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b BanInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Disconnect closes every connection to p. Unlike Ban it does not stop p
// from reconnecting.
func (t *Tracker) Disconnect(p peer.ID) error {
	h := t.host()
	if h == nil {
		return errors.New("host: tracker not started")
	}
	return h.Network().ClosePeer(p)
}

// Protect keeps the connection manager from trimming p's connections, for
// configured (persistent) peers. Before Start it is remembered and applied by
// Start.
func (t *Tracker) Protect(p peer.ID, tag string) {
	t.mu.Lock()
	h := t.h
	if h == nil {
		t.pending[p] = append(t.pending[p], tag)
	}
	t.mu.Unlock()
	if h != nil {
		h.ConnManager().Protect(p, tag)
	}
}

// Unprotect undoes Protect; it reports whether p stays protected by another tag.
func (t *Tracker) Unprotect(p peer.ID, tag string) bool {
	t.mu.Lock()
	h := t.h
	if h == nil {
		t.pending[p] = slices.DeleteFunc(t.pending[p], func(s string) bool { return s == tag })
		protected := len(t.pending[p]) > 0
		t.mu.Unlock()
		return protected
	}
	t.mu.Unlock()
	return h.ConnManager().Unprotect(p, tag)
}

// SetStatus records the DAG status p announced (called by the sync protocol).
// It is ignored if p is not connected.
func (t *Tracker) SetStatus(p peer.ID, st dag.Status) {
	h := t.host()
	if h == nil || t.ensure(h, p) == nil {
		return
	}
	c := copyStatus(&st)
	t.mu.Lock()
	if s := t.peers[p]; s != nil {
		s.status = c
	}
	t.mu.Unlock()
}

// SetSyncPeer marks p as (not) our sync peer and protects it from trimming
// with SyncTag (or removes that protection).
func (t *Tracker) SetSyncPeer(p peer.ID, on bool) {
	h := t.host()
	if h == nil {
		return
	}
	if on && t.ensure(h, p) == nil {
		return // gone already
	}
	t.mu.Lock()
	if s := t.peers[p]; s != nil {
		s.syncPeer = on
	}
	t.mu.Unlock()
	if on {
		h.ConnManager().Protect(p, SyncTag)
	} else {
		h.ConnManager().Unprotect(p, SyncTag)
	}
}

// BandwidthTotals returns the bytes sent and received over all streams. The
// swarm reports bytes per stream only (by protocol and peer), so the totals
// are the sum over protocols; the meters update about once a second.
func (t *Tracker) BandwidthTotals() metrics.Stats {
	var total metrics.Stats
	for _, s := range t.bw.GetBandwidthByProtocol() {
		total.TotalIn += s.TotalIn
		total.TotalOut += s.TotalOut
		total.RateIn += s.RateIn
		total.RateOut += s.RateOut
	}
	return total
}

// PeerInfo is a snapshot of a connected peer.
type PeerInfo struct {
	ID peer.ID
	// Num is the peer's connection number (btcd's numeric peer id): given
	// when the peer connects, 1 for the first, then increasing; a peer that
	// disconnects and comes back gets a new one. It wraps to 1 after
	// math.MaxInt32.
	Num int32
	// Direction is the direction of the connection shown (a direct one if
	// any, else the oldest).
	Direction network.Direction
	// Addrs are the remote addresses of all current connections.
	Addrs []multiaddr.Multiaddr
	// Transport of the connection shown: "tcp", "quic", "relay", ...
	Transport string
	// Relayed reports that every connection goes through a relay (limited):
	// no sync and no gossip until a direct connection exists.
	Relayed bool
	// Conns describes every current connection, direct ones first.
	Conns []ConnInfo
	// HolePunch is what hole punching did with the peer, nil if nothing.
	HolePunch *HolePunchInfo
	// AgentVersion and ProtocolVersion come from identify.
	AgentVersion    string
	ProtocolVersion string
	// Protocols are the protocols the peer supports, from identify.
	Protocols []protocol.ID
	// Latency is the peerstore's moving average of ping round trips; 0 until
	// the first ping.
	Latency time.Duration
	// ConnectedAt is when the peer connected (tracker clock).
	ConnectedAt time.Time
	// BytesIn and BytesOut count stream bytes exchanged with the peer, across
	// connections, until the meters go idle for bandwidthIdle.
	BytesIn, BytesOut int64
	// Score is the decayed misbehaviour score (ban at BanThreshold).
	Score int
	// Banned and BanUntil describe a ban in force (the connection is closing).
	Banned   bool
	BanUntil time.Time
	// Status is the DAG status the peer announced, nil before the handshake.
	Status *dag.Status
	// SyncPeer reports that the peer is our sync peer.
	SyncPeer bool
}

// Peers returns the connected peers, sorted by ID.
func (t *Tracker) Peers() []PeerInfo {
	h := t.host()
	if h == nil {
		return nil
	}
	ps := h.Network().Peers()
	slices.Sort(ps)
	out := make([]PeerInfo, 0, len(ps))
	for _, p := range ps {
		if info, ok := t.snapshot(h, p); ok {
			out = append(out, info)
		}
	}
	return out
}

// Peer returns a snapshot of p if it is connected.
func (t *Tracker) Peer(p peer.ID) (PeerInfo, bool) {
	h := t.host()
	if h == nil {
		return PeerInfo{}, false
	}
	return t.snapshot(h, p)
}

func (t *Tracker) snapshot(h host.Host, p peer.ID) (PeerInfo, bool) {
	conns := h.Network().ConnsToPeer(p)
	st := t.ensure(h, p)
	if len(conns) == 0 || st == nil {
		return PeerInfo{}, false
	}
	slices.SortFunc(conns, directFirst) // ConnsToPeer returns a copy
	shown := conns[0]
	info := PeerInfo{
		ID:        p,
		Direction: shown.Stat().Direction,
		Transport: transportName(shown.RemoteMultiaddr()),
		Relayed:   relayed(shown),
		Latency:   h.Peerstore().LatencyEWMA(p),
	}
	for _, c := range conns {
		info.Addrs = append(info.Addrs, c.RemoteMultiaddr())
		st := c.Stat()
		info.Conns = append(info.Conns, ConnInfo{Addr: c.RemoteMultiaddr(), Direction: st.Direction,
			Transport: transportName(c.RemoteMultiaddr()), Relayed: relayed(c), Opened: st.Opened})
	}
	bw := t.bw.GetBandwidthForPeer(p)
	info.BytesIn, info.BytesOut = bw.TotalIn, bw.TotalOut
	now := t.now()

	t.mu.Lock()
	if s := t.peers[p]; s != nil {
		info.Num = s.num
		info.ConnectedAt = s.connectedAt
		info.AgentVersion = s.agentVersion
		info.ProtocolVersion = s.protocolVersion
		info.Protocols = slices.Clone(s.protocols)
		info.Status = copyStatus(s.status)
		info.SyncPeer = s.syncPeer
	}
	if hp, ok := t.holePunches[p]; ok {
		c := *hp
		info.HolePunch = &c
	}
	info.Score = int(t.scores[p].decayed(now))
	if b, ok := t.bans[p]; ok && now.Before(b.Until) {
		info.Banned, info.BanUntil = true, b.Until
	}
	t.mu.Unlock()

	if info.AgentVersion == "" { // identified before Start
		if v, err := h.Peerstore().Get(p, "AgentVersion"); err == nil {
			info.AgentVersion, _ = v.(string)
		}
		if v, err := h.Peerstore().Get(p, "ProtocolVersion"); err == nil {
			info.ProtocolVersion, _ = v.(string)
		}
		if ps, err := h.Peerstore().GetProtocols(p); err == nil {
			info.Protocols = ps
		}
	}
	return info, true
}

// ConnInfo describes one connection to a peer.
type ConnInfo struct {
	Addr      multiaddr.Multiaddr
	Direction network.Direction
	Transport string
	// Relayed: the connection goes through a circuit relay (limited in
	// duration and bytes by the relay).
	Relayed bool
	Opened  time.Time
}

// directFirst orders connections direct before relayed, then oldest first.
func directFirst(a, b network.Conn) int {
	if ra, rb := relayed(a), relayed(b); ra != rb {
		if ra {
			return 1
		}
		return -1
	}
	return a.Stat().Opened.Compare(b.Stat().Opened)
}

func relayed(c network.Conn) bool {
	if c.Stat().Limited {
		return true
	}
	_, err := c.RemoteMultiaddr().ValueForProtocol(multiaddr.P_CIRCUIT)
	return err == nil
}

// transportName names the transport of a remote multiaddr.
func transportName(a multiaddr.Multiaddr) string {
	name := "unknown"
	for _, c := range a {
		switch c.Protocol().Code {
		case multiaddr.P_CIRCUIT:
			return "relay"
		case multiaddr.P_TCP:
			name = "tcp"
		case multiaddr.P_QUIC_V1, multiaddr.P_QUIC:
			name = "quic"
		case multiaddr.P_WS, multiaddr.P_WSS:
			name = "websocket"
		case multiaddr.P_WEBTRANSPORT:
			name = "webtransport"
		case multiaddr.P_WEBRTC_DIRECT, multiaddr.P_WEBRTC:
			name = "webrtc"
		}
	}
	return name
}

func copyStatus(s *dag.Status) *dag.Status {
	if s == nil {
		return nil
	}
	c := *s
	c.Tips = slices.Clone(s.Tips)
	if s.BlueWork != nil {
		c.BlueWork = new(big.Int).Set(s.BlueWork)
	}
	return &c
}
