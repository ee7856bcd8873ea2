package main

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	corehost "github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

// propagationBlocks is how many blocks each measurement publishes.
const propagationBlocks = 100

// topology returns, for each node i > 0, up to three distinct earlier nodes
// to connect to: a random sparse connected graph, the same for both runs.
func topology(n int, seed uint64) [][]int {
	rng := rand.New(rand.NewPCG(seed, 7))
	links := make([][]int, n)
	for i := 1; i < n; i++ {
		k := min(i, 1+rng.IntN(3))
		for _, j := range rng.Perm(i)[:k] {
			links[i] = append(links[i], j)
		}
	}
	return links
}

func connectAll(b *testing.B, hosts []corehost.Host, links [][]int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i, ls := range links {
		for _, j := range ls {
			if err := hosts[i].Connect(ctx, peer.AddrInfo{ID: hosts[j].ID(), Addrs: hosts[j].Addrs()}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func rssBytes() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// arrivals waits for a message id on every node.
type arrivals struct {
	mu   sync.Mutex
	seen map[string]int
	done map[string]chan struct{}
	want int
}

func newArrivals(want int) *arrivals {
	return &arrivals{seen: map[string]int{}, done: map[string]chan struct{}{}, want: want}
}

func (a *arrivals) expect(id string) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := make(chan struct{})
	a.done[id] = ch
	if a.seen[id] >= a.want {
		close(ch)
	}
	return ch
}

func (a *arrivals) arrived(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen[id]++
	if a.seen[id] == a.want {
		if ch := a.done[id]; ch != nil {
			close(ch)
		}
	}
}

func (a *arrivals) wait(b *testing.B, id string, ch chan struct{}) {
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		a.mu.Lock()
		defer a.mu.Unlock()
		b.Fatalf("message %x reached %d of %d nodes in 30 s", id, a.seen[id], a.want)
	}
}

// BenchmarkPropagation measures block propagation on 20 and 50 in-process
// nodes on loopback: from handing a new block to one node until every node
// has validated it (and so forwarded it), and until every node has it on
// disk, p50 and p99 over 100 blocks, against bare GossipSub (default
// parameters, no validation, same message size) on the same topology in the
// same run. All nodes share this machine's one disk, so the on-disk figure
// includes n fsyncs queueing on it. Also heap per node and the process RSS
// per node. The goal is a ratio <= 1.25.
func BenchmarkPropagation(b *testing.B) {
	for _, n := range []int{20, 50} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			links := topology(n, uint64(n))
			for range b.N {
				size, bare, bareHeap := bareGossip(b, n, links)
				valid, disk, heap, rss := dagnodeGossip(b, n, links)
				ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
				b.ReportMetric(ms(bare.p50), "bare-p50-ms")
				b.ReportMetric(ms(bare.p99), "bare-p99-ms")
				b.ReportMetric(ms(valid.p50), "valid-p50-ms")
				b.ReportMetric(ms(valid.p99), "valid-p99-ms")
				b.ReportMetric(ms(disk.p50), "disk-p50-ms")
				b.ReportMetric(ms(disk.p99), "disk-p99-ms")
				b.ReportMetric(float64(valid.p50)/float64(bare.p50), "valid-p50-ratio")
				b.ReportMetric(float64(valid.p99)/float64(bare.p99), "valid-p99-ratio")
				b.ReportMetric(float64(disk.p50)/float64(bare.p50), "disk-p50-ratio")
				b.ReportMetric(float64(disk.p99)/float64(bare.p99), "disk-p99-ratio")
				b.ReportMetric(float64(heap)/float64(n)/(1<<20), "heap-MiB/node")
				b.ReportMetric(float64(bareHeap)/float64(n)/(1<<20), "bare-heap-MiB/node")
				b.ReportMetric(float64(rss)/float64(n)/(1<<20), "process-RSS-MiB/node")
				b.ReportMetric(float64(size), "msg-bytes")
			}
		})
	}
}

// latency is a p50/p99 pair.
type latency struct{ p50, p99 time.Duration }

func summarize(ds []time.Duration) latency {
	return latency{percentile(ds, 0.5), percentile(ds, 0.99)}
}

// heapBytes is the live heap after a collection.
func heapBytes() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// dagnodeGossip runs n full dagnode nodes (on-disk DAG, sync manager,
// validated gossip) and times 100 blocks: until every node has validated
// (and forwarded) each, and until every node has it on disk. heap is the
// live heap the nodes take, rss the whole process's resident memory.
func dagnodeGossip(b *testing.B, n int, links [][]int) (valid, disk latency, heap, rss int64) {
	home := b.TempDir()
	before := heapBytes()
	arr := newArrivals(n)
	val := newArrivals(n)
	nodes := make([]*node, n)
	for i := range nodes {
		cfg, err := loadConfig([]string{"--network", "regtest", "--datadir", filepath.Join(home, fmt.Sprint(i)),
			"--nonat", "--nomdns", "--nodht", "--norpc", "--listen", "/ip4/127.0.0.1/tcp/0"}, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		opts := testNodeOptions
		opts.onAccepted = func(h dag.Hash) { arr.arrived(h.String()) }
		opts.onValidated = func(h dag.Hash) { val.arrived(h.String()) }
		nd, err := newNode(context.Background(), cfg, testLog(), opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := nd.start(); err != nil {
			b.Fatal(err)
		}
		defer nd.close()
		nodes[i] = nd
	}
	hosts := make([]corehost.Host, n)
	for i, nd := range nodes {
		hosts[i] = nd.host
	}
	connectAll(b, hosts, links)
	waitMesh(b, func() bool {
		for _, nd := range nodes {
			if len(nd.gossip.MeshPeers()) == 0 {
				return false
			}
		}
		return true
	})
	heap, rss = heapBytes()-before, rssBytes()
	rng := rand.New(rand.NewPCG(1, 1))
	p := dag.RegTestParams
	var lat, vlat []time.Duration
	for i := range propagationBlocks {
		src := nodes[rng.IntN(n)]
		t := src.dag.Template()
		blk := dagtest.MakeBlock(p, t.Parents, t.Bits, max(t.MinTimestamp, time.Now().UnixMilli()), fmt.Appendf(nil, "bench %d", i))
		id := blk.Hash().String()
		ch, vch := arr.expect(id), val.expect(id)
		start := time.Now()
		var wg sync.WaitGroup
		var vt time.Duration
		wg.Go(func() { val.wait(b, id, vch); vt = time.Since(start) })
		if err := src.submitBlock(context.Background(), blk); err != nil {
			b.Fatal(err)
		}
		arr.wait(b, id, ch)
		lat = append(lat, time.Since(start))
		wg.Wait()
		vlat = append(vlat, vt)
	}
	return summarize(vlat), summarize(lat), heap, rss
}

// bareGossip runs n plain libp2p hosts with default GossipSub and times 100
// messages of a block's size.
func bareGossip(b *testing.B, n int, links [][]int) (size int, lat latency, heap int64) {
	before := heapBytes()
	ctx, cancel := context.WithCancel(context.Background())
	arr := newArrivals(n)
	hosts := make([]corehost.Host, n)
	topics := make([]*pubsub.Topic, n)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // the readers end with ctx
	for i := range hosts {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		hosts[i] = h
		ps, err := pubsub.NewGossipSub(ctx, h)
		if err != nil {
			b.Fatal(err)
		}
		if topics[i], err = ps.Join("bench"); err != nil {
			b.Fatal(err)
		}
		sub, err := topics[i].Subscribe()
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return
				}
				arr.arrived(string(m.Data[:16]))
			}
		})
	}
	connectAll(b, hosts, links)
	waitMesh(b, func() bool {
		for _, t := range topics {
			if len(t.ListPeers()) == 0 {
				return false
			}
		}
		return true
	})
	heap = heapBytes() - before
	// The same size as the blocks the dagnode run publishes.
	p := dag.RegTestParams
	size = dagtest.MakeBlock(p, []dag.Hash{p.GenesisHash}, p.PowLimitBits, 0, []byte("bench 00")).EncodedSize()
	rng := rand.New(rand.NewPCG(1, 1))
	var ds []time.Duration
	for range propagationBlocks {
		msg := make([]byte, size)
		crand.Read(msg[:16])
		id := string(msg[:16])
		src := rng.IntN(n)
		ch := arr.expect(id)
		start := time.Now()
		// The publisher's own subscription counts as its arrival.
		if err := topics[src].Publish(ctx, msg); err != nil {
			b.Fatal(err)
		}
		arr.wait(b, id, ch)
		ds = append(ds, time.Since(start))
	}
	return size, summarize(ds), heap
}

func waitMesh(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("mesh did not form within 60 s")
		}
		time.Sleep(20 * time.Millisecond) // polling
	}
	// Settle: a few heartbeats (0.7-1 s) let every mesh fill to its degree
	// before anything is timed. This is benchmark warm-up, not a test.
	time.Sleep(3 * time.Second)
}
