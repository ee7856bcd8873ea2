package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/keys"
	"github.com/dagnode/dagnode/metrics"
	"github.com/dagnode/dagnode/miner"
)

// Files and directories inside the data directory.
const (
	identityFile = "identity.key"
	storeDir     = "blocks"
	keysDir      = "keys"
)

// runNode runs the daemon until ctx ends.
func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(args, stdout)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.logLevel)
	slog.SetDefault(log)

	priv, created, err := keys.LoadOrCreateIdentity(filepath.Join(cfg.DataDir, identityFile))
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return fmt.Errorf("node identity: %w", err)
	}
	log.Info("dagnode starting", "network", cfg.params.Name, "datadir", cfg.DataDir, "peer", id, "new_identity", created)

	store, err := dag.OpenPebbleStore(filepath.Join(cfg.DataDir, storeDir))
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing store", "err", err)
		}
		log.Info("store closed")
	}()
	d, err := dag.Open(ctx, store, cfg.params, dag.WithLogger(log))
	if err != nil {
		return err
	}
	mtr := metrics.New()

	addr, err := miningAddress(cfg, log)
	if err != nil {
		return err
	}
	n := &node{dag: d, log: log}
	m, err := miner.New(miner.Config{
		DAG:        d,
		Submit:     n.submitBlock,
		MiningAddr: addr,
		Recorder:   mtr,
		Logger:     log,
	})
	if err != nil {
		return err
	}
	m.Start()
	defer m.Close() // runs before the store closes
	if cfg.Generate {
		workers := cfg.GenProcLimit
		if workers == 0 {
			workers = runtime.NumCPU()
		}
		if err := m.SetGenerate(true, workers); err != nil {
			return err
		}
	}

	st := d.Status()
	log.Info("dagnode running", "blocks", st.Count, "height", st.MaxHeight, "tips", len(st.Tips))
	<-ctx.Done()
	st = d.Status()
	ms := m.Stats()
	log.Info("dagnode stopping", "blocks", st.Count, "height", st.MaxHeight, "tips", len(st.Tips), "mined", ms.Accepted)
	return nil
}

// miningAddress returns the configured address, or the node's default one
// (made on first use) when mining without --miningaddr.
func miningAddress(cfg *config, log *slog.Logger) ([dag.AddrLen]byte, error) {
	if cfg.miningAddr != nil {
		return *cfg.miningAddr, nil
	}
	var zero [dag.AddrLen]byte
	if !cfg.Generate {
		// Not mining yet: a default address is made when first needed.
		zero[0] = cfg.params.AddrPrefix
		return zero, nil
	}
	a, created, err := keys.LoadOrCreateDefaultMiningAddress(filepath.Join(cfg.DataDir, keysDir), cfg.params.AddrPrefix)
	if err != nil {
		return zero, err
	}
	log.Info("mining to the node's default address", "address", a.String(), "new", created)
	return a, nil
}

// node holds the parts the submit path needs.
type node struct {
	dag *dag.DAG
	log *slog.Logger
}

// submitBlock is the one path into the DAG for new blocks, mined here or
// (later) received from peers.
func (n *node) submitBlock(ctx context.Context, b *dag.Block) error {
	return n.dag.ProcessBlock(ctx, b)
}
