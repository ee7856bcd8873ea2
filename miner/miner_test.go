package miner_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
	"github.com/dagnode/dagnode/miner"
)

func diskDAG(t testing.TB, p *dag.Params) *dag.DAG {
	t.Helper()
	store, err := dag.OpenPebbleStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	d, err := dag.Open(context.Background(), store, p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type recorder struct {
	mu     sync.Mutex
	hashes []string
}

func (r *recorder) BlockMined(hash string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hashes = append(r.hashes, hash)
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.hashes)
}

func newMiner(t testing.TB, d miner.DAG, submit func(context.Context, *dag.Block) error, rec miner.Recorder) *miner.Miner {
	t.Helper()
	m, err := miner.New(miner.Config{DAG: d, Submit: submit, MiningAddr: dagtest.Addr(d.Params()), Recorder: rec, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Close)
	return m
}

func TestGenerate(t *testing.T) {
	d := diskDAG(t, dag.RegTestParams)
	rec := &recorder{}
	m := newMiner(t, d, d.ProcessBlock, rec)
	hashes, err := m.Generate(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hashes) != 10 {
		t.Fatalf("generate returned %d hashes, want 10", len(hashes))
	}
	for _, h := range hashes {
		if !d.HaveBlock(h) {
			t.Fatalf("generated block %s not in the DAG", h)
		}
	}
	if d.Count() != 11 {
		t.Fatalf("DAG has %d blocks, want genesis + 10", d.Count())
	}
	got := rec.list()
	if len(got) != 10 {
		t.Fatalf("recorder got %d blocks, want 10", len(got))
	}
	for i, h := range hashes {
		if got[i] != h.String() {
			t.Fatalf("recorder order differs at %d", i)
		}
	}
	if err := d.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestGenerateCountsOnlyAccepted refuses every other solved block: generate
// must still return exactly n blocks, all in the DAG.
func TestGenerateCountsOnlyAccepted(t *testing.T) {
	d := diskDAG(t, dag.RegTestParams)
	var calls atomic.Int64
	refuse := errors.New("refused by test")
	submit := func(ctx context.Context, b *dag.Block) error {
		if calls.Add(1)%2 == 1 {
			return refuse
		}
		return d.ProcessBlock(ctx, b)
	}
	rec := &recorder{}
	m := newMiner(t, d, submit, rec)
	hashes, err := m.Generate(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(hashes) != 5 || d.Count() != 6 {
		t.Fatalf("%d hashes, %d blocks in the DAG; want 5 and 6", len(hashes), d.Count())
	}
	for _, h := range hashes {
		if !d.HaveBlock(h) {
			t.Fatalf("returned block %s is not in the DAG", h)
		}
	}
	st := m.Stats()
	if st.Accepted != 5 || st.Rejected < 5 || len(rec.list()) != 5 {
		t.Fatalf("stats %+v, recorder %d; want 5 accepted, >=5 rejected, 5 recorded", st, len(rec.list()))
	}
}

// TestConcurrentMinersBuildMultiParentDAG runs three miners with two workers
// each on one DAG: their blocks race, so the DAG branches and merges.
func TestConcurrentMinersBuildMultiParentDAG(t *testing.T) {
	d := diskDAG(t, dag.RegTestParams)
	var miners []*miner.Miner
	for range 3 {
		m := newMiner(t, d, d.ProcessBlock, nil)
		if err := m.SetGenerate(true, 2); err != nil {
			t.Fatal(err)
		}
		miners = append(miners, m)
	}
	deadline := time.Now().Add(60 * time.Second)
	for d.Count() < 300 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d blocks after 60 s", d.Count())
		}
		time.Sleep(10 * time.Millisecond) // polling the DAG, not synchronising
	}
	for _, m := range miners {
		if err := m.SetGenerate(false, 0); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := d.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	multi := 0
	var accepted uint64
	for _, m := range miners {
		accepted += m.Stats().Accepted
	}
	if int(accepted) != d.Count()-1 {
		t.Fatalf("miners report %d accepted blocks, DAG has %d besides genesis", accepted, d.Count()-1)
	}
	for h := int64(1); h <= d.MaxHeight(); h++ {
		for _, hash := range d.HashesAtHeight(h) {
			if info, _ := d.BlockInfo(hash); len(info.Parents) > 1 {
				multi++
			}
		}
	}
	if multi == 0 {
		t.Fatal("no block has several parents")
	}
	t.Logf("%d blocks, height %d, %d with several parents", d.Count(), d.MaxHeight(), multi)
}

func TestSetGenerateAndBusy(t *testing.T) {
	d := diskDAG(t, dag.RegTestParams)
	m := newMiner(t, d, d.ProcessBlock, nil)
	if m.Generating() {
		t.Fatal("generating before SetGenerate")
	}
	if err := m.SetGenerate(true, 1); err != nil {
		t.Fatal(err)
	}
	if !m.Generating() || m.Workers() != 1 {
		t.Fatalf("generating %v with %d workers, want true and 1", m.Generating(), m.Workers())
	}
	if _, err := m.Generate(context.Background(), 1); !errors.Is(err, miner.ErrBusy) {
		t.Fatalf("generate while mining: %v, want ErrBusy", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for m.Stats().Accepted < 3 {
		if time.Now().After(deadline) {
			t.Fatal("continuous mining made fewer than 3 blocks in 30 s")
		}
		time.Sleep(5 * time.Millisecond) // polling
	}
	if err := m.SetGenerate(false, 0); err != nil {
		t.Fatal(err)
	}
	if m.Generating() {
		t.Fatal("still generating after SetGenerate(false)")
	}
	count := d.Count()
	if _, err := m.Generate(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	if d.Count() != count+2 {
		t.Fatalf("generate 2 after stopping: %d -> %d blocks", count, d.Count())
	}
}

func TestGenerateContextCancel(t *testing.T) {
	f := newFakeDAG()
	m := newMiner(t, f, func(context.Context, *dag.Block) error { return nil }, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	hashes, err := m.Generate(ctx, 1)
	if !errors.Is(err, context.DeadlineExceeded) || len(hashes) != 0 {
		t.Fatalf("got %d hashes, %v; want none and DeadlineExceeded", len(hashes), err)
	}
}

// fakeDAG serves a template no hash can meet, so workers hash until the test
// changes the version.
type fakeDAG struct {
	version   atomic.Uint64
	templates atomic.Int64
}

func newFakeDAG() *fakeDAG { return &fakeDAG{} }

func (f *fakeDAG) Params() *dag.Params { return dag.RegTestParams }
func (f *fakeDAG) Version() uint64     { return f.version.Load() }
func (f *fakeDAG) Template() dag.Template {
	f.templates.Add(1)
	return dag.Template{
		Parents:      []dag.Hash{dag.RegTestParams.GenesisHash},
		Bits:         0x01010000, // target 1: never met
		MinTimestamp: dag.RegTestParams.GenesisBlock.Header.Timestamp,
		Version:      f.version.Load(),
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond) // polling
	}
}

func TestStaleWorkAbandoned(t *testing.T) {
	f := newFakeDAG()
	m := newMiner(t, f, func(context.Context, *dag.Block) error { return nil }, nil)
	if err := m.SetGenerate(true, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first template", func() bool { return f.templates.Load() == 1 && m.Stats().Hashes > 0 })
	f.version.Add(1)
	waitFor(t, "a fresh template after the tips changed", func() bool { return f.templates.Load() >= 2 && m.Stats().Stale >= 1 })
	if m.Stats().Accepted != 0 {
		t.Fatal("accepted a block with an unmeetable target")
	}
}

func TestHashesPerSecond(t *testing.T) {
	f := newFakeDAG()
	m := newMiner(t, f, func(context.Context, *dag.Block) error { return nil }, nil)
	if err := m.SetGenerate(true, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a hash rate", func() bool { return m.HashesPerSecond() > 0 })
	m.Close()
	m.Close() // idempotent
	if err := m.SetGenerate(true, 1); err == nil {
		t.Fatal("SetGenerate after Close succeeded")
	}
}

func TestNewRefusesOtherNetworkAddress(t *testing.T) {
	f := newFakeDAG()
	_, err := miner.New(miner.Config{DAG: f, Submit: func(context.Context, *dag.Block) error { return nil }, MiningAddr: dagtest.Addr(dag.SimNetParams)})
	if err == nil {
		t.Fatal("accepted a simnet address on regtest")
	}
}
