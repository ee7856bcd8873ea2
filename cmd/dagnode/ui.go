package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/rpc"
	"github.com/dagnode/dagnode/ui"
)

// The dashboard (--ui) declares what it shows as ui.Source; uiSource gives
// it the node's parts, through the RPC adapters where they exist, so that
// the dashboard and the RPC methods never disagree.
var (
	_ ui.Source   = uiSource{}
	_ ui.Colourer = uiSource{}
)

// uiReadTimeout bounds the store reads behind the dashboard's block
// details and its first picture.
const uiReadTimeout = 5 * time.Second

// newUIServer builds the dashboard server of --ui. Off loopback it serves
// TLS with the RPC server's certificate (made on first use, as for RPC);
// besides its token it accepts the RPC credentials as basic auth, read at
// its start (after the RPC server's, which writes the cookie).
func newUIServer(n *node) (*ui.Server, error) {
	cfg := n.cfg
	return ui.New(ui.Config{
		Listen: cfg.UI,
		TLS: func(host string) (*tls.Config, error) {
			cert, created, err := rpc.LoadOrCreateCert(cfg.rpcCertPath(), cfg.rpcKeyPath(), []string{host})
			if err != nil {
				return nil, err
			}
			if created {
				n.log.Info("ui TLS certificate created", "cert", cfg.rpcCertPath(), "key", cfg.rpcKeyPath())
			}
			return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
		},
		Credentials: func() (string, string, bool) {
			switch {
			case cfg.NoRPC:
				return "", "", false
			case cfg.RPCUser != "":
				return cfg.RPCUser, cfg.RPCPass, true
			}
			user, pass, err := rpc.ReadCookie(filepath.Join(cfg.DataDir, cookieFile))
			return user, pass, err == nil
		},
		Source:  uiSource{n: n, started: time.Now()},
		Network: cfg.params.Name,
		Logger:  n.log,
	})
}

// registerUIMetrics exports the dashboard stream's drops to Prometheus.
func registerUIMetrics(n *node) error {
	for _, c := range []struct {
		name, help string
		f          func() float64
	}{
		{"dagnode_ui_events_dropped_total", "Dashboard stream events dropped because a page's queue was full or it awaited a resync.",
			func() float64 { return float64(n.ui.Stats().Dropped) }},
		{"dagnode_ui_resyncs_total", "Snapshots sent to dashboard pages that had fallen behind.",
			func() float64 { return float64(n.ui.Stats().Resyncs) }},
		{"dagnode_ui_blocks_lost_total", "Accepted blocks the dashboard dropped before drawing them (it had fallen behind).",
			func() float64 { return float64(n.ui.Stats().Lost) }},
	} {
		if err := n.metrics.RegisterCounterFunc(c.name, c.help, c.f); err != nil {
			return err
		}
	}
	return nil
}

// publishBlock hands an accepted block to the dashboard. It is called from
// the sync manager's loop and costs it one closure and a non-blocking
// send: the block is described later, on the dashboard's goroutine.
func (n *node) publishBlock(b *dag.Block, hash dag.Hash, from peer.ID, source string) {
	at := time.Now()
	n.ui.Publish(func() ui.Block {
		out := ui.Block{
			Hash: hash.String(), Parents: dag.HashStrings(b.Header.Parents), Time: b.Header.Timestamp,
			Miner: addrString(b.Body.MinerAddr), Source: source, Arrived: at.UnixMilli(),
		}
		if from != "" {
			out.Peer = from.String()
		}
		if info, ok := n.dag.BlockInfo(hash); ok {
			out.Height = info.Height
			out.Colour = uiColour(info.IsBlue, info.IsInChain, info.BlueScore)
		}
		return out
	})
}

func uiColour(blue, inChain bool, blueScore uint64) ui.Colour {
	return ui.Colour{Blue: &blue, InChain: inChain, BlueScore: blueScore}
}

// Colours gives the dashboard the blocks' GHOSTDAG colours (ui.Colourer).
func (s uiSource) Colours(hashes []string) []ui.Colour {
	hs := make([]dag.Hash, len(hashes))
	for i, h := range hashes {
		hs[i], _ = dag.ParseHash(h) // a malformed hash is unknown: the zero Colour
	}
	out := make([]ui.Colour, len(hashes))
	for i, c := range s.n.dag.Colours(hs) {
		if c.Known {
			out[i] = uiColour(c.IsBlue, c.IsInChain, c.BlueScore)
		}
	}
	return out
}

// uiSource adapts the node's parts to the dashboard.
type uiSource struct {
	n       *node
	started time.Time
}

func (s uiSource) Status() ui.Status {
	st := s.n.dag.Status()
	return ui.Status{
		Network: s.n.cfg.params.Name, PeerID: s.n.host.ID().String(), Version: version, Started: s.started.UnixMilli(),
		Blocks: st.Count, MaxHeight: st.MaxHeight, Tips: dag.HashStrings(st.Tips),
	}
}

func (s uiSource) Peers() []ui.Peer {
	peers := (&peerSource{s.n}).Peers()
	out := make([]ui.Peer, 0, len(peers))
	for _, p := range peers {
		up := ui.Peer{
			ID: p.ID, Direction: p.Direction, Transport: p.Transport, Relayed: p.Relayed, Conns: len(p.Conns),
			Agent: p.Agent, LatencyMS: float64(p.Latency) / float64(time.Millisecond), ConnectedAt: unixMilli(p.ConnectedAt),
			BytesSent: p.BytesSent, BytesRecv: p.BytesRecv, Score: p.Score, Banned: p.Banned, SyncPeer: p.SyncPeer,
		}
		if len(p.Addrs) > 0 {
			up.Addr = p.Addrs[0]
		}
		if p.Banned {
			up.BanUntil = unixMilli(p.BanUntil)
		}
		if p.Status != nil {
			up.HasStatus, up.Blocks, up.MaxHeight, up.Tips = true, p.Status.Count, p.Status.MaxHeight, len(p.Status.Tips)
		}
		if hp := p.HolePunch; hp != nil {
			up.HolePunch = &ui.HolePunch{DirectDials: uint64(hp.DirectDials), Started: uint64(hp.Started),
				Succeeded: uint64(hp.Succeeded), Failed: uint64(hp.Failed), LastError: hp.LastError}
		}
		out = append(out, up)
	}
	return out
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func (s uiSource) Net() ui.Net {
	ni := s.n.netInfo.NetworkInfo()
	bw := s.n.tracker.BandwidthTotals()
	return ui.Net{
		Reachability: ni.Reachability, ReachabilityBasis: ni.ReachabilityBasis, DHTMode: ni.DHTMode, NAT: ni.NAT,
		NATService: ni.NATService, RelayService: ni.RelayService,
		ListenAddrs: ni.ListenAddrs, ObservedAddrs: ni.ObservedAddrs, RelayAddrs: ni.RelayAddrs,
		DirectPeers: ni.DirectPeers, RelayedPeers: ni.RelayedPeers,
		HolePunch: ui.HolePunch{DirectDials: ni.HolePunch.DirectDials, Started: ni.HolePunch.Started,
			Succeeded: ni.HolePunch.Succeeded, Failed: ni.HolePunch.Failed},
		BytesRecv: uint64(max(bw.TotalIn, 0)), BytesSent: uint64(max(bw.TotalOut, 0)), RateRecv: bw.RateIn, RateSent: bw.RateOut,
	}
}

func (s uiSource) Sync() ui.Sync {
	i := syncStatus{s.n}.SyncInfo()
	e := i.LastSession
	out := ui.Sync{
		Syncing: i.Syncing, SyncPeer: i.SyncPeer, Blocks: i.Blocks, Target: i.Target, Done: i.Done,
		BlocksPerSecond: i.BlocksPerSecond, ETASeconds: i.ETA.Seconds(), Sessions: i.Sessions,
		Orphans: i.Orphans, OrphanBytes: i.OrphanBytes, OrphanFetches: i.OrphanFetches,
		LastSession: ui.SyncSession{Peer: e.Peer, Reason: e.Reason, Err: e.Err, Blocks: e.Blocks,
			Seconds: e.Elapsed.Seconds(), At: unixMilli(e.At)},
	}
	now := time.Now()
	for _, b := range i.Backoffs {
		if now.Before(b.Until) {
			out.Backoffs++
		}
	}
	return out
}

func (s uiSource) Mining() ui.Mining {
	m := s.n.metrics.BlockMetrics()
	g := s.n.gossip.Stats()
	times := m.BlkGenTimes
	if len(times) > ui.MaxSolveTimes {
		times = times[len(times)-ui.MaxSolveTimes:]
	}
	return ui.Mining{
		Generating: s.n.miner.Generating(), Workers: s.n.miner.Workers(), HashesPerSecond: s.n.miner.HashesPerSecond(),
		BlocksMined: m.BlkGenCount, SolveTimesMS: times,
		Gossip: ui.Gossip{Accepted: g.Accepted, Rejected: g.Rejected, Ignored: g.Ignored, Duplicate: g.Duplicate,
			Orphan: g.Orphan, Dropped: g.Dropped, MeshPeers: g.MeshPeers},
	}
}

// RecentBlocks returns the tips and the blocks of the highest heights, at
// most limit.
func (s uiSource) RecentBlocks(limit int) []ui.Block {
	d := s.n.dag
	seen := make(map[dag.Hash]bool, limit)
	hashes := make([]dag.Hash, 0, limit)
	add := func(h dag.Hash) {
		if !seen[h] && len(hashes) < limit {
			seen[h] = true
			hashes = append(hashes, h)
		}
	}
	for _, h := range d.Tips() {
		add(h)
	}
	for height := d.MaxHeight(); height >= 0 && len(hashes) < limit; height-- {
		for _, h := range d.HashesAtHeight(height) {
			add(h)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), uiReadTimeout)
	defer cancel()
	out := make([]ui.Block, 0, len(hashes))
	for _, h := range hashes {
		info, ok := d.BlockInfo(h)
		if !ok {
			continue
		}
		b := ui.Block{Hash: h.String(), Parents: dag.HashStrings(info.Parents), Height: info.Height, Time: info.Timestamp, Source: ui.SourceStored,
			Colour: uiColour(info.IsBlue, info.IsInChain, info.BlueScore)}
		if blk, err := d.Block(ctx, h); err == nil {
			b.Miner = addrString(blk.Body.MinerAddr)
		}
		out = append(out, b)
	}
	return out
}

func (s uiSource) BlockDetails(hash string) (ui.BlockDetails, bool) {
	h, err := dag.ParseHash(hash)
	if err != nil {
		return ui.BlockDetails{}, false
	}
	d := s.n.dag
	info, ok := d.BlockInfo(h)
	if !ok {
		return ui.BlockDetails{}, false
	}
	out := ui.BlockDetails{
		Block: ui.Block{Hash: hash, Parents: dag.HashStrings(info.Parents), Height: info.Height, Time: info.Timestamp,
			Source: ui.SourceStored, Colour: uiColour(info.IsBlue, info.IsInChain, info.BlueScore)},
		Children: dag.HashStrings(info.Children), Bits: fmt.Sprintf("%08x", info.Bits),
	}
	ctx, cancel := context.WithTimeout(context.Background(), uiReadTimeout)
	defer cancel()
	if blk, err := d.Block(ctx, h); err == nil {
		out.Miner = addrString(blk.Body.MinerAddr)
		out.Nonce = fmt.Sprint(blk.Header.Nonce)
		out.PayloadSize = len(blk.Body.Payload)
		out.Size = blk.EncodedSize()
	}
	return out, true
}
