package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/multiformats/go-multiaddr"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/host"
	"github.com/dagnode/dagnode/keys"
	"github.com/dagnode/dagnode/rpc"
)

// The RPC server declares the narrow interfaces it needs; these adapters
// give it the node's parts (btcd's rpcadapters.go).
var (
	_ rpc.Chain      = (*dag.DAG)(nil)
	_ rpc.Submitter  = submitter{}
	_ rpc.PeerSource = (*peerSource)(nil)
	_ rpc.NetInfo    = (*netInfo)(nil)
	_ rpc.SyncStatus = syncStatus{}
)

// submitter takes submitblock's blocks through the node's submit path.
type submitter struct{ n *node }

func (s submitter) SubmitBlock(ctx context.Context, b *dag.Block) error {
	return s.n.submitBlock(ctx, b)
}

// syncStatus adapts the sync manager.
type syncStatus struct{ n *node }

func (s syncStatus) SyncInfo() rpc.SyncInfo {
	i := s.n.sync.SyncInfo()
	e := i.LastSession
	out := rpc.SyncInfo{
		Syncing: i.Syncing, SyncPeer: peerString(i.SyncPeer), Blocks: i.Blocks, Target: i.Target,
		Done: i.Done, BlocksPerSecond: i.BlocksPerSecond, ETA: i.ETA, Sessions: i.Sessions,
		Orphans: i.Orphans, OrphanBytes: i.OrphanBytes, OrphanFetches: i.OrphanFetches,
		LastSession: rpc.SessionEnd{Peer: peerString(e.Peer), Reason: e.Reason, Err: e.Err, Blocks: e.Blocks,
			Elapsed: e.Elapsed, At: e.At},
	}
	for _, b := range i.Backoffs {
		out.Backoffs = append(out.Backoffs, rpc.SyncBackoff{Peer: b.Peer.String(), Until: b.Until, Failures: b.Failures, Reason: b.Reason})
	}
	return out
}

func peerString(p peer.ID) string {
	if p == "" {
		return ""
	}
	return p.String()
}

// peerSource adapts the tracker, the host and discovery.
type peerSource struct{ n *node }

func (ps *peerSource) Peers() []rpc.PeerInfo {
	var out []rpc.PeerInfo
	for _, p := range ps.n.tracker.Peers() {
		info := rpc.PeerInfo{
			ID: p.ID.String(), Num: p.Num, Direction: strings.ToLower(p.Direction.String()), Transport: p.Transport,
			Relayed: p.Relayed, Agent: p.AgentVersion, ProtocolVersion: p.ProtocolVersion,
			Latency: p.Latency, ConnectedAt: p.ConnectedAt, BytesSent: p.BytesOut, BytesRecv: p.BytesIn,
			Score: p.Score, Banned: p.Banned, BanUntil: p.BanUntil, Status: p.Status, SyncPeer: p.SyncPeer,
		}
		for _, a := range p.Addrs {
			info.Addrs = append(info.Addrs, a.String())
		}
		for _, c := range p.Conns {
			info.Conns = append(info.Conns, rpc.ConnInfo{Addr: c.Addr.String(),
				Direction: strings.ToLower(c.Direction.String()), Transport: c.Transport, Relayed: c.Relayed})
		}
		if hp := p.HolePunch; hp != nil {
			info.HolePunch = &rpc.PeerHolePunch{DirectDials: hp.DirectDials, Started: hp.Started,
				Succeeded: hp.Succeeded, Failed: hp.Failed, LastMillis: hp.LastElapsed.Milliseconds(), LastError: hp.LastError}
			if !hp.LastAt.IsZero() {
				info.HolePunch.LastTime = hp.LastAt.Unix()
			}
		}
		out = append(out, info)
	}
	return out
}

func parsePeer(id string) (peer.ID, error) {
	p, err := peer.Decode(id)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", rpc.ErrInvalidPeerID, id, err)
	}
	return p, nil
}

func parseAddr(addr string) (peer.AddrInfo, error) {
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("%w: %q: want a multiaddr ending in /p2p/<peer id>: %v", rpc.ErrInvalidAddress, addr, err)
	}
	return *ai, nil
}

func (ps *peerSource) Disconnect(id string) error {
	p, err := parsePeer(id)
	if err != nil {
		return err
	}
	if ps.n.host.Network().Connectedness(p) != network.Connected {
		return fmt.Errorf("%w: %s", rpc.ErrPeerNotFound, id)
	}
	return ps.n.tracker.Disconnect(p)
}

func (ps *peerSource) Ban(id string, d time.Duration, reason string) error {
	p, err := parsePeer(id)
	if err != nil {
		return err
	}
	ps.n.tracker.Ban(p, d, reason)
	return nil
}

func (ps *peerSource) Unban(id string) error {
	p, err := parsePeer(id)
	if err != nil {
		return err
	}
	if !ps.n.tracker.IsBanned(p) {
		return fmt.Errorf("%w: %s is not banned", rpc.ErrPeerNotFound, id)
	}
	ps.n.tracker.Unban(p)
	return nil
}

func (ps *peerSource) Banned() []rpc.BanInfo {
	var out []rpc.BanInfo
	for _, b := range ps.n.tracker.Banned() {
		out = append(out, rpc.BanInfo{ID: b.ID.String(), Until: b.Until, Reason: b.Reason})
	}
	return out
}

func (ps *peerSource) Connect(ctx context.Context, addr string) error {
	ai, err := parseAddr(addr)
	if err != nil {
		return err
	}
	return ps.n.host.Connect(ctx, ai)
}

func (ps *peerSource) AddPersistent(ctx context.Context, addr string) error {
	ai, err := parseAddr(addr)
	if err != nil {
		return err
	}
	return ps.n.disc.AddPersistent(ai)
}

func (ps *peerSource) RemovePersistent(addr string) error {
	id := addr
	if ai, err := peer.AddrInfoFromString(addr); err == nil {
		id = ai.ID.String()
	}
	p, err := parsePeer(id)
	if err != nil {
		return err
	}
	if !ps.n.disc.RemovePersistent(p) {
		return fmt.Errorf("%w: %s", rpc.ErrNodeNotAdded, addr)
	}
	return nil
}

// pingTimeout bounds one ping round trip.
const pingTimeout = 10 * time.Second

func (ps *peerSource) Ping(ctx context.Context) []rpc.PingResult {
	peers := ps.n.host.Network().Peers()
	out := make([]rpc.PingResult, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			out[i].ID = p.String()
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			defer cancel()
			select {
			case r := <-ping.Ping(pctx, ps.n.host, p):
				out[i].RTT, out[i].Err = r.RTT, r.Error
			case <-pctx.Done():
				out[i].Err = pctx.Err()
			}
		})
	}
	wg.Wait()
	return out
}

// netInfo adapts the host and its NAT monitor: addresses, reachability,
// NAT traversal, protocols, totals.
type netInfo struct {
	n   *node
	nat *host.NATMonitor
}

func newNetInfo(n *node) *netInfo {
	return &netInfo{n: n, nat: host.NewNATMonitor(n.log, n.metrics.Registry())}
}

// start follows the host's reachability and address events.
func (ni *netInfo) start() error { return ni.nat.Start(ni.n.host) }

func (ni *netInfo) close() { ni.nat.Close() }

func addrStrings(as []multiaddr.Multiaddr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// withPeer appends /p2p/<id> to each address: a relay address is only
// dialable with the ID of the node behind the relay.
func withPeer(as []multiaddr.Multiaddr, id peer.ID) []multiaddr.Multiaddr {
	comp, err := multiaddr.NewComponent("p2p", id.String())
	if err != nil {
		return as
	}
	out := make([]multiaddr.Multiaddr, 0, len(as))
	for _, a := range as {
		out = append(out, a.Encapsulate(comp))
	}
	return out
}

func (ni *netInfo) NetworkInfo() rpc.NetworkInfo {
	h, cfg := ni.n.host, ni.n.cfg
	st := ni.nat.Status()
	hp := ni.n.tracker.HolePunchStats()
	info := rpc.NetworkInfo{
		PeerID:                 h.ID().String(),
		Reachability:           st.Reachability,
		ReachabilityBasis:      st.Basis,
		ExternalAddrs:          cfg.ExternalAddr,
		DHTMode:                dhtMode(ni.n),
		ReachabilitySince:      st.Since,
		ReachabilityConfidence: ni.nat.Confidence(),
		ReachableAddrs:         addrStrings(st.Reachable),
		UnreachableAddrs:       addrStrings(st.Unreachable),
		UnknownAddrs:           addrStrings(st.UnknownAddrs),
		ObservedAddrs:          addrStrings(st.ObservedAddrs),
		RelayAddrs:             addrStrings(withPeer(st.RelayAddrs, h.ID())),
		NATTypeTCP:             st.NATTypeTCP,
		NATTypeUDP:             st.NATTypeUDP,
		Agent:                  host.AgentPrefix + version,
		NAT:                    "port mapping (UPnP/NAT-PMP) on",
		NATService:             serviceState(cfg.NoNATService, "--nonatservice", st.Reachability, true),
		RelayService:           serviceState(cfg.NoRelayService, "--norelayservice", st.Reachability, false),
		HolePunch: rpc.HolePunchStats{DirectDials: hp.DirectDials, Started: hp.Started,
			Succeeded: hp.Succeeded, Failed: hp.Failed},
	}
	if cfg.NoNAT {
		info.NAT = "port mapping off (--nonat)"
	}
	for _, a := range host.FullAddrs(h) {
		info.ListenAddrs = append(info.ListenAddrs, a.String())
	}
	for _, p := range ni.n.tracker.Peers() {
		if p.Relayed {
			info.RelayedPeers++
		} else {
			info.DirectPeers++
		}
	}
	for _, p := range h.Mux().Protocols() {
		info.Protocols = append(info.Protocols, string(p))
	}
	slices.Sort(info.Protocols)
	return info
}

// dhtMode says what the node's DHT does now: "server" while it answers
// queries, "client", or "off" (--nodht, --connect).
func dhtMode(n *node) string {
	st := n.disc.Stats()
	switch {
	case st.DHTServing:
		return "server"
	case n.cfg.NoDHT || len(n.cfg.connect) > 0:
		return "off"
	}
	return "client"
}

// serviceState says whether a service offered to peers (AutoNAT, relay)
// runs: libp2p runs the relay only while the node is publicly reachable,
// AutoNAT also while reachability is unknown (peers' probes are how a
// public node learns it).
func serviceState(off bool, flag, reachability string, whileUnknown bool) string {
	switch {
	case off:
		return "off: " + flag
	case reachability == "public", whileUnknown && reachability == "unknown":
		return "serving"
	}
	return "idle: reachability " + reachability
}

func (ni *netInfo) NetTotals() rpc.NetTotals {
	t := ni.n.tracker.BandwidthTotals()
	return rpc.NetTotals{BytesRecv: uint64(t.TotalIn), BytesSent: uint64(t.TotalOut)}
}

// addrString prints a miner address.
func addrString(a [dag.AddrLen]byte) string { return keys.Address(a).String() }
