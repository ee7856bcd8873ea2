package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
	"github.com/dagnode/dagnode/gossip"
	"github.com/dagnode/dagnode/syncproto"
)

// noPeers is a peer tracker that does nothing.
type noPeers struct{}

func (noPeers) Penalize(peer.ID, error)       {}
func (noPeers) SetStatus(peer.ID, dag.Status) {}
func (noPeers) SetSyncPeer(peer.ID, bool)     {}

// TestInvalidGossipPeerBanned: a peer publishing invalid blocks on the block
// topic is scored down by the real peer tracker, banned and disconnected,
// while honest nodes keep exchanging blocks.
func TestInvalidGossipPeerBanned(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	a := startNode(t, "regtest", filepath.Join(home, "a"))
	b := startNode(t, "regtest", filepath.Join(home, "b"), "--bootstrap", p2pAddr(a))

	// The bad peer: plain GossipSub on our topic, accepting anything.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bad, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	// It passes the status handshake (a real sync manager on its own DAG),
	// so only its gossip is bad.
	badDAG, err := dag.Open(ctx, dssync.MutexWrap(ds.NewMapDatastore()), dag.RegTestParams)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := syncproto.New(syncproto.Config{Host: bad, DAG: badDAG, Peers: noPeers{}, Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	if err := sm.Start(); err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	ps, err := pubsub.NewGossipSub(ctx, bad, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor())
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(gossip.TopicName("regtest"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Connect(ctx, peer.AddrInfo{ID: a.host.ID(), Addrs: a.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the bad peer to see a on the topic", func() bool {
		for _, p := range topic.ListPeers() {
			if p == a.host.ID() {
				return true
			}
		}
		return false
	})
	var badPoW *dag.Block
	for _, c := range dagtest.InvalidBlocks(dag.RegTestParams, time.Now()) {
		if c.Code == dag.ErrBadPoW {
			badPoW = c.Block
		}
	}
	if err := topic.Publish(ctx, badPoW.Encode()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the bad peer to be banned and dropped", func() bool {
		return a.tracker.IsBanned(bad.ID()) && a.host.Network().Connectedness(bad.ID()) != network.Connected
	})
	if a.dag.HaveBlock(badPoW.Hash()) || b.dag.HaveBlock(badPoW.Hash()) {
		t.Fatal("the invalid block entered a DAG")
	}
	if a.gossip.Stats().Rejected == 0 {
		t.Fatal("no rejection counted")
	}
	// Honest traffic continues.
	hs, err := b.miner.Generate(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "b's blocks on a", func() bool { return a.dag.HaveBlock(hs[0]) && a.dag.HaveBlock(hs[1]) })
	// And the bad peer cannot come back while banned.
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	defer ccancel()
	_ = bad.Connect(cctx, peer.AddrInfo{ID: a.host.ID(), Addrs: a.host.Addrs()})
	waitUntil(t, 10*time.Second, "the banned peer's reconnection to be refused", func() bool {
		return a.host.Network().Connectedness(bad.ID()) != network.Connected
	})
}
