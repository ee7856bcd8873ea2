package wire

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Device is one host's end of the wire: each Read returns one IPv4 packet the
// host sent, each Write hands the host one packet. An *os.File of a TUN
// device from netbed is one.
type Device interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
}

// Link is one host's access link.
type Link struct {
	// IP is the host's address: packets to it are delivered to Dev.
	IP netip.Addr
	// Delay is the link's one-way delay, each direction; at least
	// Config.Jitter.
	Delay time.Duration
	// Dev carries the host's packets.
	Dev Device
}

// Config describes the network.
type Config struct {
	// Links are the hosts' access links; their IPs must be distinct IPv4
	// addresses.
	Links []Link
	// Rate caps each link, each direction, in bit/s; 0 means no cap
	// (delay only).
	Rate float64
	// Jitter is the uniform jitter, plus or minus, per packet and link; 0
	// for none.
	Jitter time.Duration
	// Queue is the longest a packet waits behind others on a link before it
	// is dropped; 0 means DefaultQueue. It matters only with a Rate.
	Queue time.Duration
	// Seed seeds the jitter.
	Seed uint64
}

// DefaultQueue is Config.Queue's default: a generous router buffer.
const DefaultQueue = 500 * time.Millisecond

const (
	// maxPacket bounds a read; a TUN device's packets are at most its MTU
	// (1500 in netbed), so nothing is ever cut.
	maxPacket = 65536
	// inboxSize bounds packets crossing uplinks towards one downlink, and
	// packets between a downlink's scheduler and its writer; a full one
	// makes its sender wait (backpressure), never drop.
	inboxSize = 4096
)

// Stats are a wire's totals since Start.
type Stats struct {
	// Forwarded and Bytes count packets written to their destination.
	Forwarded, Bytes uint64
	// NoRoute counts packets to an address outside the hosts; NotIPv4
	// packets that are no IPv4 packet at all (the bed is IPv4-only).
	NoRoute, NotIPv4 uint64
	// UplinkDrops and DownlinkDrops count packets dropped behind a full
	// queue (Config.Queue).
	UplinkDrops, DownlinkDrops uint64
	// WriteErrors counts packets their destination device refused.
	WriteErrors uint64
}

func (s Stats) String() string {
	return fmt.Sprintf("forwarded %d packets (%d bytes); dropped %d without route, %d on full uplinks, %d on full downlinks; %d not IPv4; %d write errors",
		s.Forwarded, s.Bytes, s.NoRoute, s.UplinkDrops, s.DownlinkDrops, s.NotIPv4, s.WriteErrors)
}

// Wire forwards packets between the devices of its links. Make one with New.
type Wire struct {
	cfg   Config
	links []*link
	byIP  map[netip.Addr]*link

	quit      chan struct{}
	wg        sync.WaitGroup
	startOnce sync.Once
	closeOnce sync.Once

	forwarded, bytes, noRoute, notIPv4, upDrops, downDrops, writeErrs atomic.Uint64
}

// link is one host's access link while the wire runs.
type link struct {
	Link
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

// New checks cfg and returns a wire that forwards nothing until Start.
func New(cfg Config) (*Wire, error) {
	switch {
	case len(cfg.Links) == 0:
		return nil, errors.New("wire: no links")
	case cfg.Rate < 0:
		return nil, fmt.Errorf("wire: rate %v: want a positive cap or 0 for none", cfg.Rate)
	case cfg.Jitter < 0:
		return nil, fmt.Errorf("wire: jitter %v: want 0 or more", cfg.Jitter)
	case cfg.Queue < 0:
		return nil, fmt.Errorf("wire: queue %v: want 0 (the default) or more", cfg.Queue)
	}
	if cfg.Queue == 0 {
		cfg.Queue = DefaultQueue
	}
	w := &Wire{cfg: cfg, byIP: map[netip.Addr]*link{}, quit: make(chan struct{})}
	for _, l := range cfg.Links {
		switch {
		case !l.IP.Is4():
			return nil, fmt.Errorf("wire: link %v: want an IPv4 address", l.IP)
		case w.byIP[l.IP] != nil:
			return nil, fmt.Errorf("wire: link %v given twice", l.IP)
		case l.Delay < cfg.Jitter:
			return nil, fmt.Errorf("wire: link %v: delay %v is less than the jitter %v", l.IP, l.Delay, cfg.Jitter)
		case l.Dev == nil:
			return nil, fmt.Errorf("wire: link %v: no device", l.IP)
		}
		// Close relies on read deadlines; a device without them could not
		// be stopped.
		if err := l.Dev.SetReadDeadline(time.Time{}); err != nil {
			return nil, fmt.Errorf("wire: link %v: device without read deadlines: %w", l.IP, err)
		}
		wl := &link{Link: l, inbox: make(chan packet, inboxSize)}
		w.links = append(w.links, wl)
		w.byIP[l.IP] = wl
	}
	return w, nil
}

// Start starts forwarding. Only the first call does anything.
func (w *Wire) Start() {
	w.startOnce.Do(func() {
		for i, l := range w.links {
			up := rand.New(rand.NewPCG(w.cfg.Seed, uint64(2*i)))
			down := rand.New(rand.NewPCG(w.cfg.Seed, uint64(2*i+1)))
			deliver := make(chan packet, inboxSize)
			w.wg.Go(func() { w.uplink(l, up) })
			w.wg.Go(func() { w.downlink(l, down, deliver) })
			w.wg.Go(func() { w.writer(l, deliver) })
		}
	})
}

// Close stops forwarding and waits for every goroutine; packets in flight are
// lost. The devices stay open, with a read deadline in the past. Close is
// idempotent, and safe without Start.
func (w *Wire) Close() error {
	w.closeOnce.Do(func() {
		close(w.quit)
		for _, l := range w.links {
			_ = l.Dev.SetReadDeadline(time.Now())
		}
		w.wg.Wait()
	})
	return nil
}

// Stats returns the wire's totals so far.
func (w *Wire) Stats() Stats {
	return Stats{
		Forwarded: w.forwarded.Load(), Bytes: w.bytes.Load(),
		NoRoute: w.noRoute.Load(), NotIPv4: w.notIPv4.Load(),
		UplinkDrops: w.upDrops.Load(), DownlinkDrops: w.downDrops.Load(),
		WriteErrors: w.writeErrs.Load(),
	}
}

// serialise is how long n bytes occupy a link.
func (w *Wire) serialise(n int) time.Duration {
	if w.cfg.Rate == 0 {
		return 0
	}
	return time.Duration(float64(8*n) * float64(time.Second) / w.cfg.Rate)
}

// stopped reports whether Close has been called.
func (w *Wire) stopped() bool {
	select {
	case <-w.quit:
		return true
	default:
		return false
	}
}

// uplink reads the packets l's host sends and hands each to its
// destination's downlink at the time it has crossed l.
func (w *Wire) uplink(l *link, rng *rand.Rand) {
	var free, last time.Time // when the link is next idle; the last packet's arrival
	var seq uint64
	buf := make([]byte, maxPacket)
	for {
		n, err := l.Dev.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && !w.stopped() {
				continue
			}
			return // stopped, or the device closed: the bed is going away
		}
		now := time.Now()
		if n < 20 || buf[0]>>4 != 4 {
			w.notIPv4.Add(1)
			continue
		}
		dst := w.byIP[netip.AddrFrom4([4]byte(buf[16:20]))]
		if dst == nil {
			w.noRoute.Add(1)
			continue
		}
		start := free
		if start.Before(now) {
			start = now
		}
		if start.Sub(now) > w.cfg.Queue {
			w.upDrops.Add(1)
			continue
		}
		free = start.Add(w.serialise(n))
		at := free.Add(l.Delay + jitterOf(rng, w.cfg.Jitter))
		if at.Before(last) {
			at = last // no overtaking on one link
		}
		last = at
		seq++
		select {
		case dst.inbox <- packet{at: at, seq: seq, data: append([]byte(nil), buf[:n]...)}:
		case <-w.quit:
			return
		}
	}
}

// downlink takes packets for l's host in the order they reach its link,
// serialises them on it and hands each to the writer with the time it has
// crossed the link.
func (w *Wire) downlink(l *link, rng *rand.Rand, deliver chan<- packet) {
	var (
		pending    packets
		free, last time.Time
		timer      = time.NewTimer(time.Hour)
	)
	defer timer.Stop()
	for {
		if len(pending) > 0 {
			timer.Reset(time.Until(pending[0].at))
		}
		select {
		case p := <-l.inbox:
			heap.Push(&pending, p)
			continue
		case <-timer.C:
		case <-w.quit:
			return
		}
		for len(pending) > 0 && !pending[0].at.After(time.Now()) {
			p := heap.Pop(&pending).(packet)
			start := free
			if start.Before(p.at) {
				start = p.at
			}
			if start.Sub(p.at) > w.cfg.Queue {
				w.downDrops.Add(1)
				continue
			}
			free = start.Add(w.serialise(len(p.data)))
			p.at = free.Add(l.Delay + jitterOf(rng, w.cfg.Jitter))
			if p.at.Before(last) {
				p.at = last
			}
			last = p.at
			select {
			case deliver <- p:
			case <-w.quit:
				return
			}
		}
	}
}

// writer is l's far end: it writes the packets to l's host in order, each at
// its time.
func (w *Wire) writer(l *link, deliver <-chan packet) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var p packet
		select {
		case p = <-deliver:
		case <-w.quit:
			return
		}
		if d := time.Until(p.at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-w.quit:
				return
			}
		}
		if _, err := l.Dev.Write(p.data); err != nil {
			w.writeErrs.Add(1)
			continue
		}
		w.forwarded.Add(1)
		w.bytes.Add(uint64(len(p.data)))
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
