package metrics

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxBlockMetrics is how many recent mined blocks keep their hash and solve
// time. It is soterd's bound for getblockmetrics; the block count itself keeps
// counting every block.
const MaxBlockMetrics = 5000

// BlockMetrics is a snapshot of the mined-block metrics, with soterd's
// getblockmetrics JSON field names and meaning.
type BlockMetrics struct {
	// BlkGenCount is the number of blocks this node has mined and the DAG
	// accepted since start, including those no longer listed below.
	BlkGenCount uint64 `json:"blkgencount"`
	// BlkHashes are the hashes of the most recent mined blocks (at most
	// MaxBlockMetrics), oldest first.
	BlkHashes []string `json:"blkhashes"`
	// BlkGenTimes are the solve times in milliseconds of the blocks in
	// BlkHashes, index for index.
	BlkGenTimes []int64 `json:"blkgentimes"`
}

// minedBlock is one entry of the recent-blocks ring.
type minedBlock struct {
	hash    string
	solveMS int64
}

// Manager collects the node's metrics and owns the node's one Prometheus
// registry. Its methods are safe for concurrent use, and every recording
// method is a no-op on a nil *Manager. Create one with New; the zero value is
// not usable.
type Manager struct {
	// reg is the node's registry: the Go and process collectors, dagnode's
	// own families, and whatever libp2p registers through Registry.
	reg *prometheus.Registry
	// accepted holds one child of dagnode_blocks_accepted_total per source,
	// resolved once so that BlockAccepted does no label lookup.
	accepted [numSources]prometheus.Counter
	// requests is dagnode_request_duration_seconds.
	requests *prometheus.HistogramVec
	// sources are the snapshot functions read at scrape time.
	sources atomic.Pointer[Sources]

	mu sync.Mutex
	// blkGenCount counts every BlockMined call.
	blkGenCount uint64
	// recent is a ring of the last MaxBlockMetrics mined blocks. It grows by
	// append until full; after that next is both the slot to overwrite and
	// the index of the oldest entry.
	recent []minedBlock
	next   int
	// encoded is the JSON of the current BlockMetrics, made by the first
	// BlockMetricsJSON after a change and dropped by BlockMined: blocks are
	// mined seconds apart, queries may come thousands of times a second.
	encoded atomic.Pointer[[]byte]
}

// BlockMined records a block this node mined and the DAG accepted: it counts
// the block and remembers its hash and solveTime (in whole milliseconds)
// among the most recent MaxBlockMetrics. Calling it on a nil *Manager does
// nothing.
func (m *Manager) BlockMined(hash string, solveTime time.Duration) {
	if m == nil {
		return
	}
	b := minedBlock{hash: hash, solveMS: solveTime.Milliseconds()}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.encoded.Store(nil)
	m.blkGenCount++
	if len(m.recent) < MaxBlockMetrics {
		if m.recent == nil {
			// One allocation up front instead of repeated growth.
			m.recent = make([]minedBlock, 0, MaxBlockMetrics)
		}
		m.recent = append(m.recent, b)
		return
	}
	m.recent[m.next] = b
	m.next = (m.next + 1) % MaxBlockMetrics
}

// BlockMetricsJSON returns BlockMetrics encoded as JSON, encoding it only
// when a block was mined since the last call. The bytes are shared: callers
// must not modify them.
func (m *Manager) BlockMetricsJSON() []byte {
	if m != nil {
		if p := m.encoded.Load(); p != nil {
			return *p
		}
	}
	if m != nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		if p := m.encoded.Load(); p != nil { // encoded meanwhile
			return *p
		}
	}
	b, err := json.Marshal(m.blockMetricsLocked())
	if err != nil {
		panic("metrics: encoding BlockMetrics: " + err.Error()) // strings and integers always encode
	}
	if m != nil {
		m.encoded.Store(&b)
	}
	return b
}

// BlockMetrics returns a snapshot of the mined-block metrics. The slices are
// fresh copies, oldest block first, and are empty (not nil) before the first
// block. On a nil *Manager it returns an empty snapshot.
func (m *Manager) BlockMetrics() BlockMetrics {
	if m == nil {
		return BlockMetrics{BlkHashes: []string{}, BlkGenTimes: []int64{}}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.blockMetricsLocked()
}

// blockMetricsLocked builds the snapshot; called with mu held (or on a nil
// *Manager).
func (m *Manager) blockMetricsLocked() BlockMetrics {
	if m == nil {
		return BlockMetrics{BlkHashes: []string{}, BlkGenTimes: []int64{}}
	}
	n := len(m.recent)
	s := BlockMetrics{
		BlkGenCount: m.blkGenCount,
		BlkHashes:   make([]string, 0, n),
		BlkGenTimes: make([]int64, 0, n),
	}
	// While the ring is filling, next is 0 and this is one pass in order.
	for i := range n {
		b := m.recent[(m.next+i)%n]
		s.BlkHashes = append(s.BlkHashes, b.hash)
		s.BlkGenTimes = append(s.BlkGenTimes, b.solveMS)
	}
	return s
}
