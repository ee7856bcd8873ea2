package miner

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dagnode/dagnode/dag"
)

// Tuning of the worker loop.
const (
	// hashCheckInterval is how many nonces a worker tries between checks for
	// stale work and shutdown: about a millisecond of hashing, so a worker
	// reacts to new tips quickly while the checks cost nothing measurable.
	hashCheckInterval = 1 << 12

	// templateRefresh bounds how long a worker keeps one template, so block
	// timestamps stay close to the clock even when no new tips arrive.
	templateRefresh = 5 * time.Second

	// rateWindow is how far back HashesPerSecond looks.
	rateWindow = 10 * time.Second

	// rateSampleInterval is how often the hash counter is sampled.
	rateSampleInterval = time.Second

	// DefaultSummaryInterval is how often a summary line is logged while
	// mining continuously.
	DefaultSummaryInterval = 30 * time.Second
)

// ErrBusy is returned by Generate while the miner is already mining, and by
// SetGenerate while Generate runs.
var ErrBusy = errors.New("miner: already mining")

// DAG is what the miner reads from the DAG.
type DAG interface {
	// Template returns a block template on the current tips.
	Template() dag.Template
	// Version changes whenever a block is added.
	Version() uint64
	// Params returns the network parameters.
	Params() *dag.Params
}

// Recorder receives every block this miner mined and the DAG accepted.
type Recorder interface {
	BlockMined(hash string, solveTime time.Duration)
}

// Config holds the miner's required dependencies.
type Config struct {
	// DAG supplies templates.
	DAG DAG
	// Submit hands a solved block to the node, as a block from the network
	// would be; nil means the DAG accepted it.
	Submit func(ctx context.Context, b *dag.Block) error
	// MiningAddr is the address credited in mined blocks.
	MiningAddr [dag.AddrLen]byte
	// Recorder, if not nil, gets every accepted mined block.
	Recorder Recorder
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// SummaryInterval is the period of the summary log line while mining
	// continuously; DefaultSummaryInterval if zero.
	SummaryInterval time.Duration
}

// Stats are the miner's counters since New.
type Stats struct {
	// Accepted counts mined blocks the DAG accepted.
	Accepted uint64
	// Rejected counts solved blocks Submit refused.
	Rejected uint64
	// Stale counts templates abandoned because the tips changed.
	Stale uint64
	// Hashes counts hashes computed.
	Hashes uint64
}

// Miner is a CPU miner. Its methods are safe for concurrent use.
type Miner struct {
	cfg Config
	log *slog.Logger

	accepted atomic.Uint64
	rejected atomic.Uint64
	stale    atomic.Uint64
	hashes   atomic.Uint64

	mu          sync.Mutex
	workers     int                // continuous mining worker count
	stopMining  context.CancelFunc // non-nil while mining continuously
	miningDone  *sync.WaitGroup    // the continuous workers
	generating  bool               // Generate is running
	closed      bool
	rateSamples []rateSample

	quit chan struct{}
	wg   sync.WaitGroup // the monitor
}

type rateSample struct {
	at     time.Time
	hashes uint64
}

// New returns a miner that is not mining; Start starts its monitor.
func New(cfg Config) (*Miner, error) {
	if cfg.DAG == nil || cfg.Submit == nil {
		return nil, errors.New("miner: Config.DAG and Config.Submit are required")
	}
	if cfg.MiningAddr[0] != cfg.DAG.Params().AddrPrefix {
		return nil, fmt.Errorf("miner: mining address is not a %s address", cfg.DAG.Params().Name)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SummaryInterval <= 0 {
		cfg.SummaryInterval = DefaultSummaryInterval
	}
	return &Miner{cfg: cfg, log: cfg.Logger, workers: runtime.NumCPU(), quit: make(chan struct{})}, nil
}

// Start starts the monitor that measures the hash rate and logs the summary.
func (m *Miner) Start() {
	m.wg.Go(m.monitor)
}

// Close stops mining and the monitor and waits for them. It is idempotent.
func (m *Miner) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	close(m.quit)
	done := m.stopLocked()
	m.mu.Unlock()
	if done != nil {
		done.Wait()
	}
	m.wg.Wait()
}

// SetGenerate starts (on) or stops continuous mining. workers > 0 sets the
// number of workers, workers < 0 means one per core, and workers == 0 keeps
// the current number (one per core unless set before). Calling it while mining
// restarts the workers with the new count.
func (m *Miner) SetGenerate(on bool, workers int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("miner: closed")
	}
	if on && m.generating {
		return ErrBusy
	}
	switch {
	case workers > 0:
		m.workers = workers
	case workers < 0:
		m.workers = runtime.NumCPU()
	}
	if done := m.stopLocked(); done != nil {
		// Workers never take m.mu, so waiting here cannot deadlock.
		done.Wait()
	}
	if !on {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := new(sync.WaitGroup)
	for i := range m.workers {
		done.Go(func() { m.work(ctx, i, m.submitContinuous) })
	}
	m.stopMining, m.miningDone = cancel, done
	m.log.Info("mining started", "workers", m.workers, "network", m.cfg.DAG.Params().Name)
	return nil
}

// stopLocked cancels continuous mining and returns its workers to wait for.
// Called with m.mu held.
func (m *Miner) stopLocked() *sync.WaitGroup {
	if m.stopMining == nil {
		return nil
	}
	m.stopMining()
	done := m.miningDone
	m.stopMining, m.miningDone = nil, nil
	m.log.Info("mining stopped")
	return done
}

// Generating reports whether the miner mines continuously (getgenerate).
func (m *Miner) Generating() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopMining != nil
}

// Workers returns the number of workers continuous mining and Generate use.
func (m *Miner) Workers() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.workers
}

// Stats returns the miner's counters.
func (m *Miner) Stats() Stats {
	return Stats{Accepted: m.accepted.Load(), Rejected: m.rejected.Load(), Stale: m.stale.Load(), Hashes: m.hashes.Load()}
}

// HashesPerSecond returns the hash rate over the last rateWindow, as sampled
// by the monitor (zero before Start has run for a second).
func (m *Miner) HashesPerSecond() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.rateSamples) < 2 {
		return 0
	}
	first, last := m.rateSamples[0], m.rateSamples[len(m.rateSamples)-1]
	secs := last.at.Sub(first.at).Seconds()
	if secs <= 0 {
		return 0
	}
	return float64(last.hashes-first.hashes) / secs
}

// Generate mines until the DAG has accepted n blocks from it and returns their
// hashes in the order they were accepted (soterd's generate, except that
// refused blocks are not counted). It fails with ErrBusy while continuous
// mining is on. If ctx ends first, it returns the blocks accepted so far with
// the context's error.
func (m *Miner) Generate(ctx context.Context, n int) ([]dag.Hash, error) {
	if n <= 0 {
		return nil, fmt.Errorf("miner: generate needs a positive block count, got %d", n)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errors.New("miner: closed")
	}
	if m.generating || m.stopMining != nil {
		m.mu.Unlock()
		return nil, ErrBusy
	}
	m.generating = true
	workers := m.workers
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.generating = false
		m.mu.Unlock()
	}()

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		mu     sync.Mutex
		hashes = make([]dag.Hash, 0, n)
	)
	found := func(ctx context.Context, b *dag.Block, solve time.Duration) bool {
		mu.Lock()
		defer mu.Unlock()
		if len(hashes) >= n {
			return false
		}
		if !m.submit(ctx, b, solve) {
			return true
		}
		hashes = append(hashes, b.Hash())
		if len(hashes) == n {
			cancel()
			return false
		}
		return true
	}
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { m.work(ctx, i, found) })
	}
	select {
	case <-ctx.Done():
	case <-m.quit:
		cancel()
	}
	wg.Wait()
	if len(hashes) < n {
		err := parent.Err()
		if err == nil {
			err = errors.New("miner: closed")
		}
		return hashes, fmt.Errorf("miner: generate stopped after %d of %d blocks: %w", len(hashes), n, err)
	}
	return hashes, nil
}

func (m *Miner) submitContinuous(ctx context.Context, b *dag.Block, solve time.Duration) bool {
	m.submit(ctx, b, solve)
	return true
}

// submit hands b to the node and records the outcome; it reports acceptance.
func (m *Miner) submit(ctx context.Context, b *dag.Block, solve time.Duration) bool {
	hash := b.Hash()
	if err := m.cfg.Submit(ctx, b); err != nil {
		m.rejected.Add(1)
		m.log.Warn("mined block refused", "hash", hash, "err", err)
		return false
	}
	m.accepted.Add(1)
	if m.cfg.Recorder != nil {
		m.cfg.Recorder.BlockMined(hash.String(), solve)
	}
	m.log.Debug("mined block accepted", "hash", hash, "parents", len(b.Header.Parents), "solve", solve)
	return true
}

// work is one worker: template, nonce loop, submit, until ctx ends or found
// returns false.
func (m *Miner) work(ctx context.Context, id int, found func(context.Context, *dag.Block, time.Duration) bool) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(id)))
	var buf [dag.MaxHeaderSize]byte
	for ctx.Err() == nil {
		b, solve, ok := m.solveOne(ctx, rng, buf[:0])
		if !ok {
			continue
		}
		if !found(ctx, b, solve) {
			return
		}
	}
}

// solveOne works on one template until it is solved, stale, too old, or ctx
// ends. It returns the solved block and the time taken.
func (m *Miner) solveOne(ctx context.Context, rng *rand.Rand, buf []byte) (*dag.Block, time.Duration, bool) {
	start := time.Now()
	t := m.cfg.DAG.Template()
	target, ok := dag.TargetFromBits(t.Bits)
	if !ok {
		m.log.Error("template with invalid bits", "bits", t.Bits)
		return nil, 0, false
	}
	b := &dag.Block{Body: dag.Body{MinerAddr: m.cfg.MiningAddr}}
	b.Header = dag.Header{
		Version:   dag.BlockVersion,
		Net:       m.cfg.DAG.Params().Net,
		Parents:   t.Parents,
		Timestamp: max(start.UnixMilli(), t.MinTimestamp),
		Bits:      t.Bits,
		BodyHash:  b.Body.Hash(),
	}
	hdr := b.Header.AppendEncode(buf)
	nonceAt := len(hdr) - dag.NonceOffsetFromEnd
	nonce := rng.Uint64()
	var done uint64
	for {
		for range hashCheckInterval {
			binary.LittleEndian.PutUint64(hdr[nonceAt:], nonce)
			h := dag.DoubleSHA256(hdr)
			done++
			if dag.MeetsTarget(&h, &target) {
				m.hashes.Add(done)
				b.Header.Nonce = nonce
				return b, time.Since(start), true
			}
			nonce++
		}
		m.hashes.Add(done)
		done = 0
		switch {
		case m.cfg.DAG.Version() != t.Version:
			m.stale.Add(1)
			return nil, 0, false
		case ctx.Err() != nil:
			return nil, 0, false
		case time.Since(start) > templateRefresh:
			return nil, 0, false
		}
	}
}

// monitor samples the hash counter and logs a summary while mining.
func (m *Miner) monitor() {
	sample := time.NewTicker(rateSampleInterval)
	defer sample.Stop()
	summary := time.NewTicker(m.cfg.SummaryInterval)
	defer summary.Stop()
	lastAccepted := m.accepted.Load()
	for {
		select {
		case <-m.quit:
			return
		case now := <-sample.C:
			m.mu.Lock()
			m.rateSamples = append(m.rateSamples, rateSample{at: now, hashes: m.hashes.Load()})
			for len(m.rateSamples) > 2 && now.Sub(m.rateSamples[0].at) > rateWindow {
				m.rateSamples = m.rateSamples[1:]
			}
			m.mu.Unlock()
		case <-summary.C:
			if !m.Generating() {
				continue
			}
			acc := m.accepted.Load()
			m.log.Info("mining", "blocks", acc-lastAccepted, "interval", m.cfg.SummaryInterval,
				"total_blocks", acc, "hashes_per_sec", int64(m.HashesPerSecond()), "workers", m.Workers())
			lastAccepted = acc
		}
	}
}
