package syncproto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

// recPeers records what the manager tells the peer tracker.
type recPeers struct {
	mu        sync.Mutex
	penalties map[peer.ID][]error
	statuses  map[peer.ID]dag.Status
	firstSync any
}

func newRecPeers() *recPeers {
	return &recPeers{penalties: map[peer.ID][]error{}, statuses: map[peer.ID]dag.Status{}}
}

func (r *recPeers) Penalize(p peer.ID, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.penalties[p] = append(r.penalties[p], err)
}
func (r *recPeers) SetStatus(p peer.ID, st dag.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses[p] = st
}
func (r *recPeers) SetSyncPeer(p peer.ID, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on && r.firstSync == nil {
		r.firstSync = p
	}
}

func (r *recPeers) penalized(p peer.ID, target error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, err := range r.penalties[p] {
		if target == nil || errors.Is(err, target) {
			return true
		}
		var pe *ProtocolError
		if errors.As(target, &pe) && errors.As(err, &pe) {
			return true
		}
	}
	return false
}

func (r *recPeers) status(p peer.ID) (dag.Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.statuses[p]
	return st, ok
}

type testNode struct {
	h     host.Host
	d     *dag.DAG
	m     *Manager
	peers *recPeers
}

// fastSync shortens the sync timers for tests.
var fastSync = []Option{WithElectionWait(100 * time.Millisecond), WithSampleInterval(300 * time.Millisecond), WithStallTimeout(2 * time.Second)}

func newTestNode(t testing.TB, p *dag.Params, opts ...Option) *testNode {
	t.Helper()
	return newTestNodeOn(t, p, dssync.MutexWrap(ds.NewMapDatastore()), opts...)
}

func newDiskNode(t testing.TB, p *dag.Params, opts ...Option) *testNode {
	t.Helper()
	store, err := dag.OpenPebbleStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return newTestNodeOn(t, p, store, opts...)
}

func newTestNodeOn(t testing.TB, p *dag.Params, store ds.Batching, opts ...Option) *testNode {
	t.Helper()
	return newTestNodeWith(t, p, store, nil, opts...)
}

// newTestNodeWith is newTestNodeOn with OnAccepted set to onAccepted.
func newTestNodeWith(t testing.TB, p *dag.Params, store ds.Batching,
	onAccepted func(*dag.Block, dag.Hash, peer.ID, bool), opts ...Option) *testNode {
	t.Helper()
	// Identify says "/dagnode/<network>", as dagnode's host does.
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics(),
		libp2p.ProtocolVersion("/dagnode/"+p.Name))
	if err != nil {
		t.Fatal(err)
	}
	d, err := dag.Open(context.Background(), store, p, dag.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{h: h, d: d, peers: newRecPeers()}
	n.m, err = New(Config{Host: h, DAG: d, Peers: n.peers, Logger: quiet, OnAccepted: onAccepted}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.m.Close()
		h.Close()
	})
	return n
}

var quiet = testLogger()

func connect(t testing.TB, a, b *testNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.h.Connect(ctx, peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling
	}
}

func TestStatusExchange(t *testing.T) {
	a, b := newTestNode(t, dag.RegTestParams), newTestNode(t, dag.RegTestParams)
	g, err := dagtest.NewGenerator(dag.RegTestParams, 1)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := g.Build(30, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, blk := range blocks {
		if err := b.m.Submit(context.Background(), "", blk); err != nil {
			t.Fatal(err)
		}
	}
	connect(t, a, b)
	eventually(t, "statuses on both sides", func() bool {
		_, okA := a.peers.status(b.h.ID())
		_, okB := b.peers.status(a.h.ID())
		return okA && okB
	})
	st, _ := a.peers.status(b.h.ID())
	if st.Count != b.d.Count() || st.MaxHeight != b.d.MaxHeight() || st.BlueWork.Cmp(b.d.Status().BlueWork) != 0 {
		t.Fatalf("a sees b's status %+v, b has %+v", st, b.d.Status())
	}
	if a.peers.penalized(b.h.ID(), nil) || b.peers.penalized(a.h.ID(), nil) {
		t.Fatal("honest peers penalised")
	}
}

func TestOtherNetworkPenalised(t *testing.T) {
	a, b := newTestNode(t, dag.RegTestParams), newTestNode(t, dag.SimNetParams)
	connect(t, a, b)
	eventually(t, "the wrong-network penalty", func() bool {
		return a.peers.penalized(b.h.ID(), ErrWrongNetwork) && b.peers.penalized(a.h.ID(), ErrWrongNetwork)
	})
	if a.m.Stats().WrongNetwork == 0 {
		t.Fatal("wrong-network counter not updated")
	}
}

// TestNonDagnodePeerLeftAlone: a peer that is no dagnode node (such as
// libp2p's AutoNAT dial-back host) fails the status exchange with
// ErrNotDagnode and is not penalised.
func TestNonDagnodePeerLeftAlone(t *testing.T) {
	a := newTestNode(t, dag.RegTestParams)
	other, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	if err := other.Connect(context.Background(), peer.AddrInfo{ID: a.h.ID(), Addrs: a.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.m.RequestStatus(ctx, other.ID()); !errors.Is(err, ErrNotDagnode) {
		t.Fatalf("status request to a plain libp2p host: %v, want ErrNotDagnode", err)
	}
	if a.peers.penalized(other.ID(), nil) || a.m.Stats().WrongNetwork != 0 {
		t.Fatal("a peer that is no dagnode node was penalised")
	}
}

func TestOrphanJoinsWhenParentArrives(t *testing.T) {
	n := newTestNode(t, dag.RegTestParams)
	g, err := dagtest.NewGenerator(dag.RegTestParams, 2)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := g.Build(6, 1) // a chain
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Everything but the first arrives first, newest first.
	for i := len(blocks) - 1; i >= 1; i-- {
		var mp *dag.MissingParentsError
		if err := n.m.Submit(ctx, "peerX", blocks[i]); !errors.As(err, &mp) {
			t.Fatalf("block %d: %v, want MissingParentsError", i, err)
		}
	}
	if got := n.m.Stats().Orphans; got != 5 {
		t.Fatalf("%d orphans, want 5", got)
	}
	if err := n.m.Submit(ctx, "", blocks[0]); err != nil {
		t.Fatal(err)
	}
	st := n.m.Stats()
	if st.Orphans != 0 || st.OrphansJoined != 5 || n.d.Count() != 7 {
		t.Fatalf("after the parent: %+v, DAG has %d blocks", st, n.d.Count())
	}
}

func TestOrphanPoolBounds(t *testing.T) {
	op := newOrphanPool()
	now := time.Now()
	var parent dag.Hash
	parent[0] = 1
	for i := range MaxOrphans + 10 {
		b := &dag.Block{Body: dag.Body{Payload: fmt.Appendf(nil, "%d", i)}}
		var h dag.Hash
		h[0], h[1], h[2] = 2, byte(i>>8), byte(i)
		op.add(b, h, "", []dag.Hash{parent}, now.Add(time.Duration(i)*time.Millisecond))
	}
	if op.len() != MaxOrphans || op.evicted != 10 {
		t.Fatalf("pool holds %d (evicted %d), want %d (10)", op.len(), op.evicted, MaxOrphans)
	}
	big := &dag.Block{Body: dag.Body{Payload: make([]byte, dag.MaxPayloadSize)}}
	for i := range 3000 {
		var h dag.Hash
		h[0], h[1], h[2] = 3, byte(i>>8), byte(i)
		op.add(big, h, "", []dag.Hash{parent}, now)
	}
	if op.bytes > MaxOrphanBytes {
		t.Fatalf("pool holds %d bytes, limit %d", op.bytes, MaxOrphanBytes)
	}
	op.expire(now.Add(OrphanExpiry + time.Hour))
	if op.len() != 0 || len(op.byParent) != 0 || op.bytes != 0 {
		t.Fatalf("after expiry: %d orphans, %d parents, %d bytes", op.len(), len(op.byParent), op.bytes)
	}
}

// TestBadRequestsPenalised sends malformed requests over real streams.
func TestBadRequestsPenalised(t *testing.T) {
	a, b := newTestNode(t, dag.RegTestParams), newTestNode(t, dag.RegTestParams)
	connect(t, a, b)
	var status bytes.Buffer
	writeFrame(&status, MsgStatus, a.m.ourStatus().encode())
	cases := map[string][]byte{
		"garbage":       {0x05, 0xde, 0xad, 0xbe, 0xef, 0x00},
		"unknown type":  {0x02, 0xee, 0x00},
		"oversize":      {0xff, 0xff, 0x7f, MsgStatus},
		"trailing byte": append(status.Bytes(), 0),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			b.peers.mu.Lock()
			delete(b.peers.penalties, a.h.ID())
			b.peers.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := a.h.NewStream(ctx, b.h.ID(), ProtocolID("regtest"))
			if err != nil {
				t.Fatal(err)
			}
			s.Write(raw)
			s.CloseWrite()
			reply, _ := io.ReadAll(io.LimitReader(s, 1<<20))
			if len(reply) != 0 {
				t.Fatalf("got a %d-byte reply to a bad request", len(reply))
			}
			eventually(t, "a protocol-violation penalty", func() bool {
				return b.peers.penalized(a.h.ID(), &ProtocolError{})
			})
		})
	}
}

// testLogger discards logs unless DAGNODE_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("DAGNODE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// handoffNode is a manager whose OnAccepted records the relay flag of every
// block, and a way to keep its loop busy.
type handoffNode struct {
	*testNode
	mu    sync.Mutex
	relay map[dag.Hash]bool
}

func newHandoffNode(t *testing.T) *handoffNode {
	t.Helper()
	n := &handoffNode{relay: map[dag.Hash]bool{}}
	n.testNode = newTestNodeWith(t, dag.RegTestParams, dssync.MutexWrap(ds.NewMapDatastore()),
		func(_ *dag.Block, hash dag.Hash, _ peer.ID, relay bool) {
			n.mu.Lock()
			n.relay[hash] = relay
			n.mu.Unlock()
		})
	return n
}

// hold keeps the manager loop busy until the returned function is called.
func (n *handoffNode) hold(t *testing.T) (release func()) {
	t.Helper()
	busy, done := make(chan struct{}), make(chan struct{})
	go n.m.call(context.Background(), func() { close(busy); <-done })
	<-busy
	return sync.OnceFunc(func() { close(done) })
}

func (n *handoffNode) accepted(h dag.Hash) (relay, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	relay, ok = n.relay[h]
	return relay, ok
}

// TestEnqueueNeverWaits: while the manager loop is busy (a long disk write),
// Enqueue and EnqueueOrphan return at once; past their queues they drop the
// block (ErrQueueFull, counted) instead of waiting.
func TestEnqueueNeverWaits(t *testing.T) {
	n := newHandoffNode(t)
	g, err := dagtest.NewGenerator(dag.RegTestParams, 3)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := g.Build(2, 1)
	if err != nil {
		t.Fatal(err)
	}
	parent, orphan := chain[0], chain[1]
	pc, oc := checked(t, n.d, parent), checked(t, n.d, orphan)
	release := n.hold(t)
	defer release()
	done := make(chan error, 1)
	go func() {
		for i := range enqueueQueue + 1 {
			err := n.m.Enqueue("peerX", pc)
			if (err != nil) != (i == enqueueQueue) {
				done <- fmt.Errorf("Enqueue %d: %v", i, err)
				return
			}
		}
		for i := range orphanQueue + 1 {
			err := n.m.EnqueueOrphan("peerX", oc)
			if (err != nil) != (i == orphanQueue) {
				done <- fmt.Errorf("EnqueueOrphan %d: %v", i, err)
				return
			}
		}
		if err := n.m.Enqueue("peerX", pc); !errors.Is(err, ErrQueueFull) {
			done <- fmt.Errorf("Enqueue on a full queue: %v, want ErrQueueFull", err)
			return
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Enqueue or EnqueueOrphan waited for the busy manager loop")
	}
	if got := n.m.Stats().QueueFull; got != 3 {
		t.Fatalf("QueueFull %d, want 3", got)
	}
	release()
	// The queued blocks are processed once the loop is free: the parent
	// (queued first, so the orphan finds it) and its child.
	eventually(t, "both blocks accepted", func() bool { return n.d.Count() == 3 })
	if n.m.Stats().Orphans != 0 {
		t.Fatal("the child was kept as an orphan although its parent was queued before it")
	}
}

// TestEnqueuedOrphans: an orphan handed over by EnqueueOrphan is kept and
// joins when its parent comes, reported with relay set (gossip did not
// forward it); one whose parent is still in the checked queue is added
// directly, also with relay; one that breaks a rule once its parent is
// known costs its sender.
func TestEnqueuedOrphans(t *testing.T) {
	n := newHandoffNode(t)
	p := dag.RegTestParams
	g, err := dagtest.NewGenerator(p, 4)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := g.Build(4, 1)
	if err != nil {
		t.Fatal(err)
	}
	// chain[2] and chain[3] arrive before their ancestors.
	for _, b := range chain[2:] {
		if err := n.m.EnqueueOrphan("peerX", checked(t, n.d, b)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "two orphans kept", func() bool { return n.m.Stats().Orphans == 2 })
	// chain[0] is checked and queued while the loop is busy, chain[1] (its
	// child, so an orphan for gossip) is queued right after it, and so is a
	// child of chain[0] whose timestamp is before its parent's.
	bad := dagtest.MakeBlock(p, []dag.Hash{chain[0].Hash()}, p.PowLimitBits, chain[0].Header.Timestamp-1, []byte("too old"))
	release := n.hold(t)
	if err := n.m.Enqueue("peerY", checked(t, n.d, chain[0])); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*dag.Block{chain[1], bad} {
		if err := n.m.EnqueueOrphan("peerY", checked(t, n.d, b)); err != nil {
			t.Fatal(err)
		}
	}
	release()
	eventually(t, "the chain accepted", func() bool { return n.d.Count() == 5 })
	for i, b := range chain {
		relay, ok := n.accepted(b.Hash())
		if !ok || relay != (i > 0) {
			t.Errorf("block %d: accepted %v, relay %v; want relay %v", i, ok, relay, i > 0)
		}
	}
	eventually(t, "the sender of the bad block penalised", func() bool { return n.peers.penalized("peerY", nil) })
	var re *dag.RuleError
	n.peers.mu.Lock()
	errs := n.peers.penalties["peerY"]
	n.peers.mu.Unlock()
	if len(errs) != 1 || !errors.As(errs[0], &re) || re.Code != dag.ErrTimeTooOld {
		t.Fatalf("penalties of peerY: %v, want one ErrTimeTooOld", errs)
	}
	if n.peers.penalized("peerX", nil) {
		t.Fatal("the sender of honest orphans penalised")
	}
}

// syncCounter is a real store that counts the syncs asked of it.
type syncCounter struct {
	ds.Batching
	syncs atomic.Int64
}

func (s *syncCounter) Sync(ctx context.Context, prefix ds.Key) error {
	s.syncs.Add(1)
	return s.Batching.Sync(ctx, prefix)
}

// TestPeerBlocksSyncedTogether: a peer's blocks are committed (readable at
// once) and reach stable storage together in one sync at most
// storeSyncDelay later; a block made here is durable before Submit returns;
// Close syncs what is still waiting.
func TestPeerBlocksSyncedTogether(t *testing.T) {
	p := dag.RegTestParams
	pebble, err := dag.OpenPebbleStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pebble.Close() })
	store := &syncCounter{Batching: pebble}
	n := newTestNodeOn(t, p, store)
	g, err := dagtest.NewGenerator(p, 5)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := g.Build(12, 1)
	if err != nil {
		t.Fatal(err)
	}
	base := store.syncs.Load()
	start := time.Now()
	for _, b := range chain[:10] {
		if err := n.m.Enqueue("peerX", checked(t, n.d, b)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the peer's blocks committed", func() bool { return n.d.Count() == 11 })
	eventually(t, "the peer's blocks synced", func() bool { return store.syncs.Load() > base })
	if took := time.Since(start); took < storeSyncDelay {
		t.Fatalf("synced %v after the first commit, before storeSyncDelay (%v)", took, storeSyncDelay)
	}
	if got := store.syncs.Load() - base; got > 2 {
		t.Fatalf("%d syncs for 10 blocks committed together, want one (two if the timer split them)", got)
	}

	base = store.syncs.Load()
	if err := n.m.Submit(context.Background(), "", chain[10]); err != nil {
		t.Fatal(err)
	}
	if store.syncs.Load() != base+1 {
		t.Fatal("a block made here was reported before it was synced")
	}

	base = store.syncs.Load()
	if err := n.m.Enqueue("peerX", checked(t, n.d, chain[11])); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the last block committed", func() bool { return n.d.Count() == 13 })
	n.m.Close()
	if store.syncs.Load() != base+1 {
		t.Fatalf("%d syncs after Close, want 1: a committed block left unsynced", store.syncs.Load()-base)
	}
}

// checked is b as a gossip validator hands it over (dag.CheckRaw).
func checked(t testing.TB, d *dag.DAG, b *dag.Block) dag.Checked {
	t.Helper()
	c, err := d.Check(b.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return c
}
