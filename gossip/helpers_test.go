package gossip

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"sync"
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

// waitTimeout bounds every wait on the network in these tests.
const waitTimeout = 15 * time.Second

// testLogger collects logs in a buffer and prints them only if the test
// failed. The router's goroutines may outlive the test by a moment, so
// nothing may write to t after it ends.
func testLogger(t testing.TB) *slog.Logger {
	w := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", w.String())
		}
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newHost returns a libp2p host on loopback, closed when the test ends.
func newHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// newDAG returns an empty in-memory DAG of network p.
func newDAG(t testing.TB, p *dag.Params) *dag.DAG {
	t.Helper()
	d, err := dag.Open(context.Background(), dssync.MutexWrap(ds.NewMapDatastore()), p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// penalty is one Penalize call.
type penalty struct {
	peer peer.ID
	err  error
}

// recordingPenalizer records Penalize calls.
type recordingPenalizer struct {
	mu   sync.Mutex
	list []penalty
}

func (r *recordingPenalizer) Penalize(p peer.ID, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, penalty{p, err})
}

func (r *recordingPenalizer) all() []penalty {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}

// submission is one Submit call and its outcome.
type submission struct {
	from peer.ID
	hash dag.Hash
	err  error
}

// node is one honest node: host, DAG and gossip service, with Submit
// calling the DAG directly.
type node struct {
	h   host.Host
	d   *dag.DAG
	s   *Service
	pen *recordingPenalizer

	mu      sync.Mutex
	submits []submission
}

func newNode(t testing.TB, p *dag.Params) *node {
	t.Helper()
	log := testLogger(t)
	n := &node{h: newHost(t), d: newDAG(t, p), pen: &recordingPenalizer{}}
	s, err := New(Config{Host: n.h, Params: p, DAG: n.d, Submit: n.submit, Penalizer: n.pen, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close) // before the host closes
	n.s = s
	return n
}

func (n *node) submit(ctx context.Context, from peer.ID, c dag.Checked) error {
	err := n.d.ProcessBlock(ctx, c.Block())
	n.mu.Lock()
	n.submits = append(n.submits, submission{from, c.Hash(), err})
	n.mu.Unlock()
	return err
}

func (n *node) submissions() []submission {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.submits)
}

// connect connects a to b.
func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitMesh waits until n's mesh holds all of peers.
func waitMesh(t testing.TB, n *node, peers ...*node) {
	t.Helper()
	waitFor(t, "mesh", func() bool {
		mesh := n.s.MeshPeers()
		for _, p := range peers {
			if !slices.Contains(mesh, p.h.ID()) {
				return false
			}
		}
		return true
	})
}

// newBlock makes a valid block on d's current tips.
func newBlock(d *dag.DAG, payload string) *dag.Block {
	tmpl := d.Template()
	ts := max(time.Now().UnixMilli(), tmpl.MinTimestamp)
	return dagtest.MakeBlock(d.Params(), tmpl.Parents, tmpl.Bits, ts, []byte(payload))
}
