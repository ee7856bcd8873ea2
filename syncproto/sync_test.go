package syncproto

import (
	"bufio"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

// genDAG builds n blocks of a random multi-parent DAG.
func genDAG(t testing.TB, seed uint64, n int) []*dag.Block {
	t.Helper()
	g, err := dagtest.NewGenerator(dag.RegTestParams, seed)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := g.Build(n, 5)
	if err != nil {
		t.Fatal(err)
	}
	return blocks
}

// load imports blocks into a node's DAG directly (setup, not sync).
func load(t testing.TB, n *testNode, blocks []*dag.Block) {
	t.Helper()
	for i := 0; i < len(blocks); i += 500 {
		for _, err := range n.d.ProcessBlocks(context.Background(), blocks[i:min(i+500, len(blocks))]) {
			if err != nil && !errors.Is(err, dag.ErrDuplicateBlock) {
				t.Fatal(err)
			}
		}
	}
}

// sameDAG reports whether two DAGs hold the same blocks and tips.
func sameDAG(a, b *dag.DAG) bool {
	sa, sb := a.Status(), b.Status()
	if sa.Count != sb.Count || sa.MaxHeight != sb.MaxHeight || !slices.Equal(sa.Tips, sb.Tips) {
		return false
	}
	for h := int64(0); h <= sa.MaxHeight; h++ {
		if !slices.Equal(a.HashesAtHeight(h), b.HashesAtHeight(h)) {
			return false
		}
	}
	return true
}

func TestLateNodeSyncs10kDAG(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 blocks")
	}
	blocks := genDAG(t, 42, 10_000)
	server := newTestNode(t, dag.RegTestParams, fastSync...)
	load(t, server, blocks)
	late := newDiskNode(t, dag.RegTestParams, fastSync...)
	connect(t, late, server)
	eventually(t, "the late node to sync", func() bool { return late.d.Count() == server.d.Count() })
	eventually(t, "sync mode to end", func() bool { return !late.m.SyncInfo().Syncing })
	if !sameDAG(late.d, server.d) {
		t.Fatal("synced DAG differs from the server's")
	}
	if err := late.d.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	if late.peers.penalized(server.h.ID(), nil) {
		t.Fatal("honest server penalised")
	}
	if got := server.m.Stats().BlocksServed; got < 10_000 {
		t.Fatalf("server served %d blocks", got)
	}
}

func TestSyncPeerKilledMidSync(t *testing.T) {
	blocks := genDAG(t, 7, 3000)
	// Slow servers, so the first one can be killed half way.
	b := newTestNode(t, dag.RegTestParams, append(fastSync, WithServeRate(1500))...)
	c := newTestNode(t, dag.RegTestParams, append(fastSync, WithServeRate(1500))...)
	load(t, b, blocks)
	load(t, c, blocks)
	a := newTestNode(t, dag.RegTestParams, fastSync...)
	connect(t, a, b)
	connect(t, a, c)
	eventually(t, "sync to start", func() bool { return a.m.SyncInfo().Syncing && a.d.Count() > 300 })
	first := a.m.SyncInfo().SyncPeer
	victim, other := b, c
	if first == c.h.ID() {
		victim, other = c, b
	}
	victim.m.Close()
	victim.h.Close()
	eventually(t, "sync to complete from the other peer", func() bool { return a.d.Count() == other.d.Count() })
	if !sameDAG(a.d, other.d) {
		t.Fatal("DAG differs after switching sync peer")
	}
	if a.m.Stats().Sessions < 2 {
		t.Fatalf("%d sessions, want a second one with the other peer", a.m.Stats().Sessions)
	}
}

func TestElectionPrefersHeavierOnTie(t *testing.T) {
	light := genDAG(t, 1, 40)
	heavy := genDAG(t, 2, 120)
	b := newTestNode(t, dag.RegTestParams, fastSync...)
	c := newTestNode(t, dag.RegTestParams, fastSync...)
	load(t, b, light)
	load(t, c, heavy)
	a := newTestNode(t, dag.RegTestParams, append(fastSync, WithElectionWait(2*time.Second))...)
	connect(t, a, b)
	connect(t, a, c)
	eventually(t, "the first session", func() bool { return a.m.SyncInfo().Syncing || a.d.Count() > 1 })
	eventually(t, "the union of both DAGs", func() bool { return a.d.Count() == 1+len(light)+len(heavy) })
	// The first blocks to arrive came from the heavier DAG: a block of the
	// heavy DAG at height 1 is known, and the first session's peer was c.
	if got := a.m.Stats().Sessions; got < 2 {
		t.Fatalf("%d sessions, want one per DAG", got)
	}
	if first := a.firstSyncPeer(); first != any(c.h.ID()) {
		t.Fatalf("first sync peer %s, want the heavier %s", first, c.h.ID())
	}
}

func TestMajorityBeatsWork(t *testing.T) {
	common := genDAG(t, 3, 40)
	heavy := genDAG(t, 4, 120)
	b1 := newTestNode(t, dag.RegTestParams, fastSync...)
	b2 := newTestNode(t, dag.RegTestParams, fastSync...)
	c := newTestNode(t, dag.RegTestParams, fastSync...)
	load(t, b1, common)
	load(t, b2, common)
	load(t, c, heavy)
	a := newTestNode(t, dag.RegTestParams, append(fastSync, WithElectionWait(3*time.Second))...)
	connect(t, a, b1)
	connect(t, a, b2)
	connect(t, a, c)
	eventually(t, "the union", func() bool { return a.d.Count() == 1+len(common)+len(heavy) })
	if first := a.firstSyncPeer(); first != any(b1.h.ID()) && first != any(b2.h.ID()) {
		t.Fatalf("first sync peer %s, want one of the two agreeing peers", first)
	}
}

func TestOrphanParentsFetchedFromSender(t *testing.T) {
	blocks := genDAG(t, 9, 30)
	b := newTestNode(t, dag.RegTestParams, WithSampleInterval(time.Hour)) // no sampling: only the orphan path
	load(t, b, blocks)
	a := newTestNode(t, dag.RegTestParams, WithSampleInterval(time.Hour), WithElectionWait(time.Hour))
	connect(t, a, b)
	eventually(t, "handshake", func() bool { _, ok := a.peers.status(b.h.ID()); return ok })
	last := blocks[len(blocks)-1]
	var mp *dag.MissingParentsError
	if err := a.m.Submit(context.Background(), b.h.ID(), last); !errors.As(err, &mp) {
		t.Fatalf("submit: %v, want MissingParentsError", err)
	}
	eventually(t, "the orphan to connect", func() bool { return a.d.HaveBlock(last.Hash()) })
	if a.m.Stats().Orphans != 0 {
		t.Fatal("orphans left behind")
	}
}

func TestPartitionHeals(t *testing.T) {
	a1, a2 := newTestNode(t, dag.RegTestParams, fastSync...), newTestNode(t, dag.RegTestParams, fastSync...)
	b1, b2 := newTestNode(t, dag.RegTestParams, fastSync...), newTestNode(t, dag.RegTestParams, fastSync...)
	connect(t, a1, a2)
	connect(t, b1, b2)
	left, right := genDAG(t, 11, 200), genDAG(t, 12, 300)
	ctx := context.Background()
	for _, blk := range left {
		if err := a1.m.Submit(ctx, "", blk); err != nil {
			t.Fatal(err)
		}
	}
	for _, blk := range right {
		if err := b1.m.Submit(ctx, "", blk); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "each half to agree", func() bool { return sameDAG(a1.d, a2.d) && sameDAG(b1.d, b2.d) })
	connect(t, a2, b2) // heal
	want := 1 + len(left) + len(right)
	eventually(t, "all four to converge on the union", func() bool {
		return a1.d.Count() == want && a2.d.Count() == want && b1.d.Count() == want && b2.d.Count() == want
	})
	if !sameDAG(a1.d, b1.d) || !sameDAG(a2.d, b2.d) {
		t.Fatal("converged counts but different DAGs")
	}
}

// badServer is a peer that answers status honestly (claiming a tip we lack)
// and misbehaves on every other request.
func badServer(t *testing.T, claim *dag.Block, misbehave func(s network.Stream, req byte, payload []byte)) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	p := dag.RegTestParams
	st := &Status{Genesis: p.GenesisHash, MaxHeight: 5, Count: 6, TotalWork: dag.Work(p.PowLimitBits), Tips: []dag.Hash{claim.Hash()}, TipHeights: []uint64{5}}
	h.SetStreamHandler(ProtocolID(p.Name), func(s network.Stream) {
		r := bufio.NewReader(s)
		typ, payload, err := readFrame(r, MsgStatus, MsgGetBlocks, MsgGetData, MsgGetHeight)
		if err != nil {
			s.Reset()
			return
		}
		if typ == MsgStatus {
			writeFrame(s, MsgStatus, st.encode())
			s.Close()
			return
		}
		misbehave(s, typ, payload)
	})
	return h
}

func TestBadSyncPeers(t *testing.T) {
	p := dag.RegTestParams
	good := genDAG(t, 21, 5)
	claim := good[len(good)-1]
	badPoW := dagtest.InvalidBlocks(p, time.Now())
	var powBlock *dag.Block
	for _, c := range badPoW {
		if c.Code == dag.ErrBadPoW {
			powBlock = c.Block
		}
	}
	invOf := func(bs ...*dag.Block) []InvEntry {
		var inv []InvEntry
		for _, b := range bs {
			inv = append(inv, InvEntry{Type: InvTypeBlock, Hash: b.Hash(), Height: 1})
		}
		return inv
	}
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	// Every request other than status gets one of these answers.
	cases := map[string]func(s network.Stream, req byte, payload []byte){
		"unrequested block": func(s network.Stream, req byte, _ []byte) {
			switch req {
			case MsgGetHeight:
				writeFrame(s, MsgHashes, encodeHashes(nil))
			case MsgGetBlocks:
				writeFrame(s, MsgInv, encodeInv(invOf(good[0])))
			case MsgGetData:
				writeFrame(s, MsgBlock, good[1].Encode()) // not what was asked
				writeFrame(s, MsgNotFound, encodeHashes(nil))
			}
			s.Close()
		},
		"block failing PoW": func(s network.Stream, req byte, _ []byte) {
			switch req {
			case MsgGetHeight:
				writeFrame(s, MsgHashes, encodeHashes(nil))
			case MsgGetBlocks:
				writeFrame(s, MsgInv, encodeInv(invOf(powBlock)))
			case MsgGetData:
				writeFrame(s, MsgBlock, powBlock.Encode())
				writeFrame(s, MsgNotFound, encodeHashes(nil))
			}
			s.Close()
		},
		"oversize frame": func(s network.Stream, _ byte, _ []byte) {
			s.Write([]byte{0xff, 0xff, 0xff, 0x0f, MsgHashes})
			s.Close()
		},
		"garbage bytes": func(s network.Stream, _ byte, _ []byte) {
			s.Write([]byte{0x04, 0xee, 0xde, 0xad, 0xbe})
			s.Close()
		},
		"inv over the limit": func(s network.Stream, req byte, _ []byte) {
			switch req {
			case MsgGetHeight:
				writeFrame(s, MsgHashes, encodeHashes(nil))
			default:
				inv := make([]InvEntry, MaxInvEntries+1)
				for i := range inv {
					inv[i] = InvEntry{Type: InvTypeBlock, Height: 1}
					inv[i].Hash[0], inv[i].Hash[1] = byte(i), byte(i>>8)
				}
				writeFrame(s, MsgInv, encodeInv(inv)) // over the frame limit too
			}
			s.Close()
		},
		"never answers": func(s network.Stream, _ byte, _ []byte) {
			// Hold the stream open without a word until the test ends.
			<-hang
			s.Reset()
		},
	}
	for name, misbehave := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bad := badServer(t, claim, misbehave)
			a := newTestNode(t, p, append(fastSync, WithStallTimeout(time.Second))...)
			before := a.d.Status()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := a.h.Connect(ctx, bad.Peerstore().PeerInfo(bad.ID())); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the bad peer to be penalised", func() bool { return a.peers.penalized(bad.ID(), nil) })
			after := a.d.Status()
			if after.Count != before.Count || !slices.Equal(after.Tips, before.Tips) {
				t.Fatalf("bad data changed the DAG: %d -> %d blocks", before.Count, after.Count)
			}
			// Healthy: still accepts a good block.
			if err := a.m.Submit(context.Background(), "", good[0]); err != nil {
				t.Fatalf("node unhealthy after the bad peer: %v", err)
			}
		})
	}
}

// firstSyncPeer records the first sync peer seen by SetSyncPeer.
func (n *testNode) firstSyncPeer() any {
	n.peers.mu.Lock()
	defer n.peers.mu.Unlock()
	return n.peers.firstSync
}
