package dag_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

const (
	// importChunk is how many blocks one ProcessBlocks call (and one baseline
	// batch) carries, as the sync manager hands over a downloaded range.
	importChunk = 500
	// importSingle is how many blocks the one-sync-per-block measurement
	// processes, as a node does for gossiped blocks.
	importSingle = 2000
	// importSeed fixes the generated DAG so runs are comparable.
	importSeed = 42
)

// importSet is a generated DAG, kept across b.N and sub-benchmark reruns.
type importSet struct {
	blocks  []*dag.Block
	hashes  []dag.Hash
	encoded [][]byte
}

var importSets struct {
	sync.Mutex
	m map[int]*importSet
}

// importBlocks returns n blocks of a random multi-parent regtest DAG (up to 5
// blocks a round), generating them on first use.
func importBlocks(b *testing.B, n int) *importSet {
	b.Helper()
	importSets.Lock()
	defer importSets.Unlock()
	if s := importSets.m[n]; s != nil {
		return s
	}
	g, err := dagtest.NewGenerator(dag.RegTestParams, importSeed)
	if err != nil {
		b.Fatal(err)
	}
	blocks, err := g.Build(n, 5)
	if err != nil {
		b.Fatal(err)
	}
	s := &importSet{blocks: blocks}
	for _, blk := range blocks {
		s.hashes = append(s.hashes, blk.Hash())
		s.encoded = append(s.encoded, blk.Encode())
	}
	if importSets.m == nil {
		importSets.m = make(map[int]*importSet)
	}
	importSets.m[n] = s
	return s
}

// benchSelects reports whether the -bench pattern names s, so a slow case
// runs only when asked for: the pattern "Import/10000" also matches 100000.
func benchSelects(s string) bool {
	f := flag.Lookup("test.bench")
	return f != nil && strings.Contains(f.Value.String(), s)
}

// BenchmarkImport measures importing a generated DAG into a fresh on-disk DAG
// in ProcessBlocks chunks of importChunk (blocks/s, the timed part), against
// the storage floor of writing the same encoded blocks as plain batched puts
// with one sync per batch (baseline-blocks/s; ratio is import over baseline),
// and one ProcessBlock per block for the first importSingle blocks
// (single-blocks/s: one disk sync per block, as for gossiped blocks).
func BenchmarkImport(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			if n > 10_000 && !benchSelects(strconv.Itoa(n)) {
				b.Skipf("generating %d blocks is slow; run with -bench 'Import/%d' to include it", n, n)
			}
			benchImport(b, n)
		})
	}
}

func benchImport(b *testing.B, n int) {
	ctx := context.Background()
	p := dag.RegTestParams
	quiet := dag.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.StopTimer()
	set := importBlocks(b, n)
	b.ReportAllocs()

	openDAG := func() (*dag.DAG, func()) {
		store, err := dag.OpenPebbleStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		d, err := dag.Open(ctx, store, p, quiet)
		if err != nil {
			store.Close()
			b.Fatal(err)
		}
		return d, func() {
			if err := store.Close(); err != nil {
				b.Error(err)
			}
		}
	}

	var importTime, baselineTime, singleTime time.Duration
	single := min(importSingle, n)
	for range b.N {
		// Import: the timed part.
		d, closeStore := openDAG()
		start := time.Now()
		b.StartTimer()
		for lo := 0; lo < n; lo += importChunk {
			chunk := set.blocks[lo:min(lo+importChunk, n)]
			for i, err := range d.ProcessBlocks(ctx, chunk) {
				if err != nil {
					b.Fatalf("block %d: %v", lo+i, err)
				}
			}
		}
		b.StopTimer()
		importTime += time.Since(start)
		if got := d.Count(); got != n+1 {
			b.Fatalf("imported DAG holds %d blocks, want %d", got, n+1)
		}
		closeStore()

		// Baseline: the same bytes, batched and synced the same way, no
		// validation and no index entries.
		store, err := dag.OpenPebbleStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		for lo := 0; lo < n; lo += importChunk {
			batch, err := store.Batch(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for i := lo; i < min(lo+importChunk, n); i++ {
				if err := batch.Put(ctx, ds.NewKey("/bench/"+set.hashes[i].String()), set.encoded[i]); err != nil {
					b.Fatal(err)
				}
			}
			if err := batch.Commit(ctx); err != nil {
				b.Fatal(err)
			}
			if err := store.Sync(ctx, ds.NewKey("/bench")); err != nil {
				b.Fatal(err)
			}
		}
		baselineTime += time.Since(start)
		if err := store.Close(); err != nil {
			b.Fatal(err)
		}

		// Single: one call and one sync per block.
		d, closeStore = openDAG()
		start = time.Now()
		for i, blk := range set.blocks[:single] {
			if err := d.ProcessBlock(ctx, blk); err != nil {
				b.Fatalf("block %d: %v", i, err)
			}
		}
		singleTime += time.Since(start)
		if got := d.Count(); got != single+1 {
			b.Fatalf("DAG holds %d blocks after single imports, want %d", got, single+1)
		}
		closeStore()
	}

	rate := func(blocks int, d time.Duration) float64 { return float64(blocks) * float64(b.N) / d.Seconds() }
	imp, base := rate(n, importTime), rate(n, baselineTime)
	b.ReportMetric(imp, "blocks/s")
	b.ReportMetric(base, "baseline-blocks/s")
	b.ReportMetric(imp/base, "ratio")
	b.ReportMetric(rate(single, singleTime), "single-blocks/s")
}

// wideSets caches BenchmarkImportGHOSTDAG's DAGs across reruns.
var wideSets struct {
	sync.Mutex
	m map[int][]*dag.Block
}

// wideBlocks returns n blocks of a wide regtest DAG from 8 concurrent miners
// (dagtest's Wide), generating them on first use.
func wideBlocks(b *testing.B, n int) []*dag.Block {
	b.Helper()
	wideSets.Lock()
	defer wideSets.Unlock()
	if s := wideSets.m[n]; s != nil {
		return s
	}
	g, err := dagtest.NewGenerator(dag.RegTestParams, importSeed)
	if err != nil {
		b.Fatal(err)
	}
	blocks, err := g.Wide(n, 8)
	if err != nil {
		b.Fatal(err)
	}
	if wideSets.m == nil {
		wideSets.m = make(map[int][]*dag.Block)
	}
	wideSets.m[n] = blocks
	return blocks
}

// BenchmarkImportGHOSTDAG measures importing a wide DAG (8 concurrent
// miners) into a fresh on-disk DAG, in ProcessBlocks chunks of importChunk,
// with GHOSTDAG (blocks/s, µs/block) against the same import without it, as
// the DAG was before GHOSTDAG (plain-blocks/s; ratio is GHOSTDAG over
// plain). The two alternate within each iteration, so load hits both.
func BenchmarkImportGHOSTDAG(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			if n > 10_000 && !benchSelects(strconv.Itoa(n)) {
				b.Skipf("generating %d blocks is slow; run with -bench 'ImportGHOSTDAG/%d' to include it", n, n)
			}
			benchImportGHOSTDAG(b, n)
		})
	}
}

func benchImportGHOSTDAG(b *testing.B, n int) {
	ctx := context.Background()
	quiet := dag.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.StopTimer()
	blocks := wideBlocks(b, n)
	run := func(opts ...dag.Option) time.Duration {
		store, err := dag.OpenPebbleStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		d, err := dag.Open(ctx, store, dag.RegTestParams, append(opts, quiet)...)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for lo := 0; lo < n; lo += importChunk {
			for i, err := range d.ProcessBlocks(ctx, blocks[lo:min(lo+importChunk, n)]) {
				if err != nil {
					b.Fatalf("block %d: %v", lo+i, err)
				}
			}
		}
		took := time.Since(start)
		if got := d.Count(); got != n+1 {
			b.Fatalf("imported DAG holds %d blocks, want %d", got, n+1)
		}
		return took
	}
	var with, plain time.Duration
	for i := range b.N {
		if i%2 == 0 {
			with += run()
			plain += run(dag.WithoutGHOSTDAG())
		} else {
			plain += run(dag.WithoutGHOSTDAG())
			with += run()
		}
	}
	rate := func(d time.Duration) float64 { return float64(n) * float64(b.N) / d.Seconds() }
	b.ReportMetric(rate(with), "blocks/s")
	b.ReportMetric(rate(plain), "plain-blocks/s")
	b.ReportMetric(rate(with)/rate(plain), "ratio")
	b.ReportMetric(with.Seconds()*1e6/float64(n*b.N), "µs/block")
}

// BenchmarkGHOSTDAGPerBlock measures the cost per block of adding a wide
// DAG (8 concurrent miners) to an in-memory store, so the figures are the
// DAG's own work (validation, GHOSTDAG, reachability, index) without the
// disk: µs/block over the whole DAG, and over its first and last tenth
// (first-µs/block, last-µs/block). Flat means the cost per block does not
// grow with the DAG.
func BenchmarkGHOSTDAGPerBlock(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			if n > 10_000 && !benchSelects(strconv.Itoa(n)) {
				b.Skipf("generating %d blocks is slow; run with -bench 'GHOSTDAGPerBlock/%d' to include it", n, n)
			}
			ctx := context.Background()
			quiet := dag.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
			b.StopTimer()
			blocks := wideBlocks(b, n)
			var all, first, last time.Duration
			tenth := n / 10
			for range b.N {
				d, err := dag.Open(ctx, dssync.MutexWrap(ds.NewMapDatastore()), dag.RegTestParams, quiet)
				if err != nil {
					b.Fatal(err)
				}
				for lo := 0; lo < n; lo += importChunk {
					start := time.Now()
					for i, err := range d.ProcessBlocks(ctx, blocks[lo:min(lo+importChunk, n)]) {
						if err != nil {
							b.Fatalf("block %d: %v", lo+i, err)
						}
					}
					took := time.Since(start)
					all += took
					switch {
					case lo < tenth:
						first += took
					case lo >= n-tenth:
						last += took
					}
				}
			}
			per := func(d time.Duration, blocks int) float64 { return d.Seconds() * 1e6 / float64(blocks*b.N) }
			b.ReportMetric(per(all, n), "µs/block")
			b.ReportMetric(per(first, tenth), "first-µs/block")
			b.ReportMetric(per(last, tenth), "last-µs/block")
		})
	}
}
