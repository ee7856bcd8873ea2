// Command wire is the network of the bench (test/netbench): it forwards IPv4
// packets between TUN devices (internal/netbed's AddTUN) by destination
// address, through a model of each host's access link. It exists because the
// kernels the bench runs on may have no sch_netem.
//
// Each host i has one access link with a one-way delay d_i (the --link
// values, in the order of the files it is given: file descriptors 3, 4, ...),
// a rate cap in each direction (--rate) and uniform jitter (--jitter, plus or
// minus, drawn per packet and per link). A packet from i to j is serialised
// on i's uplink (queued behind i's earlier packets), crosses it in d_i, is
// serialised on j's downlink (queued behind packets to j from every host, in
// the order they reach it), and crosses it in d_j: node-to-node one-way delay
// is d_i + d_j plus queueing. Packets of one link never overtake each other,
// whatever the jitter (as with netem's rate). A packet that would wait more
// than --queue behind others on a link is dropped, as a full router buffer
// would; so is one for an address outside the hosts.
//
// On SIGTERM or SIGINT it prints its counters to stderr and exits.
package main

import (
	"container/heap"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wire:", err)
		os.Exit(1)
	}
}

// link is one host's access link.
type link struct {
	ip    netip.Addr
	delay time.Duration
	file  *os.File
	// inbox takes packets that have crossed their sender's uplink, for the
	// downlink scheduler.
	inbox chan packet
}

// packet is one IPv4 packet in flight.
type packet struct {
	at   time.Time // when it reaches the next stage
	seq  uint64    // breaks ties in at, keeping arrival order
	data []byte
}

// counters are the wire's totals.
var (
	forwarded, bytes, noRoute, upDrops, downDrops, writeErrs atomic.Uint64
)

func run() error {
	var (
		links  = flag.String("link", "", "comma-separated IP=DELAY per host, in file order (fd 3, 4, ...)")
		rate   = flag.Float64("rate", 20e6, "rate cap of each link, each direction, in bit/s")
		jitter = flag.Duration("jitter", 2*time.Millisecond, "uniform jitter, plus or minus, per packet and link")
		queue  = flag.Duration("queue", 500*time.Millisecond, "longest wait behind other packets on a link before a drop")
		seed   = flag.Uint64("seed", 1, "seed of the jitter")
	)
	flag.Parse()
	if *links == "" || *rate <= 0 || *jitter < 0 {
		return errors.New("--link is required; --rate must be positive and --jitter not negative")
	}
	var hosts []*link
	byIP := map[netip.Addr]*link{}
	for i, spec := range strings.Split(*links, ",") {
		ipStr, delayStr, ok := strings.Cut(spec, "=")
		ip, err := netip.ParseAddr(ipStr)
		if !ok || err != nil || !ip.Is4() {
			return fmt.Errorf("--link %q: want IPv4=DELAY", spec)
		}
		d, err := time.ParseDuration(delayStr)
		if err != nil || d < *jitter {
			return fmt.Errorf("--link %q: delay must be a duration of at least the jitter", spec)
		}
		l := &link{ip: ip, delay: d, file: os.NewFile(uintptr(3+i), ip.String()), inbox: make(chan packet, 4096)}
		if l.file == nil {
			return fmt.Errorf("no file descriptor %d for %s", 3+i, ip)
		}
		hosts = append(hosts, l)
		byIP[ip] = l
	}
	perBit := float64(time.Second) / *rate
	serialise := func(n int) time.Duration { return time.Duration(float64(8*n) * perBit) }
	for i, l := range hosts {
		go uplink(l, byIP, serialise, *jitter, *queue, rand.New(rand.NewPCG(*seed, uint64(2*i))))
		go downlink(l, serialise, *jitter, *queue, rand.New(rand.NewPCG(*seed, uint64(2*i+1))))
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	fmt.Fprintf(os.Stderr, "wire: forwarded %d packets (%d bytes); dropped %d without route, %d on full uplinks, %d on full downlinks; %d write errors\n",
		forwarded.Load(), bytes.Load(), noRoute.Load(), upDrops.Load(), downDrops.Load(), writeErrs.Load())
	return nil
}

// uplink reads the packets l's host sends and hands each to its
// destination's downlink at the time it has crossed l.
func uplink(l *link, byIP map[netip.Addr]*link, serialise func(int) time.Duration, jitter, queue time.Duration, rng *rand.Rand) {
	var free, last time.Time // when the link is next idle; the last packet's arrival
	var seq uint64
	buf := make([]byte, 65536)
	for {
		n, err := l.file.Read(buf)
		if err != nil {
			return // the file closed: the bed is going away
		}
		now := time.Now()
		if n < 20 || buf[0]>>4 != 4 {
			continue // not IPv4 (the bed is IPv4-only)
		}
		dst := byIP[netip.AddrFrom4([4]byte(buf[16:20]))]
		if dst == nil {
			noRoute.Add(1)
			continue
		}
		start := free
		if start.Before(now) {
			start = now
		}
		if start.Sub(now) > queue {
			upDrops.Add(1)
			continue
		}
		free = start.Add(serialise(n))
		at := free.Add(l.delay + jitterOf(rng, jitter))
		if at.Before(last) {
			at = last // no overtaking on one link
		}
		last = at
		seq++
		dst.inbox <- packet{at: at, seq: seq, data: append([]byte(nil), buf[:n]...)}
	}
}

// downlink takes packets for l's host in the order they reach its link,
// serialises them on it and writes each to the host when it has crossed it.
func downlink(l *link, serialise func(int) time.Duration, jitter, queue time.Duration, rng *rand.Rand) {
	deliver := make(chan packet, 4096)
	go func() { // the link's far end: writes in order, each at its time
		for p := range deliver {
			if d := time.Until(p.at); d > 0 {
				time.Sleep(d)
			}
			if _, err := l.file.Write(p.data); err != nil {
				writeErrs.Add(1)
				continue
			}
			forwarded.Add(1)
			bytes.Add(uint64(len(p.data)))
		}
	}()
	var (
		pending    packets
		free, last time.Time
		timer      = time.NewTimer(time.Hour)
	)
	for {
		if len(pending) > 0 {
			timer.Reset(time.Until(pending[0].at))
		}
		select {
		case p := <-l.inbox:
			heap.Push(&pending, p)
			continue
		case <-timer.C:
		}
		for len(pending) > 0 && !pending[0].at.After(time.Now()) {
			p := heap.Pop(&pending).(packet)
			start := free
			if start.Before(p.at) {
				start = p.at
			}
			if start.Sub(p.at) > queue {
				downDrops.Add(1)
				continue
			}
			free = start.Add(serialise(len(p.data)))
			p.at = free.Add(l.delay + jitterOf(rng, jitter))
			if p.at.Before(last) {
				p.at = last
			}
			last = p.at
			deliver <- p
		}
	}
}

// jitterOf draws a uniform jitter in [-j, j].
func jitterOf(rng *rand.Rand, j time.Duration) time.Duration {
	if j == 0 {
		return 0
	}
	return time.Duration(rng.Int64N(int64(2*j)+1)) - j
}

// packets is a min-heap by arrival time, then sequence.
type packets []packet

func (p packets) Len() int { return len(p) }
func (p packets) Less(i, j int) bool {
	if p[i].at.Equal(p[j].at) {
		return p[i].seq < p[j].seq
	}
	return p[i].at.Before(p[j].at)
}
func (p packets) Swap(i, j int) { p[i], p[j] = p[j], p[i] }
func (p *packets) Push(x any)   { *p = append(*p, x.(packet)) }
func (p *packets) Pop() any {
	old := *p
	x := old[len(old)-1]
	*p = old[:len(old)-1]
	return x
}
