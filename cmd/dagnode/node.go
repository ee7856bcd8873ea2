package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pebbleds "github.com/ipfs/go-ds-pebble"
	corehost "github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/discovery"
	"github.com/dagnode/dagnode/gossip"
	"github.com/dagnode/dagnode/host"
	"github.com/dagnode/dagnode/keys"
	"github.com/dagnode/dagnode/metrics"
	"github.com/dagnode/dagnode/miner"
	"github.com/dagnode/dagnode/rpc"
	"github.com/dagnode/dagnode/syncproto"
	"github.com/dagnode/dagnode/ui"
)

// Files and directories inside the data directory.
const (
	identityFile = "identity.key"
	cookieFile   = ".cookie"
	rpcCertFile  = "rpc.cert"
	rpcKeyFile   = "rpc.key"
	storeDir     = "blocks"
	keysDir      = "keys"
)

// rpcTLSMode is the RPC server's TLS mode from the flags.
func rpcTLSMode(cfg *config) rpc.TLSMode {
	switch {
	case cfg.RPCTLS:
		return rpc.TLSOn
	case cfg.RPCNoTLS:
		return rpc.TLSOff
	}
	return rpc.TLSAuto
}

// rpcCertPath and rpcKeyPath are the RPC server's TLS key pair files.
func (c *config) rpcCertPath() string {
	return orDefault(c.RPCCert, filepath.Join(c.DataDir, rpcCertFile))
}
func (c *config) rpcKeyPath() string {
	return orDefault(c.RPCKey, filepath.Join(c.DataDir, rpcKeyFile))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// version is reported to peers (identify) and operators.
const version = "0.3.0"

// runNode runs the daemon until ctx ends.
func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(args, stdout)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.logLevel)
	slog.SetDefault(log)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	n, err := newNode(ctx, cfg, log, nodeOptions{stop: stop})
	if err != nil {
		return err
	}
	defer n.close()
	if err := n.start(); err != nil {
		return err
	}
	st := n.dag.Status()
	log.Info("dagnode running", "blocks", st.Count, "height", st.MaxHeight, "tips", len(st.Tips), "peer", n.host.ID())
	<-ctx.Done()
	st = n.dag.Status()
	log.Info("dagnode stopping", "blocks", st.Count, "height", st.MaxHeight, "tips", len(st.Tips), "mined", n.miner.Stats().Accepted)
	return nil
}

// node is every part of a running dagnode, wired together. It is the only
// place that sees their concrete types.
type node struct {
	cfg     *config
	log     *slog.Logger
	store   *pebbleds.Datastore
	dag     *dag.DAG
	metrics *metrics.Manager
	tracker *host.Tracker
	host    corehost.Host
	sync    *syncproto.Manager
	gossip  *gossip.Service
	disc    *discovery.Service
	miner   *miner.Miner
	rpc     *rpc.Server
	netInfo *netInfo
	metSrv  *metrics.Server
	ui      *ui.Server // the dashboard (--ui); nil when off
	stop    func()     // asks runNode to shut down (the stop RPC)

	onAccepted  func(hash dag.Hash)
	onValidated func(hash dag.Hash)

	// Blocks to announce again (orphans that gossip ignored, now joined).
	relayQ       chan *dag.Block
	relayDropped atomic.Uint64
	quit         chan struct{}
	closeOnce    sync.Once
	wg           sync.WaitGroup
}

// nodeOptions are test hooks for in-process networks.
type nodeOptions struct {
	syncOpts  []syncproto.Option
	discOpts  []discovery.Option
	trackOpts []host.TrackerOption
	// stop is what the stop RPC calls; nil leaves stop unavailable.
	stop func()
	// onAccepted sees every block the DAG accepts (benchmarks time it);
	// onValidated every block that passed validation and is being forwarded.
	onAccepted  func(hash dag.Hash)
	onValidated func(hash dag.Hash)
	// gossipConfig, if set, adjusts the gossip service's Config before it is
	// built (the hop benchmark wraps the host and Submit to time each stage).
	gossipConfig func(gossip.Config) gossip.Config
}

// newNode builds every part; it opens the store and the host, but starts no
// loops (start does).
func newNode(ctx context.Context, cfg *config, log *slog.Logger, nopts ...nodeOptions) (_ *node, err error) {
	var no nodeOptions
	if len(nopts) > 0 {
		no = nopts[0]
	}
	n := &node{cfg: cfg, log: log, metrics: metrics.New(), onAccepted: no.onAccepted, onValidated: no.onValidated,
		relayQ: make(chan *dag.Block, relayQueue), quit: make(chan struct{}), stop: no.stop}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	priv, created, err := keys.LoadOrCreateIdentity(filepath.Join(cfg.DataDir, identityFile))
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("node identity: %w", err)
	}
	log.Info("dagnode starting", "network", cfg.params.Name, "datadir", cfg.DataDir, "peer", id, "new_identity", created)

	if n.store, err = dag.OpenPebbleStore(filepath.Join(cfg.DataDir, storeDir)); err != nil {
		return nil, err
	}
	if n.dag, err = dag.Open(ctx, n.store, cfg.params, dag.WithLogger(log)); err != nil {
		return nil, err
	}

	n.tracker = host.NewTracker(append([]host.TrackerOption{host.WithLogger(log)}, no.trackOpts...)...)
	n.host, err = host.New(host.Config{
		Network:              cfg.params.Name,
		PrivKey:              priv,
		ListenAddrs:          cfg.Listen,
		HighWater:            cfg.MaxPeers,
		LowWater:             cfg.MaxPeers / 2,
		DisableNATService:    cfg.NoNATService,
		DisableRelayService:  cfg.NoRelayService,
		ForceReachability:    cfg.Reachability,
		StaticRelays:         cfg.relays,
		DisableNAT:           cfg.NoNAT,
		ExternalAddrs:        cfg.ExternalAddr,
		Version:              version,
		Logger:               log,
		PrometheusRegisterer: n.metrics.Registry(),
	}, n.tracker)
	if err != nil {
		return nil, err
	}

	n.sync, err = syncproto.New(syncproto.Config{
		Host:       n.host,
		DAG:        n.dag,
		Peers:      n.tracker,
		OnAccepted: n.accepted,
		Logger:     log,
	}, no.syncOpts...)
	if err != nil {
		return nil, err
	}
	gcfg := gossip.Config{
		Host:      n.host,
		Params:    cfg.params,
		DAG:       n.dag,
		Submit:    n.gossipBlock,
		Penalizer: n.tracker,
		Logger:    log,
	}
	if no.gossipConfig != nil {
		gcfg = no.gossipConfig(gcfg)
	}
	n.gossip, err = gossip.New(gcfg)
	if err != nil {
		return nil, err
	}
	n.disc, err = discovery.New(discovery.Config{
		Host:       n.host,
		Network:    cfg.params.Name,
		Store:      n.store,
		Bootstrap:  cfg.bootstrap,
		Connect:    cfg.connect,
		Persistent: cfg.addPeer,
		DHT:        !cfg.NoDHT,
		MDNS:       cfg.mdns,
		Protect:    n.tracker.Protect,
		Logger:     log,
	}, append([]discovery.Option{discovery.WithDHTMode(cfg.dhtMode)}, no.discOpts...)...)
	if err != nil {
		return nil, err
	}

	addr, err := miningAddress(cfg, log)
	if err != nil {
		return nil, err
	}
	n.miner, err = miner.New(miner.Config{
		DAG:        n.dag,
		Submit:     n.submitBlock,
		MiningAddr: addr,
		Recorder:   n.metrics,
		Logger:     log,
	})
	if err != nil {
		return nil, err
	}
	n.netInfo = newNetInfo(n)
	n.metrics.SetSources(metrics.Sources{
		DAG: func() metrics.DAGSnapshot {
			st := n.dag.Status()
			return metrics.DAGSnapshot{Blocks: st.Count, Tips: len(st.Tips), MaxHeight: st.MaxHeight}
		},
		Sync: func() metrics.SyncSnapshot {
			i := n.sync.SyncInfo()
			backoffs := 0
			for _, b := range i.Backoffs {
				if time.Now().Before(b.Until) {
					backoffs++
				}
			}
			return metrics.SyncSnapshot{Syncing: i.Syncing, TargetHeight: int64(i.Target), BlocksPerSecond: i.BlocksPerSecond,
				Orphans: i.Orphans, OrphanBytes: i.OrphanBytes, OrphanFetches: i.OrphanFetches,
				QueueFull: n.sync.Stats().QueueFull, BackoffPeers: backoffs, LastSessionEnd: i.LastSession.Reason}
		},
		Gossip: func() []metrics.GossipSnapshot {
			st := n.gossip.Stats()
			return []metrics.GossipSnapshot{{Topic: st.Topic, Accepted: st.Accepted, Rejected: st.Rejected, Ignored: st.Ignored,
				Duplicate: st.Duplicate, Orphan: st.Orphan, Dropped: st.Dropped, MeshPeers: st.MeshPeers}}
		},
		Peers: func() []metrics.PeerCount {
			var out []metrics.PeerCount
			for _, p := range n.tracker.Peers() {
				out = append(out, metrics.PeerCount{Direction: strings.ToLower(p.Direction.String()), Transport: p.Transport, N: 1})
			}
			return out
		},
		NAT: func() metrics.NATSnapshot {
			st, hp := n.netInfo.nat.Status(), n.tracker.HolePunchStats()
			return metrics.NATSnapshot{Reachability: st.Reachability, RelayAddrs: len(st.RelayAddrs),
				DirectDials: hp.DirectDials, HolePunchStarted: hp.Started, HolePunchSucceeded: hp.Succeeded, HolePunchFailed: hp.Failed}
		},
	})
	if cfg.Metrics != "" {
		if n.metSrv, err = metrics.NewServer(cfg.Metrics, n.metrics, log); err != nil {
			return nil, err
		}
	}
	if !cfg.NoRPC {
		rcfg := rpc.Config{
			Listen:     cfg.RPCListen,
			User:       cfg.RPCUser,
			Pass:       cfg.RPCPass,
			CookiePath: filepath.Join(cfg.DataDir, cookieFile),
			TLS:        rpcTLSMode(cfg),
			CertPath:   cfg.rpcCertPath(),
			KeyPath:    cfg.rpcKeyPath(),
			MaxClients: cfg.RPCMaxClients,

			AllowedOrigins: cfg.RPCAllowedOrigin,
			Version:        version,
			Chain:          n.dag,
			Submitter:      submitter{n},
			Miner:          n.miner,
			Metrics:        n.metrics,
			Peers:          &peerSource{n},
			Net:            n.netInfo,
			Sync:           syncStatus{n},
			Stop:           n.stop,
			AddrString:     addrString,
			Logger:         log,
		}
		if len(rcfg.Listen) == 0 {
			rcfg.Listen = []string{fmt.Sprintf("127.0.0.1:%d", rpc.DefaultPort(cfg.params.Name))}
		}
		if n.rpc, err = rpc.New(rcfg); err != nil {
			return nil, err
		}
	}
	if cfg.UI != "" {
		if n.ui, err = newUIServer(n); err != nil {
			return nil, err
		}
		if err := registerUIMetrics(n); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// start starts the parts in dependency order.
func (n *node) start() error {
	steps := []struct {
		name  string
		start func() error
	}{
		{"tracker", func() error { return n.tracker.Start(n.host) }},
		{"sync", n.sync.Start},
		{"gossip", n.gossip.Start},
		{"discovery", n.disc.Start},
		{"miner", func() error { n.miner.Start(); return nil }},
		{"relay", func() error { n.wg.Go(n.relayLoop); return nil }},
		{"network info", n.netInfo.start},
		{"metrics server", func() error {
			if n.metSrv == nil {
				return nil
			}
			return n.metSrv.Start()
		}},
		{"rpc server", func() error {
			if n.rpc == nil {
				return nil
			}
			return n.rpc.Start()
		}},
		// After the RPC server: it writes the cookie the dashboard accepts.
		{"ui server", func() error {
			if n.ui == nil {
				return nil
			}
			return n.ui.Start()
		}},
	}
	for _, s := range steps {
		if err := s.start(); err != nil {
			return fmt.Errorf("starting %s: %w", s.name, err)
		}
	}
	if n.cfg.Generate {
		workers := n.cfg.GenProcLimit
		if workers == 0 {
			workers = runtime.NumCPU()
		}
		if err := n.miner.SetGenerate(true, workers); err != nil {
			return err
		}
	}
	return nil
}

// close shuts down in reverse order: the dashboard, the RPC and metrics
// servers, the miner (no new blocks), then discovery (no new dials), the host
// (it owns in-flight stream handlers and connections), gossip, sync, the
// tracker, and the store last, flushed. Every part's Close is idempotent and
// safe before Start, so close also cleans up after a failed newNode or start.
func (n *node) close() {
	if n.ui != nil {
		n.ui.Close()
	}
	if n.rpc != nil {
		n.rpc.Close() // cancels in-flight calls, such as generate
	}
	if n.metSrv != nil {
		n.metSrv.Close()
	}
	if n.miner != nil {
		n.miner.Close()
	}
	if n.netInfo != nil {
		n.netInfo.close()
	}
	n.closeOnce.Do(func() { close(n.quit) })
	n.wg.Wait()
	if n.disc != nil {
		n.disc.Close()
	}
	n.closeHost()
	if n.gossip != nil {
		n.gossip.Close()
	}
	if n.sync != nil {
		n.sync.Close()
	}
	if n.tracker != nil {
		n.tracker.Close()
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			n.log.Error("closing store", "err", err)
		}
		n.store = nil
		n.log.Info("store closed")
	}
}

func (n *node) closeHost() {
	if n.host == nil {
		return
	}
	if err := n.host.Close(); err != nil {
		n.log.Error("closing host", "err", err)
	}
	n.host = nil
}

// submitBlock is the miner's way into the DAG: the same path as blocks from
// the network (the sync manager). A block that passes every check is
// announced at once, while the sync manager writes it; submitBlock returns
// only when the block is on disk (or refused), so generate counts accepted
// blocks only.
func (n *node) submitBlock(ctx context.Context, b *dag.Block) error {
	hash, err := n.dag.CheckBlock(b)
	if err != nil {
		return err
	}
	if n.onValidated != nil {
		n.onValidated(hash)
	}
	if err := n.gossip.Publish(ctx, b); err != nil && !errors.Is(err, context.Canceled) {
		n.log.Warn("publishing mined block", "hash", b.Hash(), "err", err)
	}
	return n.sync.Submit(ctx, "", b)
}

// gossipBlock is the gossip validator's way into the DAG. It never waits
// for the sync manager or the disk: a block that passes every check is
// queued for the sync manager, which writes it in the background, and
// accepted (so forwarded) at once, also in sync mode; an orphan is queued
// for the sync manager, which keeps it and fetches its parents from the
// sender (in sync mode it is dropped: the session brings what we lack), and
// ignored. A full queue (or a closing manager) defers the block without
// blame: not forwarded, as the node cannot store it now; sync brings it.
// The validator has decoded and sanity-checked the block (dag.CheckRaw), so
// only the checks that need the DAG run here, and the writer commits the
// bytes that came without hashing or encoding the block again.
func (n *node) gossipBlock(_ context.Context, from peer.ID, c dag.Checked) error {
	err := n.dag.CheckConnect(c)
	var mp *dag.MissingParentsError
	switch {
	case err == nil:
		if err := n.sync.Enqueue(from, c); err != nil {
			return fmt.Errorf("%w: %w", gossip.ErrDeferred, err)
		}
		if n.onValidated != nil {
			n.onValidated(c.Hash())
		}
	case errors.As(err, &mp):
		if err := n.sync.EnqueueOrphan(from, c); err != nil {
			return fmt.Errorf("%w: %w", gossip.ErrDeferred, err)
		}
	}
	return err
}

// relayQueue bounds blocks waiting to be re-announced; a full queue drops
// (the block still reaches peers by sync).
const relayQueue = 256

// accepted is called from the sync manager loop for every block added; it
// must not block.
func (n *node) accepted(b *dag.Block, hash dag.Hash, from peer.ID, relay bool) {
	if n.onAccepted != nil {
		n.onAccepted(hash)
	}
	source := metrics.SourceGossip
	switch {
	case from == "":
		source = metrics.SourceMined
	case n.sync.Syncing():
		source = metrics.SourceSync
	}
	n.metrics.BlockAccepted(source)
	if n.ui != nil {
		n.publishBlock(b, hash, from, source)
	}
	if relay {
		select {
		case n.relayQ <- b:
		default:
			n.relayDropped.Add(1)
		}
	}
	if from != "" {
		n.log.Debug("block accepted", "hash", hash, "peer", from)
	}
}

// relayLoop announces joined orphans on gossip.
func (n *node) relayLoop() {
	for {
		select {
		case <-n.quit:
			return
		case b := <-n.relayQ:
			ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
			if err := n.gossip.Publish(ctx, b); err != nil {
				n.log.Debug("relaying joined orphan", "hash", b.Hash(), "err", err)
			}
			cancel()
		}
	}
}

// relayTimeout bounds handing one block to the gossip router.
const relayTimeout = 5 * time.Second

// miningAddress returns the configured address, or the node's default one
// (made on first use) when mining without --miningaddr.
func miningAddress(cfg *config, log *slog.Logger) ([dag.AddrLen]byte, error) {
	if cfg.miningAddr != nil {
		return *cfg.miningAddr, nil
	}
	a, created, err := keys.LoadOrCreateDefaultMiningAddress(filepath.Join(cfg.DataDir, keysDir), cfg.params.AddrPrefix)
	if err != nil {
		var zero [dag.AddrLen]byte
		return zero, err
	}
	if cfg.Generate || created {
		log.Info("mining address", "address", a.String(), "new", created)
	}
	return a, nil
}
