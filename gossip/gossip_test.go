package gossip

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

// TestBlockCrossesLine: a block added on A reaches C through B (A-B-C), and
// both B and C accept it in their validators.
func TestBlockCrossesLine(t *testing.T) {
	t.Parallel()
	p := dag.RegTestParams
	a, b, c := newNode(t, p), newNode(t, p), newNode(t, p)
	connect(t, a.h, b.h)
	connect(t, b.h, c.h)
	waitMesh(t, a, b)
	waitMesh(t, b, a, c)
	waitMesh(t, c, b)

	ctx := context.Background()
	blk := newBlock(a.d, "line")
	if err := a.d.ProcessBlock(ctx, blk); err != nil {
		t.Fatal(err)
	}
	if err := a.s.Publish(ctx, blk); err != nil {
		t.Fatal(err)
	}
	hash := blk.Hash()
	waitFor(t, "block in C's DAG", func() bool { return c.d.HaveBlock(hash) })
	waitFor(t, "accepted on B and C", func() bool {
		return b.s.Stats().Accepted == 1 && c.s.Stats().Accepted == 1 &&
			b.s.Stats().Delivered == 1 && c.s.Stats().Delivered == 1
	})
	if !b.d.HaveBlock(hash) {
		t.Error("block missing from B's DAG")
	}
	if st := a.s.Stats(); st.Published != 1 || st.Accepted != 0 {
		t.Errorf("A stats %+v, want 1 published and nothing accepted", st)
	}
	for _, n := range []*node{a, b, c} {
		if st := n.s.Stats(); st.Rejected != 0 || st.Orphan != 0 || st.Ignored != 0 {
			t.Errorf("unexpected stats %+v", st)
		}
	}
	// Each hop submitted the block once, from the previous node.
	if got := b.submissions(); len(got) != 1 || got[0].from != a.h.ID() || got[0].err != nil {
		t.Errorf("B submissions %+v, want one from A", got)
	}
	if got := c.submissions(); len(got) != 1 || got[0].from != b.h.ID() || got[0].err != nil {
		t.Errorf("C submissions %+v, want one from B", got)
	}
}

// badNode is a raw GossipSub router on the block topic whose validator
// accepts everything, so it publishes whatever it is given.
type badNode struct {
	h     host.Host
	ps    *pubsub.PubSub
	topic *pubsub.Topic
}

func newBadNode(t *testing.T, p *dag.Params) *badNode {
	t.Helper()
	h := newHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// The same envelope as honest nodes (no signature, no author, block
	// hash ids), so its messages reach their validators.
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(messageID),
		pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	name := TopicName(p.Name)
	acceptAll := func(context.Context, peer.ID, *pubsub.Message) pubsub.ValidationResult {
		return pubsub.ValidationAccept
	}
	if err := ps.RegisterTopicValidator(name, acceptAll); err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(name)
	if err != nil {
		t.Fatal(err)
	}
	return &badNode{h: h, ps: ps, topic: topic}
}

// TestInvalidBlocksRejected: garbage and a block with bad proof of work from
// a bad node are rejected by its honest neighbour, which penalises it with
// the rule errors; neither reaches any DAG, and honest blocks still flow.
func TestInvalidBlocksRejected(t *testing.T) {
	t.Parallel()
	p := dag.RegTestParams
	a, c, d := newNode(t, p), newNode(t, p), newNode(t, p)
	x := newBadNode(t, p)
	connect(t, x.h, a.h)
	connect(t, a.h, c.h)
	connect(t, a.h, d.h)
	waitMesh(t, a, c, d)
	waitMesh(t, c, a)
	waitMesh(t, d, a)
	waitFor(t, "bad node to see A on the topic", func() bool {
		return slices.Contains(x.ps.ListPeers(a.s.Topic()), a.h.ID())
	})

	var badPoW *dag.Block
	for _, inv := range dagtest.InvalidBlocks(p, time.Now()) {
		if inv.Code == dag.ErrBadPoW {
			badPoW = inv.Block
		}
	}
	if badPoW == nil {
		t.Fatal("no bad-PoW block in dagtest.InvalidBlocks")
	}
	ctx := context.Background()
	if err := x.topic.Publish(ctx, []byte("not a block")); err != nil {
		t.Fatal(err)
	}
	if err := x.topic.Publish(ctx, badPoW.Encode()); err != nil {
		t.Fatal(err)
	}

	waitFor(t, "two penalties on A", func() bool { return len(a.pen.all()) == 2 })
	codes := map[dag.ErrorCode]bool{}
	for _, pen := range a.pen.all() {
		if pen.peer != x.h.ID() {
			t.Errorf("penalised %s, want the bad node %s", pen.peer, x.h.ID())
		}
		var re *dag.RuleError
		if !errors.As(pen.err, &re) {
			t.Errorf("penalty error %T (%v), want *dag.RuleError", pen.err, pen.err)
			continue
		}
		codes[re.Code] = true
	}
	if !codes[dag.ErrMalformedBlock] || !codes[dag.ErrBadPoW] {
		t.Errorf("penalty codes %v, want ErrMalformedBlock and ErrBadPoW", codes)
	}
	if st := a.s.Stats(); st.Rejected != 2 || st.Accepted != 0 {
		t.Errorf("A stats %+v, want 2 rejected", st)
	}
	if got := a.submissions(); len(got) != 0 {
		t.Errorf("invalid blocks reached Submit: %+v", got)
	}

	// An honest block published by C afterwards reaches A and, through A,
	// D. The invalid messages were never forwarded.
	blk := newBlock(c.d, "honest")
	if err := c.d.ProcessBlock(ctx, blk); err != nil {
		t.Fatal(err)
	}
	if err := c.s.Publish(ctx, blk); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "honest block on A and D", func() bool {
		return a.d.HaveBlock(blk.Hash()) && d.d.HaveBlock(blk.Hash())
	})
	for _, n := range []*node{a, c, d} {
		if n.d.HaveBlock(badPoW.Hash()) {
			t.Error("bad-PoW block in an honest DAG")
		}
		if n.d.Count() != 2 {
			t.Errorf("DAG holds %d blocks, want genesis and the honest block", n.d.Count())
		}
	}
	for _, n := range []*node{c, d} {
		if st := n.s.Stats(); st.Rejected != 0 || len(n.pen.all()) != 0 {
			t.Errorf("invalid messages were forwarded: stats %+v", st)
		}
	}
}

// TestOrphanAndDuplicate: a block with an unknown parent is ignored as an
// orphan after Submit returned *dag.MissingParentsError; a block the DAG
// already holds is ignored as a duplicate without reaching Submit.
func TestOrphanAndDuplicate(t *testing.T) {
	t.Parallel()
	p := dag.RegTestParams
	s, r := newNode(t, p), newNode(t, p)
	connect(t, s.h, r.h)
	waitMesh(t, s, r)
	waitMesh(t, r, s)

	g, err := dagtest.NewGenerator(p, 7)
	if err != nil {
		t.Fatal(err)
	}
	first, err := g.Round(1)
	if err != nil {
		t.Fatal(err)
	}
	second, err := g.Round(1)
	if err != nil {
		t.Fatal(err)
	}
	parent, child := first[0], second[0]
	ctx := context.Background()
	for _, err := range s.d.ProcessBlocks(ctx, []*dag.Block{parent, child}) {
		if err != nil {
			t.Fatal(err)
		}
	}

	// The child first: R lacks its parent.
	if err := s.s.Publish(ctx, child); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "orphan counted on R", func() bool { return r.s.Stats().Orphan == 1 })
	subs := r.submissions()
	if len(subs) != 1 || subs[0].hash != child.Hash() || subs[0].from != s.h.ID() {
		t.Fatalf("R submissions %+v, want the child from S", subs)
	}
	var mp *dag.MissingParentsError
	if !errors.As(subs[0].err, &mp) || !slices.Equal(mp.Missing, []dag.Hash{parent.Hash()}) {
		t.Fatalf("Submit returned %v, want MissingParentsError naming the parent", subs[0].err)
	}
	if r.d.HaveBlock(child.Hash()) {
		t.Error("orphan in R's DAG")
	}

	// R gets the parent by another path (sync); gossip then brings it too.
	if err := r.d.ProcessBlock(ctx, parent); err != nil {
		t.Fatal(err)
	}
	if err := s.s.Publish(ctx, parent); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "duplicate counted on R", func() bool { return r.s.Stats().Duplicate == 1 })
	if got := r.submissions(); len(got) != 1 {
		t.Errorf("a known block reached Submit: %+v", got)
	}
	st := r.s.Stats()
	if st.Accepted != 0 || st.Rejected != 0 || st.Ignored != 0 || st.Delivered != 0 {
		t.Errorf("R stats %+v, want only one orphan and one duplicate", st)
	}
	if len(r.pen.all()) != 0 {
		t.Errorf("orphans and duplicates were penalised: %+v", r.pen.all())
	}
}

// TestNetworksDoNotMix: regtest and simnet nodes, all connected to each
// other, only exchange blocks within their own network.
func TestNetworksDoNotMix(t *testing.T) {
	t.Parallel()
	reg, sim := dag.RegTestParams, dag.SimNetParams
	r1, r2, s1, s2 := newNode(t, reg), newNode(t, reg), newNode(t, sim), newNode(t, sim)
	if r1.s.Topic() != "/dagnode/regtest/blocks/1" || s1.s.Topic() != "/dagnode/simnet/blocks/1" {
		t.Fatalf("topics %q and %q", r1.s.Topic(), s1.s.Topic())
	}
	all := []*node{r1, r2, s1, s2}
	for i, a := range all {
		for _, b := range all[i+1:] {
			connect(t, a.h, b.h)
		}
	}
	waitMesh(t, r1, r2)
	waitMesh(t, r2, r1)
	waitMesh(t, s1, s2)
	waitMesh(t, s2, s1)
	for _, pair := range [][2]*node{{r1, r2}, {r2, r1}, {s1, s2}, {s2, s1}} {
		if got := pair[0].s.TopicPeers(); !slices.Equal(got, []peer.ID{pair[1].h.ID()}) {
			t.Errorf("topic peers %v, want only %s", got, pair[1].h.ID())
		}
	}

	ctx := context.Background()
	rblk, sblk := newBlock(r1.d, "regtest"), newBlock(s1.d, "simnet")
	for _, pub := range []struct {
		n *node
		b *dag.Block
	}{{r1, rblk}, {s1, sblk}} {
		if err := pub.n.d.ProcessBlock(ctx, pub.b); err != nil {
			t.Fatal(err)
		}
		if err := pub.n.s.Publish(ctx, pub.b); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "blocks within each network", func() bool {
		return r2.s.Stats().Accepted == 1 && s2.s.Stats().Accepted == 1
	})
	for _, n := range []*node{r1, r2} {
		if n.d.HaveBlock(sblk.Hash()) {
			t.Error("simnet block in a regtest DAG")
		}
	}
	for _, n := range []*node{s1, s2} {
		if n.d.HaveBlock(rblk.Hash()) {
			t.Error("regtest block in a simnet DAG")
		}
	}
	for _, n := range all {
		st := n.s.Stats()
		validated := st.Accepted + st.Rejected + st.Ignored + st.Duplicate + st.Orphan
		want := uint64(0)
		if n == r2 || n == s2 {
			want = 1
		}
		if validated != want || st.Rejected != 0 {
			t.Errorf("%s stats %+v, want %d validated and none rejected", st.Topic, st, want)
		}
	}
}
