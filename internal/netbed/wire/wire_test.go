package wire

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// udpDev is a Device made of a loopback UDP socket: the wire reads what the
// test's host end sends it and writes to the host end. It needs no root and
// no TUN, so the model is tested anywhere.
type udpDev struct {
	*net.UDPConn
	peer *net.UDPAddr
}

func (d udpDev) Write(p []byte) (int, error) { return d.WriteToUDP(p, d.peer) }

// host is the test's end of one link: it sends packets into the wire and
// receives what the wire delivers.
type host struct {
	ip   netip.Addr
	conn *net.UDPConn // connected to the wire's end
}

// newHost makes a host end and the wire's device for it.
func newHost(t *testing.T, ip string) (*host, udpDev) {
	t.Helper()
	wireEnd, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	hostEnd, err := net.DialUDP("udp4", nil, wireEnd.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wireEnd.Close(); hostEnd.Close() })
	return &host{ip: netip.MustParseAddr(ip), conn: hostEnd}, udpDev{wireEnd, hostEnd.LocalAddr().(*net.UDPAddr)}
}

// ipPacket is an IPv4 header from src to dst carrying a 4-byte sequence
// number, padded to size bytes.
func ipPacket(src, dst netip.Addr, seq uint32, size int) []byte {
	p := make([]byte, max(size, 24))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	s, d := src.As4(), dst.As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint32(p[20:], seq)
	return p
}

func (h *host) send(t *testing.T, p []byte) {
	t.Helper()
	if _, err := h.conn.Write(p); err != nil {
		t.Fatal(err)
	}
}

// recv returns the next packet's sequence number and arrival time.
func (h *host) recv(t *testing.T, timeout time.Duration) (uint32, time.Time, error) {
	t.Helper()
	buf := make([]byte, 2048)
	_ = h.conn.SetReadDeadline(time.Now().Add(timeout))
	n, err := h.conn.Read(buf)
	if err != nil {
		return 0, time.Time{}, err
	}
	if n < 24 {
		t.Fatalf("short packet of %d bytes", n)
	}
	return binary.BigEndian.Uint32(buf[20:]), time.Now(), nil
}

func newWire(t *testing.T, cfg Config) *Wire {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.Start()
	t.Cleanup(func() { w.Close() })
	return w
}

// TestWireDelayOrderAndRoutes: a packet from a to b takes a's delay plus b's
// (within twice the jitter); a burst arrives in order whatever the jitter;
// packets to an unknown address or that are not IPv4 are counted, not
// forwarded; Close stops everything at once and is idempotent.
func TestWireDelayOrderAndRoutes(t *testing.T) {
	const jitter = 2 * time.Millisecond
	a, da := newHost(t, "11.0.0.10")
	b, db := newHost(t, "11.0.0.11")
	c, dc := newHost(t, "11.0.0.12")
	w := newWire(t, Config{Jitter: jitter, Seed: 7, Links: []Link{
		{IP: a.ip, Delay: 10 * time.Millisecond, Dev: da},
		{IP: b.ip, Delay: 25 * time.Millisecond, Dev: db},
		{IP: c.ip, Delay: 5 * time.Millisecond, Dev: dc},
	}})

	for _, tc := range []struct {
		from, to *host
		want     time.Duration
	}{{a, b, 35 * time.Millisecond}, {b, c, 30 * time.Millisecond}, {c, a, 15 * time.Millisecond}} {
		var best time.Duration
		for i := range 5 {
			sent := time.Now()
			tc.from.send(t, ipPacket(tc.from.ip, tc.to.ip, uint32(i), 100))
			seq, at, err := tc.to.recv(t, 2*time.Second)
			if err != nil || seq != uint32(i) {
				t.Fatalf("%v to %v: packet %d: got %d, %v", tc.from.ip, tc.to.ip, i, seq, err)
			}
			if d := at.Sub(sent); best == 0 || d < best {
				best = d
			}
		}
		// The lower bound is the model's; the upper one leaves room for a
		// loaded machine (-race).
		if best < tc.want-2*jitter || best > tc.want+2*jitter+50*time.Millisecond {
			t.Errorf("%v to %v: one-way delay %v, want %v ± %v", tc.from.ip, tc.to.ip, best, tc.want, 2*jitter)
		}
		t.Logf("%v to %v: %v (model %v ± %v)", tc.from.ip, tc.to.ip, best, tc.want, 2*jitter)
	}

	// A burst from two senders to one host: each sender's packets in order.
	const burst = 50 // small enough for the sockets' default buffers
	for i := range burst {
		a.send(t, ipPacket(a.ip, b.ip, uint32(i), 100))
		c.send(t, ipPacket(c.ip, b.ip, 1<<16+uint32(i), 100))
	}
	next := map[uint32]uint32{0: 0, 1: 1 << 16}
	for range 2 * burst {
		seq, _, err := b.recv(t, 2*time.Second)
		if err != nil {
			t.Fatalf("burst: %v (stats %s)", err, w.Stats())
		}
		if want := next[seq>>16]; seq != want {
			t.Fatalf("burst: packet %#x arrived when %#x was due: reordered", seq, want)
		}
		next[seq>>16]++
	}

	a.send(t, ipPacket(a.ip, netip.MustParseAddr("11.0.0.99"), 0, 100))
	a.send(t, []byte{0x60, 0, 0, 0}) // not IPv4
	deadline := time.Now().Add(2 * time.Second)
	for w.Stats().NoRoute != 1 || w.Stats().NotIPv4 != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %s: want 1 without route, 1 not IPv4", w.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := w.Stats(); s.Forwarded != 15+2*burst || s.UplinkDrops+s.DownlinkDrops+s.WriteErrors != 0 {
		t.Errorf("stats %s: want %d forwarded and no drop", s, 15+2*burst)
	}

	start := time.Now()
	w.Close()
	w.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	a.send(t, ipPacket(a.ip, b.ip, 9, 100))
	if _, _, err := b.recv(t, 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a packet crossed a closed wire (%v)", err)
	}
}

// TestWireRate: with a rate cap, a burst takes its serialisation time on the
// sender's uplink; packets queued longer than Queue are dropped and counted.
func TestWireRate(t *testing.T) {
	const (
		rate  = 1e6 // bit/s: a 1250-byte packet occupies a link 10 ms
		size  = 1250
		count = 20
	)
	a, da := newHost(t, "11.0.0.10")
	b, db := newHost(t, "11.0.0.11")
	w := newWire(t, Config{Rate: rate, Queue: 100 * time.Millisecond, Links: []Link{
		{IP: a.ip, Delay: time.Millisecond, Dev: da},
		{IP: b.ip, Delay: time.Millisecond, Dev: db},
	}})
	sent := time.Now()
	for i := range count {
		a.send(t, ipPacket(a.ip, b.ip, uint32(i), size))
	}
	var got int
	var last time.Time
	for {
		_, at, err := b.recv(t, 500*time.Millisecond)
		if err != nil {
			break
		}
		got++
		last = at
	}
	// 100 ms of queue holds 10 packets behind the one on the link: 11 go
	// through (give or take one for timing), the rest are dropped.
	s := w.Stats()
	if got < 10 || got > 12 || s.UplinkDrops != uint64(count-got) {
		t.Errorf("%d of %d packets delivered, stats %s: want about 11 and the rest dropped on the uplink", got, count, s)
	}
	if min := time.Duration(got) * 10 * time.Millisecond; last.Sub(sent) < min {
		t.Errorf("%d packets of %d bytes at %v bit/s took %v, want at least %v", got, size, rate, last.Sub(sent), min)
	}
	t.Logf("%d packets delivered in %v, %s", got, last.Sub(sent), s)
}

func TestNewRejects(t *testing.T) {
	_, d := newHost(t, "11.0.0.10")
	ip := netip.MustParseAddr("11.0.0.10")
	for name, cfg := range map[string]Config{
		"no links":        {},
		"negative rate":   {Rate: -1, Links: []Link{{IP: ip, Delay: time.Millisecond, Dev: d}}},
		"delay < jitter":  {Jitter: 2 * time.Millisecond, Links: []Link{{IP: ip, Delay: time.Millisecond, Dev: d}}},
		"IPv6":            {Links: []Link{{IP: netip.MustParseAddr("::1"), Delay: time.Millisecond, Dev: d}}},
		"same IP twice":   {Links: []Link{{IP: ip, Delay: time.Millisecond, Dev: d}, {IP: ip, Delay: time.Millisecond, Dev: d}}},
		"no device":       {Links: []Link{{IP: ip, Delay: time.Millisecond}}},
		"negative queue":  {Queue: -1, Links: []Link{{IP: ip, Delay: time.Millisecond, Dev: d}}},
		"negative jitter": {Jitter: -1, Links: []Link{{IP: ip, Delay: time.Millisecond, Dev: d}}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
