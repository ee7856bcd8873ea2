package syncproto

import (
	"context"
	"flag"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
)

var benchDAGs sync.Map // size → []*dag.Block

func benchBlocks(b *testing.B, n int) []*dag.Block {
	if v, ok := benchDAGs.Load(n); ok {
		return v.([]*dag.Block)
	}
	blocks := genDAG(b, 99, n)
	benchDAGs.Store(n, blocks)
	return blocks
}

// BenchmarkSync measures an initial sync from one peer over loopback into a
// fresh on-disk DAG, against the import limit measured in the same run: the
// same blocks imported into a fresh on-disk DAG straight from memory.
// Reported: sync blocks/s and bytes/s, import blocks/s, and their ratio
// (goal >= 0.5). The 100,000-block case runs only when the -bench pattern
// names it.
func BenchmarkSync(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			if n == 100_000 && !strings.Contains(benchFlag(), "100000") {
				b.Skip("run with -bench 'Sync/100000' for the 100,000-block DAG")
			}
			blocks := benchBlocks(b, n)
			var bytes int
			for _, blk := range blocks {
				bytes += blk.EncodedSize()
			}
			opts := []Option{WithElectionWait(0), WithSampleInterval(time.Hour), WithProgressInterval(time.Hour)}
			server := newDiskNode(b, dag.RegTestParams, opts...)
			load(b, server, blocks)

			var syncTime, importTime time.Duration
			b.ResetTimer()
			for range b.N {
				// Import limit: the same blocks straight from memory.
				b.StopTimer()
				imp := newDiskNode(b, dag.RegTestParams, opts...)
				b.StartTimer()
				start := time.Now()
				ctx := context.Background()
				for i := 0; i < len(blocks); i += MaxGetDataHashes {
					for _, err := range imp.d.ProcessBlocks(ctx, blocks[i:min(i+MaxGetDataHashes, len(blocks))]) {
						if err != nil {
							b.Fatal(err)
						}
					}
				}
				importTime += time.Since(start)

				b.StopTimer()
				client := newDiskNode(b, dag.RegTestParams, opts...)
				b.StartTimer()
				start = time.Now()
				connect(b, client, server)
				for client.d.Count() < server.d.Count() {
					time.Sleep(2 * time.Millisecond) // polling the DAG
				}
				syncTime += time.Since(start)
			}
			syncRate := float64(n*b.N) / syncTime.Seconds()
			importRate := float64(n*b.N) / importTime.Seconds()
			b.ReportMetric(syncRate, "sync-blocks/s")
			b.ReportMetric(float64(bytes*b.N)/syncTime.Seconds(), "sync-bytes/s")
			b.ReportMetric(importRate, "import-blocks/s")
			b.ReportMetric(syncRate/importRate, "ratio")
			b.ReportMetric(syncTime.Seconds()/float64(b.N), "sync-s")
		})
	}
}

// benchFlag returns the -test.bench pattern.
func benchFlag() string {
	if f := flag.Lookup("test.bench"); f != nil {
		return f.Value.String()
	}
	return ""
}
