package netbench

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	// quietWindow is measured after the last arrival: the background traffic
	// (DHT, pings, gossip heartbeats) per node per second, without blocks.
	// Before mining it would still hold the start-up's discovery traffic.
	quietWindow = 3 * time.Second
	// settle is the wait between the warm-up block and the first timed one,
	// for meshes to fill at a heartbeat or two.
	settle = 2 * time.Second
	// arrivalTimeout bounds the wait for the last arrivals after the last
	// block; sync would fetch a block gossip lost well within it.
	arrivalTimeout = 60 * time.Second
)

// result is what one run measured.
type result struct {
	name  string
	procs []*proc

	quietRx   []float64 // per node, bytes/s received in the quiet window
	before    []counters
	cpuBefore []time.Duration
	began     time.Time
	load      [2]string // one-minute load average at the window's start and end

	blocks   int
	delays   []time.Duration // every arrival but at the origin
	fellBack int             // origins timed by their publisher's call, not its log
	window   time.Duration   // first block to last arrival (and counters read)
	rx, tx   []uint64        // per node, bytes over the window
	mem      []memory        // per process, at the end of the window
	cpu      []time.Duration // per process, over the window

	degree, degreeAfter float64 // mean connections per node at the start and the end
}

// start opens the window: the counters before the first message.
func (r *result) start(nw *network) {
	r.cpuBefore = nil
	for _, p := range r.procs {
		c, err := p.cpu()
		if err != nil {
			nw.tb.Fatal(err)
		}
		r.cpuBefore = append(r.cpuBefore, c)
	}
	r.load[0] = loadavg()
	r.before, r.began = nw.allNetDev(), time.Now()
}

// quiet measures the background traffic for d, from counters c0 read at t0.
func (r *result) quiet(nw *network, c0 []counters, t0 time.Time, d time.Duration) {
	time.Sleep(time.Until(t0.Add(d)))
	c1 := nw.allNetDev()
	secs := time.Since(t0).Seconds()
	r.quietRx = make([]float64, len(c0))
	for i := range c0 {
		r.quietRx[i] = float64(c1[i].rx-c0[i].rx) / secs
	}
}

// finish closes the window once the messages have arrived.
func (r *result) finish(nw *network, arr *arrivals, ids []string, origins []int, fallback map[string]time.Time) {
	tb := nw.tb
	after := nw.allNetDev()
	r.window = time.Since(r.began)
	r.blocks = len(ids)
	r.rx, r.tx = make([]uint64, len(after)), make([]uint64, len(after))
	for i := range after {
		r.rx[i], r.tx[i] = after[i].rx-r.before[i].rx, after[i].tx-r.before[i].tx
	}
	r.load[1] = loadavg()
	for i, p := range r.procs {
		v, err := p.memory()
		if err != nil {
			tb.Fatalf("%s: %v", p.name, err)
		}
		c, err := p.cpu()
		if err != nil {
			tb.Fatalf("%s: %v", p.name, err)
		}
		r.mem, r.cpu = append(r.mem, v), append(r.cpu, c-r.cpuBefore[i])
	}
	r.delays, r.fellBack = arr.delays(ids, origins, fallback)
	r.quiet(nw, after, time.Now(), quietWindow)
}

func meanDegree(g [][]int) float64 {
	var e int
	for _, ps := range g {
		e += len(ps)
	}
	return float64(e) / float64(len(g))
}

// figures are a run's summary.
type figures struct {
	p50, p99, max     time.Duration
	rxPerBlock        float64 // mean over nodes, bytes received per block
	netRxPerBlock     float64 // the same less the quiet window's rate
	rssMean, rssMax   float64 // MiB
	pssMean, anonMean float64 // MiB
	cpuPerBlock       float64 // ms of CPU per block per process, mean
	cpuShare          float64 // CPU used by all processes over the window / wall time (cores)
	quietRxPerNodeSec float64
}

func (r *result) figures() figures {
	var f figures
	f.p50, f.p99 = percentile(r.delays, 0.50), percentile(r.delays, 0.99)
	if len(r.delays) > 0 {
		f.max = slices.Max(r.delays)
	}
	n := float64(len(r.rx))
	for i := range r.rx {
		f.rxPerBlock += float64(r.rx[i]) / float64(r.blocks) / n
		f.netRxPerBlock += (float64(r.rx[i]) - r.quietRx[i]*r.window.Seconds()) / float64(r.blocks) / n
		f.quietRxPerNodeSec += r.quietRx[i] / n
	}
	var cpu time.Duration
	for _, c := range r.cpu {
		cpu += c
	}
	f.cpuPerBlock = ms(cpu) / float64(r.blocks) / float64(len(r.cpu))
	f.cpuShare = cpu.Seconds() / r.window.Seconds()
	n = float64(len(r.mem))
	for _, v := range r.mem {
		mib := func(b int64) float64 { return float64(b) / (1 << 20) }
		f.rssMean += mib(v.rss) / n
		f.rssMax = max(f.rssMax, mib(v.rss))
		f.pssMean += mib(v.pss) / n
		f.anonMean += mib(v.anon) / n
	}
	return f
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// report logs both runs side by side and returns the figures.
func report(tb testing.TB, dn, bare *result, size int) (figures, figures) {
	fd, fb := dn.figures(), bare.figures()
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "network bench: %d nodes, %d blocks of %d bytes\n", len(dn.rx), dn.blocks, size)
	fmt.Fprintf(&s, "%-34s %12s %12s %8s\n", "", "dagnode", "bare", "ratio")
	row := func(name string, a, b float64, format string) {
		fmt.Fprintf(&s, "%-34s %12s %12s %8s\n", name, fmt.Sprintf(format, a), fmt.Sprintf(format, b), ratio(a, b))
	}
	row("arrival p50 (ms)", ms(fd.p50), ms(fb.p50), "%.1f")
	row("arrival p99 (ms)", ms(fd.p99), ms(fb.p99), "%.1f")
	row("arrival max (ms)", ms(fd.max), ms(fb.max), "%.1f")
	row("arrivals timed", float64(len(dn.delays)), float64(len(bare.delays)), "%.0f")
	row("bytes received/block/node", fd.rxPerBlock, fb.rxPerBlock, "%.0f")
	row("  less background (quiet rate)", fd.netRxPerBlock, fb.netRxPerBlock, "%.0f")
	row("background bytes/s/node", fd.quietRxPerNodeSec, fb.quietRxPerNodeSec, "%.0f")
	row("RSS per process, mean (MiB)", fd.rssMean, fb.rssMean, "%.1f")
	row("RSS per process, max (MiB)", fd.rssMax, fb.rssMax, "%.1f")
	row("PSS per process, mean (MiB)", fd.pssMean, fb.pssMean, "%.1f")
	row("  of it anonymous (MiB)", fd.anonMean, fb.anonMean, "%.1f")
	row("CPU per block per process (ms)", fd.cpuPerBlock, fb.cpuPerBlock, "%.2f")
	row("CPU of all processes (cores)", fd.cpuShare, fb.cpuShare, "%.2f")
	row("connections per node, start", dn.degree, bare.degree, "%.1f")
	row("connections per node, end", dn.degreeAfter, bare.degreeAfter, "%.1f")
	row("window (s)", dn.window.Seconds(), bare.window.Seconds(), "%.1f")
	fmt.Fprintf(&s, "one-minute load average at the window's start and end: dagnode %s, %s; bare %s, %s (%d cores)\n",
		dn.load[0], dn.load[1], bare.load[0], bare.load[1], runtime.NumCPU())
	if dn.fellBack > 0 || bare.fellBack > 0 {
		fmt.Fprintf(&s, "origins timed by the publish call, not the log: dagnode %d, bare %d\n", dn.fellBack, bare.fellBack)
	}
	tb.Log(s.String())
	return fd, fb
}
