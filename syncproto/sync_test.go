package syncproto

import (
	"bufio"
	"context"
	"errors"
	"math/big"
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

// TestSyncPeerKilledMidSync: when the sync peer dies mid-session, the next
// session, with the other peer that has the blocks, starts within a second
// (default client options) and completes the DAG.
func TestSyncPeerKilledMidSync(t *testing.T) {
	blocks := genDAG(t, 7, 3000)
	// Slow servers, so the first one can be killed half way; the client
	// runs with the default options.
	b := newTestNode(t, dag.RegTestParams, WithServeRate(1500))
	c := newTestNode(t, dag.RegTestParams, WithServeRate(1500))
	load(t, b, blocks)
	load(t, c, blocks)
	a := newTestNode(t, dag.RegTestParams)
	connect(t, a, b)
	connect(t, a, c)
	eventually(t, "sync to start", func() bool { return a.m.SyncInfo().Syncing && a.d.Count() > 300 })
	first := a.m.SyncInfo().SyncPeer
	victim, other := b, c
	if first == c.h.ID() {
		victim, other = c, b
	}
	killed := time.Now()
	victim.m.Close()
	victim.h.Close()
	eventually(t, "a session with the other peer", func() bool { return a.m.SyncInfo().SyncPeer == other.h.ID() })
	switched := time.Since(killed)
	t.Logf("the next session started %v after the sync peer died", switched.Round(time.Millisecond))
	if switched > time.Second {
		t.Errorf("the next session started %v after the sync peer died, want within a second", switched)
	}
	eventually(t, "sync to complete from the other peer", func() bool { return a.d.Count() == other.d.Count() })
	if !sameDAG(a.d, other.d) {
		t.Fatal("DAG differs after switching sync peer")
	}
	if a.m.Stats().Sessions < 2 {
		t.Fatalf("%d sessions, want a second one with the other peer", a.m.Stats().Sessions)
	}
}

// connectedIdle connects a to every peer while nobody is ahead.
func connectedIdle(t *testing.T, a *testNode, peers ...*testNode) {
	t.Helper()
	for _, p := range peers {
		connect(t, a, p)
		eventually(t, "handshake", func() bool { _, ok := a.peers.status(p.h.ID()); return ok })
	}
}

// connectAtOnce connects a to every peer as if all handshakes were in
// flight together: the election waits until every status is in.
func connectAtOnce(t *testing.T, a *testNode, peers ...*testNode) {
	t.Helper()
	a.m.hsInFlight.Add(1) // one more handshake in flight, until every status is in
	for _, p := range peers {
		connect(t, a, p)
		eventually(t, "handshake", func() bool { _, ok := a.peers.status(p.h.ID()); return ok })
	}
	a.m.hsInFlight.Add(-1)
	a.m.pokeSync()
}

func TestElectionPrefersHeavierOnTie(t *testing.T) {
	light := genDAG(t, 1, 40)
	heavy := genDAG(t, 2, 120)
	b := newTestNode(t, dag.RegTestParams, fastSync...)
	c := newTestNode(t, dag.RegTestParams, fastSync...)
	load(t, b, light)
	load(t, c, heavy)
	a := newTestNode(t, dag.RegTestParams, append(fastSync, WithElectionWait(time.Minute))...)
	connectAtOnce(t, a, b, c)
	eventually(t, "the union of both DAGs", func() bool { return a.d.Count() == 1+len(light)+len(heavy) })
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
	a := newTestNode(t, dag.RegTestParams, append(fastSync, WithElectionWait(time.Minute))...)
	connectAtOnce(t, a, b1, b2, c)
	eventually(t, "the union", func() bool { return a.d.Count() == 1+len(common)+len(heavy) })
	if first := a.firstSyncPeer(); first != any(b1.h.ID()) && first != any(b2.h.ID()) {
		t.Fatalf("first sync peer %s, want one of the two agreeing peers", first)
	}
}

func TestOrphanParentsFetchedFromSender(t *testing.T) {
	blocks := genDAG(t, 9, 30)
	b := newTestNode(t, dag.RegTestParams, WithSampleInterval(time.Hour)) // no sampling: only the orphan path
	a := newTestNode(t, dag.RegTestParams, WithSampleInterval(time.Hour))
	connectedIdle(t, a, b)
	// Both handshakes are over (each side starts one on connect): no
	// status tells a that b got ahead, so a has no reason to sync.
	eventually(t, "b's handshake", func() bool {
		_, ok := b.peers.status(a.h.ID())
		return ok && b.m.Stats().Handshakes > 0 && a.m.hsInFlight.Load() == 0 && b.m.hsInFlight.Load() == 0
	})
	load(t, b, blocks)
	// a holds all but the top three heights: the orphan's ancestry is
	// within the fetch depth.
	top, _ := b.d.BlockInfo(blocks[len(blocks)-1].Hash())
	var below []*dag.Block
	for _, blk := range blocks {
		if info, _ := b.d.BlockInfo(blk.Hash()); info.Height <= top.Height-3 {
			below = append(below, blk)
		}
	}
	load(t, a, below)
	last := blocks[len(blocks)-1]
	var mp *dag.MissingParentsError
	if err := a.m.Submit(context.Background(), b.h.ID(), last); !errors.As(err, &mp) {
		t.Fatalf("submit: %v, want MissingParentsError", err)
	}
	eventually(t, "the orphan to connect", func() bool { return a.d.HaveBlock(last.Hash()) })
	if a.m.Stats().Orphans != 0 {
		t.Fatal("orphans left behind")
	}
	if n := a.m.Stats().Sessions; n != 0 {
		t.Fatalf("%d sync sessions: the orphan path alone should have fetched the parents", n)
	}
	if a.peers.penalized(b.h.ID(), nil) {
		t.Fatal("honest sender penalised")
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

// badServer is a peer that answers status with a plausible claim of a tip
// we lack and misbehaves on every other request.
func badServer(t *testing.T, claim *dag.Block, misbehave func(s network.Stream, req byte, payload []byte)) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	p := dag.RegTestParams
	work := new(big.Int).Mul(dag.Work(p.PowLimitBits), big.NewInt(1000))
	st := &Status{Genesis: p.GenesisHash, MaxHeight: 500, Count: 1000, BlueWork: work, Tips: []dag.Hash{claim.Hash()}, TipHeights: []uint64{500}}
	h.SetStreamHandler(ProtocolID(p.Name), func(s network.Stream) {
		r := bufio.NewReader(s)
		typ, payload, err := readFrame(r, MsgStatus, MsgGetBlocks, MsgGetData)
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

// lastInv is a whole getblocks reply listing hashes.
func lastInv(hs ...dag.Hash) []byte { return (&Inv{Flags: InvLast, Hashes: hs}).encode() }

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
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	// Every request other than status gets one of these answers.
	cases := map[string]func(s network.Stream, req byte, payload []byte){
		"unrequested block": func(s network.Stream, req byte, _ []byte) {
			switch req {
			case MsgGetBlocks:
				writeFrame(s, MsgInv, lastInv(good[0].Hash()))
			case MsgGetData:
				writeFrame(s, MsgBlock, good[1].Encode()) // not what was asked
				writeFrame(s, MsgNotFound, encodeHashes(nil))
			}
			s.Close()
		},
		"block failing PoW": func(s network.Stream, req byte, _ []byte) {
			switch req {
			case MsgGetBlocks:
				writeFrame(s, MsgInv, lastInv(powBlock.Hash()))
			case MsgGetData:
				writeFrame(s, MsgBlock, powBlock.Encode())
				writeFrame(s, MsgNotFound, encodeHashes(nil))
			}
			s.Close()
		},
		"inventory without the claimed tip": func(s network.Stream, _ byte, _ []byte) {
			writeFrame(s, MsgInv, lastInv())
			s.Close()
		},
		"notfound for what it listed": func(s network.Stream, req byte, payload []byte) {
			switch req {
			case MsgGetBlocks:
				writeFrame(s, MsgInv, lastInv(claim.Hash()))
			case MsgGetData:
				writeFrame(s, MsgNotFound, payload)
			}
			s.Close()
		},
		"listed a block before its parents": func(s network.Stream, req byte, _ []byte) {
			switch req {
			case MsgGetBlocks:
				writeFrame(s, MsgInv, lastInv(claim.Hash())) // its parents are not listed
			case MsgGetData:
				writeFrame(s, MsgBlock, claim.Encode())
				writeFrame(s, MsgNotFound, encodeHashes(nil))
			}
			s.Close()
		},
		"garbage after the last frame": func(s network.Stream, _ byte, _ []byte) {
			writeFrame(s, MsgInv, lastInv())
			s.Write([]byte{0xde, 0xad})
			s.Close()
		},
		"oversize frame": func(s network.Stream, _ byte, _ []byte) {
			s.Write([]byte{0xff, 0xff, 0xff, 0x0f, MsgInv})
			s.Close()
		},
		"garbage bytes": func(s network.Stream, _ byte, _ []byte) {
			s.Write([]byte{0x04, 0xee, 0xde, 0xad, 0xbe})
			s.Close()
		},
		"retired getheight reply": func(s network.Stream, _ byte, _ []byte) {
			writeFrame(s, 8, encodeHashes(nil))
			s.Close()
		},
		"inv over the limit": func(s network.Stream, _ byte, _ []byte) {
			hs := make([]dag.Hash, MaxInvEntries+1)
			for i := range hs {
				hs[i][0], hs[i][1] = byte(i), byte(i>>8)
			}
			writeFrame(s, MsgInv, lastInv(hs...)) // over the frame limit too
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
			eventually(t, "the session to end", func() bool { return a.m.SyncInfo().LastSession.Peer == bad.ID() })
			after := a.d.Status()
			if after.Count != before.Count || !slices.Equal(after.Tips, before.Tips) {
				t.Fatalf("bad data changed the DAG: %d -> %d blocks", before.Count, after.Count)
			}
			info := a.m.SyncInfo()
			if len(info.Backoffs) != 1 || info.Backoffs[0].Peer != bad.ID() {
				t.Fatalf("backoffs %+v, want the bad peer", info.Backoffs)
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
