package syncproto

import (
	"context"
	"flag"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

// BenchmarkSync measures an initial sync from one peer of genDAG's
// linear-ish DAG (rounds of 1 to 5 blocks, each round merging the last).
// See benchSync for what is measured and reported.
func BenchmarkSync(b *testing.B) { benchSync(b, 0, 0) }

// BenchmarkSyncWide is BenchmarkSync on the DAG of 8 concurrent miners
// (dagtest Wide: 1 to dag.MaxParents parents per block, side blocks merged
// late).
func BenchmarkSyncWide(b *testing.B) { benchSync(b, 8, 0) }

// BenchmarkSyncHoley is BenchmarkSyncWide for a client that already holds
// part of the DAG: dagtest Holey with an expected 5 missed blocks per DAG,
// each taking every block above it along, so the client lacks most of the
// upper DAG and has holes at any depth.
func BenchmarkSyncHoley(b *testing.B) { benchSync(b, 8, 5) }

// benchSync measures a sync from one peer over loopback into an on-disk DAG
// (a fresh one, or, if holes > 0, one that already holds the part Holey
// keeps with holes/n per block), against the import limit measured in the
// same run: the same missing blocks imported into the same starting DAG
// straight from memory. DAGs of 10,000 and 100,000 blocks, the latter only
// when the -bench pattern names it. Reported per DAG: sync blocks/s and
// bytes/s, import blocks/s, their ratio (goal >= 0.5), the bytes the client
// read over the missing blocks' encoded size (bytes-ratio, goal <= 1.2),
// the missing blocks and the sync time.
func benchSync(b *testing.B, miners int, holes float64) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			if n == 100_000 && !strings.Contains(benchFlag(), "100000") {
				b.Skip("run with -bench 'Sync.*/100000' for the 100,000-block DAGs")
			}
			blocks := benchBlocks(b, miners, n)
			kept, missed := []*dag.Block(nil), blocks
			if holes > 0 {
				kept, missed = dagtest.Holey(blocks, holes/float64(n), rand.New(rand.NewPCG(uint64(n), 7)))
			}
			size := 0
			for _, blk := range missed {
				size += blk.EncodedSize()
			}
			opts := []Option{WithElectionWait(0), WithSampleInterval(time.Hour), WithProgressInterval(time.Hour)}
			server := newDiskNode(b, dag.RegTestParams, opts...)
			load(b, server, blocks)
			// holding returns a fresh on-disk node holding kept (untimed).
			holding := func() *testNode {
				b.StopTimer()
				defer b.StartTimer()
				node := newDiskNode(b, dag.RegTestParams, opts...)
				load(b, node, kept)
				return node
			}

			var syncTime, importTime time.Duration
			var read uint64
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				// Import limit: the missing blocks straight from memory, in
				// the session's batches and as a session commits them (synced
				// later, by the manager's timer).
				imp := holding()
				start := time.Now()
				for i := 0; i < len(missed); i += MaxGetDataHashes {
					for _, err := range imp.d.CommitBlocks(context.Background(), missed[i:min(i+MaxGetDataHashes, len(missed))]) {
						if err != nil {
							b.Fatal(err)
						}
					}
				}
				importTime += time.Since(start)

				client := holding()
				start = time.Now()
				connect(b, client, server)
				for client.d.Count() < server.d.Count() {
					time.Sleep(2 * time.Millisecond) // polling the DAG
				}
				syncTime += time.Since(start)
				b.StopTimer()
				eventually(b, "the session to end", func() bool { return client.m.SyncInfo().LastSession.Peer == server.h.ID() })
				if end := client.m.SyncInfo().LastSession; end.Reason != EndDone {
					b.Fatalf("session ended %q: %s", end.Reason, end.Err)
				}
				read += client.m.Stats().BytesIn
				b.StartTimer()
			}
			syncRate := float64(len(missed)*b.N) / syncTime.Seconds()
			importRate := float64(len(missed)*b.N) / importTime.Seconds()
			b.ReportMetric(syncRate, "sync-blocks/s")
			b.ReportMetric(float64(size*b.N)/syncTime.Seconds(), "sync-bytes/s")
			b.ReportMetric(importRate, "import-blocks/s")
			b.ReportMetric(syncRate/importRate, "ratio")
			b.ReportMetric(float64(read)/float64(size*b.N), "bytes-ratio")
			b.ReportMetric(float64(len(missed)), "missing")
			b.ReportMetric(syncTime.Seconds()/float64(b.N), "sync-s")
		})
	}
}

// benchDAGs caches the benchmarks' DAGs across runs.
var benchDAGs sync.Map // benchDAG → []*dag.Block

type benchDAG struct{ miners, n int }

// benchBlocks returns n blocks, parents first: genDAG's DAG if miners is 0,
// else dagtest Wide's with that many miners.
func benchBlocks(b *testing.B, miners, n int) []*dag.Block {
	key := benchDAG{miners, n}
	if v, ok := benchDAGs.Load(key); ok {
		return v.([]*dag.Block)
	}
	var blocks []*dag.Block
	if miners == 0 {
		blocks = genDAG(b, 99, n)
	} else {
		g, err := dagtest.NewGenerator(dag.RegTestParams, 99)
		if err != nil {
			b.Fatal(err)
		}
		if blocks, err = g.Wide(n, miners); err != nil {
			b.Fatal(err)
		}
	}
	benchDAGs.Store(key, blocks)
	return blocks
}

// benchFlag returns the -test.bench pattern.
func benchFlag() string {
	if f := flag.Lookup("test.bench"); f != nil {
		return f.Value.String()
	}
	return ""
}
