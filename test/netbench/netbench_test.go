package netbench

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// blockInterval is the network's block rate: one block every 500 ms.
const blockInterval = 500 * time.Millisecond

// params are a bench run's size.
type params struct {
	nodes, blocks int
	seed          uint64
}

// envParams reads DAGNODE_NETBENCH_NODES, _BLOCKS and _SEED, with defaults.
func envParams(tb testing.TB, nodes, blocks int) params {
	tb.Helper()
	p := params{nodes: nodes, blocks: blocks, seed: 1}
	for _, e := range []struct {
		name string
		v    *int
		min  int
	}{{"DAGNODE_NETBENCH_NODES", &p.nodes, 3}, {"DAGNODE_NETBENCH_BLOCKS", &p.blocks, 1}} {
		if s := os.Getenv(e.name); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < e.min || v > 200 {
				tb.Fatalf("%s=%q: want an integer from %d to 200", e.name, s, e.min)
			}
			*e.v = v
		}
	}
	if s := os.Getenv("DAGNODE_NETBENCH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			tb.Fatalf("DAGNODE_NETBENCH_SEED=%q: %v", s, err)
		}
		p.seed = v
	}
	return p
}

// bench runs both: dagnode, then bare GossipSub on the same namespaces,
// links and connection graph, with the same origins at the same rate.
func bench(tb testing.TB, p params) (dn, bare figures) {
	nw := newNetwork(tb, p.nodes, p.seed)
	rng := rand.New(rand.NewPCG(p.seed, 2))
	order := make([]int, p.blocks)
	for k := range order {
		order[k] = rng.IntN(p.nodes)
	}
	d := runDagnode(nw, order, blockInterval)
	if tb.Failed() {
		tb.FailNow()
	}
	b := runBare(nw, d.graph, d.size, order, blockInterval)
	return report(tb, &d.result, &b, d.size)
}

// TestNetBench: every block mined reaches every node over latency, and so
// does every bare message; the figures are logged, not asserted. 12 nodes
// and 40 blocks by default (CI); DAGNODE_NETBENCH_NODES and _BLOCKS scale it.
func TestNetBench(t *testing.T) {
	needBed(t)
	bench(t, envParams(t, 12, 40))
}

// BenchmarkNetBench is the full bench: 50 nodes, 120 blocks (one minute).
// Each iteration runs both networks once; use -benchtime 1x.
func BenchmarkNetBench(b *testing.B) {
	needBed(b)
	p := envParams(b, 50, 120)
	for range b.N {
		dn, bare := bench(b, p)
		b.ReportMetric(ms(dn.p50), "p50-ms")
		b.ReportMetric(ms(dn.p99), "p99-ms")
		b.ReportMetric(ms(bare.p50), "bare-p50-ms")
		b.ReportMetric(ms(bare.p99), "bare-p99-ms")
		b.ReportMetric(float64(dn.p50)/float64(bare.p50), "p50-ratio")
		b.ReportMetric(float64(dn.p99)/float64(bare.p99), "p99-ratio")
		b.ReportMetric(dn.rxPerBlock, "rx-B/block/node")
		b.ReportMetric(bare.rxPerBlock, "bare-rx-B/block/node")
		b.ReportMetric(dn.rssMean, "RSS-MiB")
		b.ReportMetric(bare.rssMean, "bare-RSS-MiB")
		b.ReportMetric(dn.pssMean, "PSS-MiB")
		b.ReportMetric(bare.pssMean, "bare-PSS-MiB")
		b.ReportMetric(dn.pssMean/bare.pssMean, "PSS-ratio")
		b.ReportMetric(dn.rssMean/bare.rssMean, "RSS-ratio")
	}
}
