package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	orphan := &dag.MissingParentsError{Block: dag.Hash{1}, Missing: []dag.Hash{{2}}}
	cases := []struct {
		name string
		err  error
		want pubsub.ValidationResult
		v    verdict
	}{
		{"nil", nil, pubsub.ValidationAccept, verdictAccept},
		{"missing parents", orphan, pubsub.ValidationIgnore, verdictOrphan},
		{"wrapped missing parents", fmt.Errorf("sync: %w", orphan), pubsub.ValidationIgnore, verdictOrphan},
		{"duplicate", dag.ErrDuplicateBlock, pubsub.ValidationIgnore, verdictDuplicate},
		{"wrapped duplicate", fmt.Errorf("sync: %w", dag.ErrDuplicateBlock), pubsub.ValidationIgnore, verdictDuplicate},
		{"wrapped rule error", fmt.Errorf("sync: %w", &dag.RuleError{Code: dag.ErrBadPoW}), pubsub.ValidationReject, verdictInvalid},
		{"time too new", &dag.RuleError{Code: dag.ErrTimeTooNew}, pubsub.ValidationIgnore, verdictEarly},
		{"deadline", context.DeadlineExceeded, pubsub.ValidationIgnore, verdictLocal},
		{"deferred", fmt.Errorf("%w: in sync mode", ErrDeferred), pubsub.ValidationIgnore, verdictDeferred},
		{"canceled", context.Canceled, pubsub.ValidationIgnore, verdictLocal},
		{"unknown block", dag.ErrUnknownBlock, pubsub.ValidationIgnore, verdictLocal},
		{"storage", errors.New("dag: storage failed"), pubsub.ValidationIgnore, verdictLocal},
		// The text says "rule" and "duplicate"; only types count.
		{"look-alike text", errors.New("dag: ErrBadPoW: block already known"), pubsub.ValidationIgnore, verdictLocal},
	}
	// Every rule code is a Reject except the clock-dependent ErrTimeTooNew.
	for c := dag.ErrBadVersion; c <= dag.ErrMalformedBlock; c++ {
		if c == dag.ErrTimeTooNew {
			continue
		}
		cases = append(cases, struct {
			name string
			err  error
			want pubsub.ValidationResult
			v    verdict
		}{c.String(), &dag.RuleError{Code: c, Desc: "test"}, pubsub.ValidationReject, verdictInvalid})
	}
	for _, tc := range cases {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("%s: classify = %d, want %d", tc.name, got, tc.want)
		}
		if got := judge(tc.err); got != tc.v {
			t.Errorf("%s: judge = %d, want %d", tc.name, got, tc.v)
		}
	}
}

// stubChain is a Chain with a fixed answer, to reach Submit with blocks the
// DAG holds.
type stubChain bool

func (c stubChain) HaveBlock(dag.Hash) bool { return bool(c) }

// newValidatorService returns a service that is not started, for calling
// its validator directly.
func newValidatorService(t testing.TB, chain Chain, submit func(context.Context, peer.ID, dag.Checked) error, pen Penalizer) *Service {
	t.Helper()
	s, err := New(Config{
		Host:      newHost(t),
		Params:    dag.RegTestParams,
		DAG:       chain,
		Submit:    submit,
		Penalizer: pen,
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func submitTo(d *dag.DAG) func(context.Context, peer.ID, dag.Checked) error {
	return func(ctx context.Context, _ peer.ID, c dag.Checked) error { return d.ProcessBlock(ctx, c.Block()) }
}

func message(data []byte, from peer.ID) *pubsub.Message {
	topic := TopicName(dag.RegTestParams.Name)
	return &pubsub.Message{Message: &pb.Message{Data: data, Topic: &topic}, ReceivedFrom: from}
}

// TestValidatorPaths runs the validator on every path of the table in
// doc.go, with a real DAG behind Submit.
func TestValidatorPaths(t *testing.T) {
	t.Parallel()
	p := dag.RegTestParams
	ctx := context.Background()
	const sender = peer.ID("sender")

	t.Run("invalid blocks", func(t *testing.T) {
		d := newDAG(t, p)
		pen := &recordingPenalizer{}
		s := newValidatorService(t, d, submitTo(d), pen)
		invalid := dagtest.InvalidBlocks(p, time.Now())
		rejected := 0
		for _, inv := range invalid {
			got := s.validate(ctx, sender, message(inv.Block.Encode(), sender))
			want := pubsub.ValidationReject
			if inv.Code == dag.ErrTimeTooNew {
				want = pubsub.ValidationIgnore
			} else {
				rejected++
			}
			if got != want {
				t.Errorf("%s: %d, want %d", inv.Name, got, want)
			}
		}
		pens := pen.all()
		if len(pens) != rejected {
			t.Fatalf("%d penalties, want %d", len(pens), rejected)
		}
		i := 0
		for _, inv := range invalid {
			if inv.Code == dag.ErrTimeTooNew {
				continue
			}
			// Faults the decoder catches first (too many parents, oversized
			// payload) come back as encoding errors.
			code := inv.Code
			for _, c := range []dag.ErrorCode{dag.ErrMalformedBlock, dag.ErrBlockTooBig} {
				if dag.IsRuleError(pens[i].err, c) {
					code = c
				}
			}
			if pens[i].peer != sender || !dag.IsRuleError(pens[i].err, code) {
				t.Errorf("%s: penalty %v for %s, want %s", inv.Name, pens[i].err, pens[i].peer, inv.Code)
			}
			i++
		}
		st := s.Stats()
		if st.Rejected != uint64(rejected) || st.Ignored != 1 || st.Accepted != 0 {
			t.Errorf("stats %+v", st)
		}
		if d.Count() != 1 {
			t.Errorf("DAG holds %d blocks, want only the genesis", d.Count())
		}
	})

	t.Run("GHOSTDAG rule breakers", func(t *testing.T) {
		// A parent in the past of another, and a merge set past the limit:
		// rejected and penalised like any invalid block.
		d := newDAG(t, p)
		ts := p.GenesisBlock.Header.Timestamp
		branch := func(n int) dag.Hash {
			tip, err := dagtest.Branch(d, n)
			if err != nil {
				t.Fatal(err)
			}
			return tip
		}
		sorted := func(a, b dag.Hash) []dag.Hash {
			if b.Less(a) {
				return []dag.Hash{b, a}
			}
			return []dag.Hash{a, b}
		}
		one := branch(1)
		long, longer := branch(p.MergeSetSizeLimit), branch(p.MergeSetSizeLimit+1)
		pen := &recordingPenalizer{}
		s := newValidatorService(t, d, submitTo(d), pen)
		for _, c := range []struct {
			block *dag.Block
			code  dag.ErrorCode
		}{
			{dagtest.MakeBlock(p, sorted(p.GenesisHash, one), p.PowLimitBits, ts+1, nil), dag.ErrParentInPast},
			{dagtest.MakeBlock(p, sorted(long, longer), p.PowLimitBits, ts+1000, nil), dag.ErrMergeSetTooBig},
		} {
			if got := s.validate(ctx, sender, message(c.block.Encode(), sender)); got != pubsub.ValidationReject {
				t.Errorf("%s: %d, want reject", c.code, got)
			}
			if pens := pen.all(); len(pens) == 0 || !dag.IsRuleError(pens[len(pens)-1].err, c.code) {
				t.Errorf("%s: penalties %v", c.code, pens)
			}
			if d.HaveBlock(c.block.Hash()) {
				t.Errorf("%s: the block entered the DAG", c.code)
			}
		}
	})

	t.Run("garbage and oversized", func(t *testing.T) {
		pen := &recordingPenalizer{}
		s := newValidatorService(t, stubChain(false), func(context.Context, peer.ID, dag.Checked) error {
			t.Error("Submit called")
			return nil
		}, pen)
		for _, data := range [][]byte{nil, []byte("garbage"), make([]byte, dag.MaxBlockSize+1)} {
			if got := s.validate(ctx, sender, message(data, sender)); got != pubsub.ValidationReject {
				t.Errorf("%d bytes: %d, want Reject", len(data), got)
			}
		}
		if got := len(pen.all()); got != 3 {
			t.Errorf("%d penalties, want 3", got)
		}
	})

	t.Run("accepted, orphan, duplicate, local failure", func(t *testing.T) {
		d := newDAG(t, p)
		g, err := dagtest.NewGenerator(p, 3)
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := g.Build(2, 1)
		if err != nil {
			t.Fatal(err)
		}
		parent, child := blocks[0], blocks[1]
		pen := &recordingPenalizer{}
		var submitErr error
		submit := func(ctx context.Context, from peer.ID, c dag.Checked) error {
			if submitErr != nil {
				return submitErr
			}
			return d.ProcessBlock(ctx, c.Block())
		}
		// A chain that never has the block, so known blocks reach Submit.
		s := newValidatorService(t, stubChain(false), submit, pen)
		steps := []struct {
			name  string
			b     *dag.Block
			fail  error
			want  pubsub.ValidationResult
			count func(Stats) uint64
		}{
			{"orphan", child, nil, pubsub.ValidationIgnore, func(s Stats) uint64 { return s.Orphan }},
			{"accepted", parent, nil, pubsub.ValidationAccept, func(s Stats) uint64 { return s.Accepted }},
			{"duplicate from Submit", parent, nil, pubsub.ValidationIgnore, func(s Stats) uint64 { return s.Duplicate }},
			{"local failure", child, errors.New("disk on fire"), pubsub.ValidationIgnore, func(s Stats) uint64 { return s.Ignored }},
		}
		for _, st := range steps {
			submitErr = st.fail
			if got := s.validate(ctx, sender, message(st.b.Encode(), sender)); got != st.want {
				t.Errorf("%s: %d, want %d", st.name, got, st.want)
			}
			if n := st.count(s.Stats()); n != 1 {
				t.Errorf("%s: counter %d, want 1", st.name, n)
			}
		}
		if len(pen.all()) != 0 {
			t.Errorf("penalties %+v, want none", pen.all())
		}

		// HaveBlock short-cuts Submit.
		s2 := newValidatorService(t, d, func(context.Context, peer.ID, dag.Checked) error {
			t.Error("Submit called for a known block")
			return nil
		}, pen)
		if got := s2.validate(ctx, sender, message(parent.Encode(), sender)); got != pubsub.ValidationIgnore || s2.Stats().Duplicate != 1 {
			t.Errorf("known block: %d, stats %+v", got, s2.Stats())
		}
	})

	t.Run("own message", func(t *testing.T) {
		s := newValidatorService(t, stubChain(false), func(context.Context, peer.ID, dag.Checked) error {
			t.Error("Submit called for our own block")
			return nil
		}, nil)
		if got := s.validate(ctx, s.self, message([]byte("ours, not checked"), s.self)); got != pubsub.ValidationAccept {
			t.Errorf("own message: %d, want Accept", got)
		}
	})
}

func TestMessageID(t *testing.T) {
	t.Parallel()
	p := dag.RegTestParams
	b := dagtest.MakeBlock(p, []dag.Hash{p.GenesisHash}, p.PowLimitBits, time.Now().UnixMilli(), []byte("id"))
	hash := b.Hash()
	raw := b.Encode()
	if got := messageID(&pb.Message{Data: raw}); got != string(hash[:]) {
		t.Errorf("id of a block is not its hash")
	}
	if hashOfID(messageID(&pb.Message{Data: raw})) != hash {
		t.Errorf("hashOfID does not give the block hash back")
	}
	// The same header with another body must not take the block's id.
	forged := *b
	forged.Body.Payload = []byte("forged")
	fid := messageID(&pb.Message{Data: forged.Encode()})
	if fid == string(hash[:]) || len(fid) != dag.HashSize+1 || !strings.HasPrefix(fid, undecodableIDPrefix) {
		t.Errorf("forged body got id %x", fid)
	}
	gid := messageID(&pb.Message{Data: []byte("garbage")})
	if gid != messageID(&pb.Message{Data: []byte("garbage")}) || len(gid) != dag.HashSize+1 {
		t.Errorf("garbage id %x not stable or wrong length", gid)
	}
	if !hashOfID(gid).IsZero() {
		t.Errorf("hashOfID of a non-block id is not zero")
	}
}

// TestLimits pins the topic names and checks that the largest block fits
// the message and frame limits.
func TestLimits(t *testing.T) {
	t.Parallel()
	if got := TopicName("mainnet"); got != "/dagnode/mainnet/blocks/1" {
		t.Errorf("TopicName = %q", got)
	}
	for _, p := range dag.Networks() {
		if n := len(TopicName(p.Name)); n > maxTopicLen {
			t.Errorf("%s topic is %d bytes, limit %d", p.Name, n, maxTopicLen)
		}
	}
	topic := strings.Repeat("t", maxTopicLen)
	msg := &pb.Message{Data: make([]byte, dag.MaxBlockSize), Topic: &topic}
	if n := proto.Size(msg); n > maxBlockMessageSize {
		t.Errorf("largest block message is %d bytes, limit %d", n, maxBlockMessageSize)
	}
	msgs := make([]*pb.Message, messagesPerRPC)
	for i := range msgs {
		msgs[i] = msg
	}
	if n := proto.Size(&pb.RPC{Publish: msgs}); n > maxRPCSize-controlHeadroom {
		t.Errorf("%d largest messages take %d bytes, room %d", messagesPerRPC, n, maxRPCSize-controlHeadroom)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	p := dag.RegTestParams
	h := newHost(t)
	d := newDAG(t, p)
	submit := submitTo(d)
	if _, err := New(Config{Host: h, Params: p, DAG: d}); err == nil {
		t.Error("New without Submit succeeded")
	}
	if _, err := New(Config{Host: h, Params: p, DAG: d, Submit: submit}, WithClock(nil)); err == nil {
		t.Error("New with a nil clock succeeded")
	}
	s, err := New(Config{Host: h, Params: p, DAG: d, Submit: submit, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b := newBlock(d, "lifecycle")
	if err := s.Publish(ctx, b); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Publish before Start: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	// Without peers the block is still handed to the router.
	if err := s.Publish(ctx, b); err != nil {
		t.Errorf("Publish: %v", err)
	}
	if st := s.Stats(); st.Published != 1 || st.Delivered != 0 {
		t.Errorf("stats %+v, want 1 published and no own delivery counted", st)
	}
	s.Close()
	s.Close()
	if err := s.Publish(ctx, b); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	if err := s.Start(); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
	if s.TopicPeers() != nil {
		t.Error("TopicPeers after Close")
	}
	// The router's protocols are gone from the host.
	for _, handled := range h.Mux().Protocols() {
		for _, id := range pubsub.GossipSubDefaultProtocols {
			if handled == id {
				t.Errorf("protocol %s still handled after Close", id)
			}
		}
	}
}

// TestPubsubLogsFromInfo: the library's debug traces are dropped even when
// the node logs at Debug; its warnings pass.
func TestPubsubLogsFromInfo(t *testing.T) {
	var buf strings.Builder
	h := atLeast{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), slog.LevelInfo}
	l := slog.New(h).With("system", "pubsub")
	l.Debug("rpc sent")
	l.Warn("peer misbehaved")
	if out := buf.String(); strings.Contains(out, "rpc sent") || !strings.Contains(out, "peer misbehaved") || !strings.Contains(out, "system=pubsub") {
		t.Fatalf("log output %q", out)
	}
}
