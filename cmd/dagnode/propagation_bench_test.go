package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	corehost "github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
	"github.com/dagnode/dagnode/gossip"
)

// propagationBlocks is how many blocks each measurement publishes.
const propagationBlocks = 400

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
// disk, p50 and p99 over 400 blocks (p99 is the 5th slowest), against bare GossipSub (default
// parameters, no validation, same message size) on the same topology in the
// same run. All nodes share this machine's one disk, so the on-disk figure
// includes n fsyncs queueing on it. Also heap per node, the process RSS per
// node, the CPU time the whole process spent per block while the blocks
// travelled (all nodes together, less what the idle network spends in the
// same time: on a busy machine the latency follows it), and that idle CPU
// per node. The goal is a ratio <= 1.25.
func BenchmarkPropagation(b *testing.B) {
	for _, n := range []int{20, 50} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			links := topology(n, uint64(n))
			for range b.N {
				bare := bareGossip(b, n, links, nil)
				dn := dagnodeGossip(b, n, links, nil)
				ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
				b.ReportMetric(ms(bare.lat.p50), "bare-p50-ms")
				b.ReportMetric(ms(bare.lat.p99), "bare-p99-ms")
				b.ReportMetric(ms(dn.valid.p50), "valid-p50-ms")
				b.ReportMetric(ms(dn.valid.p99), "valid-p99-ms")
				b.ReportMetric(ms(dn.disk.p50), "disk-p50-ms")
				b.ReportMetric(ms(dn.disk.p99), "disk-p99-ms")
				b.ReportMetric(float64(dn.valid.p50)/float64(bare.lat.p50), "valid-p50-ratio")
				b.ReportMetric(float64(dn.valid.p99)/float64(bare.lat.p99), "valid-p99-ratio")
				b.ReportMetric(float64(dn.disk.p50)/float64(bare.lat.p50), "disk-p50-ratio")
				b.ReportMetric(float64(dn.disk.p99)/float64(bare.lat.p99), "disk-p99-ratio")
				b.ReportMetric(ms(blockCPU(bare.cpu, bare.took, bare.idle)), "bare-cpu-ms/block")
				b.ReportMetric(ms(blockCPU(dn.cpu, dn.took, dn.idle)), "cpu-ms/block")
				b.ReportMetric(bare.idle*1000/float64(n), "bare-idle-cpu-ms/s/node")
				b.ReportMetric(dn.idle*1000/float64(n), "idle-cpu-ms/s/node")
				b.ReportMetric(float64(dn.heap)/float64(n)/(1<<20), "heap-MiB/node")
				b.ReportMetric(float64(bare.heap)/float64(n)/(1<<20), "bare-heap-MiB/node")
				b.ReportMetric(float64(dn.rss)/float64(n)/(1<<20), "process-RSS-MiB/node")
				b.ReportMetric(float64(bare.size), "msg-bytes")
			}
		})
	}
}

// BenchmarkHopTrace follows every block through every hop of the same
// 20-node networks as BenchmarkPropagation, with timestamps: when its bytes
// are read from the first peer that sends it (recv), when the validator hands
// it to the node (check: the pubsub event loop, the validation queue, decode,
// CheckSanity and the duplicate lookup are behind it), when dag.CheckBlock has
// passed and the block is queued for the sync manager (valid), when Submit
// returns (handed), when its bytes are first written towards a peer (send),
// and when it is on disk (stored). It reports the p50 of each step in
// microseconds over every (block, node) pair that received the block from a
// peer, and for bare GossipSub the same hop (recv to send, p50 and p90);
// "wire" is from the sender's write to our read (yamux, noise, loopback TCP
// and the scheduler), "edge" from the first sender's read to ours (a whole
// hop on the path the block took: processing, the sender's queues and the
// wire), "source" from handing the block to its source until the source
// first writes it, "reach" until the last node has read it. Also the block
// writes per block (duplicates included) and the CPU per block, as in
// BenchmarkPropagation. The stream wrapper that takes the timestamps is the
// same in both runs. DAGNODE_BENCH_PROFILE=DIR writes CPU profiles of the
// timed part of every run (both benchmarks).
func BenchmarkHopTrace(b *testing.B) {
	const n = 20
	links := topology(n, n)
	for range b.N {
		btr, dtr := newHopTrace(), newHopTrace()
		bare := bareGossip(b, n, links, btr)
		dn := dagnodeGossip(b, n, links, dtr)
		bs, ds := btr.steps(), dtr.steps()
		us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
		b.ReportMetric(us(bs.wire.p50), "bare-wire-us")
		b.ReportMetric(us(bs.hop.p50), "bare-hop-p50-us")
		b.ReportMetric(us(bs.hop.p90), "bare-hop-p90-us")
		b.ReportMetric(us(ds.wire.p50), "wire-us")
		b.ReportMetric(us(ds.dispatch.p50), "recv-to-check-us")
		b.ReportMetric(us(ds.check.p50), "checkblock-us")
		b.ReportMetric(us(ds.handoff.p50), "handoff-us")
		b.ReportMetric(us(ds.forward.p50), "handed-to-send-us")
		b.ReportMetric(us(ds.hop.p50), "hop-p50-us")
		b.ReportMetric(us(ds.hop.p90), "hop-p90-us")
		b.ReportMetric(us(ds.store.p50), "valid-to-stored-us")
		b.ReportMetric(float64(dn.valid.p50)/float64(bare.lat.p50), "valid-p50-ratio")
		b.ReportMetric(us(bs.edge.p50), "bare-edge-p50-us")
		b.ReportMetric(us(bs.edge.p90), "bare-edge-p90-us")
		b.ReportMetric(us(ds.edge.p50), "edge-p50-us")
		b.ReportMetric(us(ds.edge.p90), "edge-p90-us")
		b.ReportMetric(us(bs.source.p50), "bare-source-us")
		b.ReportMetric(us(ds.source.p50), "source-us")
		b.ReportMetric(us(bs.reach.p50), "bare-reach-us")
		b.ReportMetric(us(ds.reach.p50), "reach-us")
		b.ReportMetric(float64(bs.writes)/propagationBlocks, "bare-sends/block")
		b.ReportMetric(float64(ds.writes)/propagationBlocks, "sends/block")
		b.ReportMetric(float64(blockCPU(bare.cpu, bare.took, bare.idle).Microseconds())/1000, "bare-cpu-ms/block")
		b.ReportMetric(float64(blockCPU(dn.cpu, dn.took, dn.idle).Microseconds())/1000, "cpu-ms/block")
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

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startProfile starts a CPU profile of the timed part of a run when
// DAGNODE_BENCH_PROFILE names a directory (DIR/NAME.prof); the returned
// function stops it.
func startProfile(b *testing.B, name string) func() {
	dir := os.Getenv("DAGNODE_BENCH_PROFILE")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name+".prof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// idleCPU measures the CPU the process spends per second while the network
// is idle (one second).
func idleCPU() float64 {
	c, t := cpuTime(), time.Now()
	time.Sleep(time.Second) // measuring the idle network
	return float64(cpuTime()-c) / float64(time.Since(t))
}

// benchPayload is block i's payload; its bytes mark the block on the wire
// (hopTrace) and have the same length for every i < 1000.
func benchPayload(i int) []byte { return fmt.Appendf(nil, "bench %03d", i) }

// dagnodeRun is what one dagnode run measured.
type dagnodeRun struct {
	valid, disk latency
	heap, rss   int64
	cpu, took   time.Duration // CPU time and wall time of the timed blocks
	idle        float64       // CPU seconds per second before them
}

// blockCPU is the CPU time per block less what the idle network would have
// spent meanwhile (heartbeats, scores, pings): the work the blocks cost.
func blockCPU(cpu, took time.Duration, idle float64) time.Duration {
	return (cpu - time.Duration(idle*float64(took))) / propagationBlocks
}

// dagnodeGossip runs n full dagnode nodes (on-disk DAG, sync manager,
// validated gossip) and times propagationBlocks blocks: until every node has validated
// (and forwarded) each, and until every node has it on disk. heap is the
// live heap the nodes take, rss the whole process's resident memory. With a
// trace, every stage of every hop is timed too.
func dagnodeGossip(b *testing.B, n int, links [][]int, tr *hopTrace) (r dagnodeRun) {
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
		var opts nodeOptions // the timers as shipped (testNodeOptions samples peers every second)
		opts.onAccepted = func(h dag.Hash) {
			tr.markHash(h, i, stStored)
			arr.arrived(h.String())
		}
		opts.onValidated = func(h dag.Hash) {
			tr.markHash(h, i, stValid)
			val.arrived(h.String())
		}
		if tr != nil {
			opts.gossipConfig = func(c gossip.Config) gossip.Config {
				c.Host = &tracedHost{Host: c.Host, tr: tr, self: i}
				submit := c.Submit
				c.Submit = func(ctx context.Context, from peer.ID, blk dag.Checked) error {
					tr.markPayload(blk.Block().Body.Payload, i, stCheck)
					err := submit(ctx, from, blk)
					tr.markPayload(blk.Block().Body.Payload, i, stHanded)
					return err
				}
				return c
			}
		}
		nd, err := newNode(context.Background(), cfg, testLog(), opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := nd.start(); err != nil {
			b.Fatal(err)
		}
		defer nd.close()
		nodes[i] = nd
		tr.addPeer(nd.host.ID(), i)
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
	r.heap, r.rss = heapBytes()-before, rssBytes()
	rng := rand.New(rand.NewPCG(1, 1))
	p := dag.RegTestParams
	var lat, vlat []time.Duration
	r.idle = idleCPU()
	stopProfile := startProfile(b, fmt.Sprintf("dagnode-%d", n))
	cpu0, t0 := cpuTime(), time.Now()
	for i := range propagationBlocks {
		src := nodes[rng.IntN(n)]
		t := src.dag.Template()
		blk := dagtest.MakeBlock(p, t.Parents, t.Bits, max(t.MinTimestamp, time.Now().UnixMilli()), benchPayload(i))
		id := blk.Hash().String()
		tr.addBlock(blk.Hash(), i)
		ch, vch := arr.expect(id), val.expect(id)
		start := time.Now()
		tr.started(i, start)
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
	r.cpu, r.took = cpuTime()-cpu0, time.Since(t0)
	stopProfile()
	r.valid, r.disk = summarize(vlat), summarize(lat)
	return r
}

// bareRun is what one bare GossipSub run measured.
type bareRun struct {
	size      int
	lat       latency
	heap      int64
	cpu, took time.Duration // CPU time and wall time of the timed messages
	idle      float64       // CPU seconds per second before them
}

// bareGossip runs n plain libp2p hosts with default GossipSub and times 100
// messages of a block's size. With a trace, every hop is timed too.
func bareGossip(b *testing.B, n int, links [][]int, tr *hopTrace) (r bareRun) {
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
		tr.addPeer(h.ID(), i)
		var ph corehost.Host = h
		if tr != nil {
			ph = &tracedHost{Host: h, tr: tr, self: i}
		}
		ps, err := pubsub.NewGossipSub(ctx, ph)
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
				tr.markPayload(m.Data, i, stStored)
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
	r.heap = heapBytes() - before
	// The same size as the blocks the dagnode run publishes.
	p := dag.RegTestParams
	r.size = dagtest.MakeBlock(p, []dag.Hash{p.GenesisHash}, p.PowLimitBits, 0, benchPayload(0)).EncodedSize()
	rng := rand.New(rand.NewPCG(1, 1))
	var ds []time.Duration
	r.idle = idleCPU()
	stopProfile := startProfile(b, fmt.Sprintf("bare-%d", n))
	cpu0, t0 := cpuTime(), time.Now()
	for i := range propagationBlocks {
		msg := make([]byte, r.size)
		crand.Read(msg[:16])
		copy(msg[16:], benchPayload(i))
		id := string(msg[:16])
		src := rng.IntN(n)
		ch := arr.expect(id)
		start := time.Now()
		tr.started(i, start)
		// The publisher's own subscription counts as its arrival.
		if err := topics[src].Publish(ctx, msg); err != nil {
			b.Fatal(err)
		}
		arr.wait(b, id, ch)
		ds = append(ds, time.Since(start))
	}
	r.cpu, r.took = cpuTime()-cpu0, time.Since(t0)
	stopProfile()
	r.lat = summarize(ds)
	return r
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

// stage is a point a block passes on one node (BenchmarkHopTrace).
type stage int

const (
	stRecv   stage = iota // its bytes first read from a peer's stream
	stCheck               // handed by the validator to the node (Submit)
	stValid               // dag.CheckBlock passed
	stHanded              // Submit returned
	stSend                // its bytes first written towards a peer
	stStored              // on disk (bare: delivered to the subscription)
	nStages
)

// hopTrace records when each block passes each stage on each node. Every
// method is safe on a nil trace (it then does nothing) and for concurrent
// use.
type hopTrace struct {
	mu     sync.Mutex
	peers  map[peer.ID]int
	blocks map[dag.Hash]int
	at     map[[2]int]*[nStages]time.Time // (block, node)
	from   map[[2]int]int                 // (block, node): the first sender
	sent   map[[3]int]time.Time           // (block, from, to): first write
	start  map[int]time.Time              // block: handed to its source
	writes int                            // block-carrying writes, duplicates included
}

func newHopTrace() *hopTrace {
	return &hopTrace{peers: map[peer.ID]int{}, blocks: map[dag.Hash]int{},
		at: map[[2]int]*[nStages]time.Time{}, from: map[[2]int]int{}, sent: map[[3]int]time.Time{},
		start: map[int]time.Time{}}
}

func (t *hopTrace) addPeer(p peer.ID, node int) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.peers[p] = node
	t.mu.Unlock()
}

func (t *hopTrace) started(blk int, at time.Time) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.start[blk] = at
	t.mu.Unlock()
}

func (t *hopTrace) addBlock(h dag.Hash, blk int) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.blocks[h] = blk
	t.mu.Unlock()
}

// markLocked records the first time blk passed st on node. Called with t.mu.
func (t *hopTrace) markLocked(blk, node int, st stage, now time.Time) bool {
	k := [2]int{blk, node}
	a := t.at[k]
	if a == nil {
		a = new([nStages]time.Time)
		t.at[k] = a
	}
	if !a[st].IsZero() {
		return false
	}
	a[st] = now
	return true
}

func (t *hopTrace) markHash(h dag.Hash, node int, st stage) {
	if t == nil {
		return
	}
	now := time.Now()
	t.mu.Lock()
	if blk, ok := t.blocks[h]; ok {
		t.markLocked(blk, node, st, now)
	}
	t.mu.Unlock()
}

func (t *hopTrace) markPayload(data []byte, node int, st stage) {
	if t == nil {
		return
	}
	if blk, ok := benchMarker(data); ok {
		now := time.Now()
		t.mu.Lock()
		t.markLocked(blk, node, st, now)
		t.mu.Unlock()
	}
}

// wire records the bytes read from or written to remote on node's stream.
func (t *hopTrace) wire(data []byte, node int, remote peer.ID, write bool) {
	blk, ok := benchMarker(data)
	if !ok {
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.peers[remote]
	if !ok {
		return
	}
	if write {
		t.writes++
		t.markLocked(blk, node, stSend, now)
		if k := [3]int{blk, node, r}; t.sent[k].IsZero() {
			t.sent[k] = now
		}
		return
	}
	if t.markLocked(blk, node, stRecv, now) {
		t.from[[2]int{blk, node}] = r
	}
}

// benchMarker finds benchPayload's marker in data and returns the block
// number.
func benchMarker(data []byte) (int, bool) {
	i := bytes.Index(data, []byte("bench "))
	if i < 0 || i+8 > len(data) {
		return 0, false
	}
	d := data[i+6 : i+8]
	if d[0] < '0' || d[0] > '9' || d[1] < '0' || d[1] > '9' {
		return 0, false
	}
	return int(d[0]-'0')*10 + int(d[1]-'0'), true
}

// spread is a p50/p90 pair.
type spread struct{ p50, p90 time.Duration }

// hopSteps are the spreads of each step of a hop.
type hopSteps struct {
	wire, dispatch, check, handoff, forward, hop, store spread
	// edge: from the first sender's read to ours (a whole hop on the path
	// the block took, queues included).
	edge spread
	// source: from handing the block to its source to its first write;
	// reach: until the last node read it.
	source, reach spread
	pairs, writes int
}

// steps computes the hop steps over every (block, node) pair that received
// the block from a peer.
func (t *hopTrace) steps() hopSteps {
	t.mu.Lock()
	defer t.mu.Unlock()
	var wire, dispatch, check, handoff, forward, hop, store, edge []time.Duration
	add := func(dst *[]time.Duration, a, b time.Time) {
		if !a.IsZero() && !b.IsZero() {
			*dst = append(*dst, b.Sub(a))
		}
	}
	pairs := 0
	for k, a := range t.at {
		if a[stRecv].IsZero() {
			continue // the source
		}
		pairs++
		if from, ok := t.from[k]; ok {
			add(&wire, t.sent[[3]int{k[0], from, k[1]}], a[stRecv])
			if f := t.at[[2]int{k[0], from}]; f != nil && !f[stRecv].IsZero() {
				add(&edge, f[stRecv], a[stRecv])
			}
		}
		add(&dispatch, a[stRecv], a[stCheck])
		add(&check, a[stCheck], a[stValid])
		add(&handoff, a[stValid], a[stHanded])
		if a[stHanded].IsZero() {
			add(&forward, a[stRecv], a[stSend])
		} else {
			add(&forward, a[stHanded], a[stSend])
		}
		add(&hop, a[stRecv], a[stSend])
		if !a[stValid].IsZero() {
			add(&store, a[stValid], a[stStored])
		}
	}
	var source, reach []time.Duration
	for blk, start := range t.start {
		var last time.Time
		for k, a := range t.at {
			if k[0] != blk {
				continue
			}
			if a[stRecv].IsZero() {
				add(&source, start, a[stSend])
				continue
			}
			if a[stRecv].After(last) {
				last = a[stRecv]
			}
		}
		add(&reach, start, last)
	}
	sp := func(ds []time.Duration) spread {
		if len(ds) == 0 {
			return spread{}
		}
		return spread{percentile(ds, 0.5), percentile(ds, 0.9)}
	}
	return hopSteps{wire: sp(wire), dispatch: sp(dispatch), check: sp(check), handoff: sp(handoff),
		forward: sp(forward), hop: sp(hop), store: sp(store), pairs: pairs, writes: t.writes,
		source: sp(source), reach: sp(reach), edge: sp(edge)}
}

// tracedHost gives the router streams that report the bench blocks they
// carry to a hopTrace.
type tracedHost struct {
	corehost.Host
	tr   *hopTrace
	self int
}

func (h *tracedHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.wrap(s)) })
}

func (h *tracedHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return h.wrap(s), nil
}

func (h *tracedHost) wrap(s network.Stream) network.Stream {
	return &tracedStream{Stream: s, tr: h.tr, self: h.self, remote: s.Conn().RemotePeer()}
}

type tracedStream struct {
	network.Stream
	tr     *hopTrace
	self   int
	remote peer.ID
}

func (s *tracedStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	s.tr.wire(p[:n], s.self, s.remote, false)
	return n, err
}

func (s *tracedStream) Write(p []byte) (int, error) {
	s.tr.wire(p, s.self, s.remote, true)
	return s.Stream.Write(p)
}
