//go:build linux

package netbed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	natpmp "github.com/jackpal/go-nat-pmp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"golang.org/x/sys/unix"
)

// observerPort is where observers listen (TCP and UDP) on public hosts.
const observerPort = 7000

func needBed(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
}

// reuse sets SO_REUSEADDR and SO_REUSEPORT, as libp2p's TCP transport does to dial from its listening
// port.
func reuse(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	return errors.Join(err, serr)
}

// startObserver runs a TCP and a UDP server on h:observerPort that answer with the address they see
// the client at (a tiny STUN).
func startObserver(t *testing.T, h *Host) {
	t.Helper()
	ctx := context.Background()
	addr := net.JoinHostPort(h.IP().String(), strconv.Itoa(observerPort))
	l, err := h.Listen(ctx, net.ListenConfig{}, "tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := h.ListenPacket(ctx, net.ListenConfig{}, "udp4", addr)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = fmt.Fprintf(c, "%s\n", c.RemoteAddr())
			c.Close()
		}
	})
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(from.String()), from)
		}
	})
	t.Cleanup(func() {
		l.Close()
		pc.Close()
		wg.Wait()
	})
}

// observeTCP connects from h (from localPort if not 0, with SO_REUSEPORT) to the observer on server and
// returns the address the observer saw.
func observeTCP(ctx context.Context, h *Host, localPort int, server net.IP) (netip.AddrPort, error) {
	d := net.Dialer{Control: reuse}
	if localPort != 0 {
		d.LocalAddr = &net.TCPAddr{Port: localPort}
	}
	c, err := h.Dialer(d).DialContext(ctx, "tcp4", net.JoinHostPort(server.String(), strconv.Itoa(observerPort)))
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.ParseAddrPort(strings.TrimSpace(line))
}

// observeUDP sends from pc to the observer on server (resending every 200 ms) and returns the address
// the observer saw.
func observeUDP(ctx context.Context, pc net.PacketConn, server net.IP) (netip.AddrPort, error) {
	to := &net.UDPAddr{IP: server, Port: observerPort}
	buf := make([]byte, 1500)
	for {
		if _, err := pc.WriteTo([]byte("who am i"), to); err != nil {
			return netip.AddrPort{}, err
		}
		_ = pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, from, err := pc.ReadFrom(buf)
		if err == nil && from.(*net.UDPAddr).IP.Equal(server) {
			_ = pc.SetReadDeadline(time.Time{})
			return netip.ParseAddrPort(string(buf[:n]))
		}
		if ctx.Err() != nil {
			return netip.AddrPort{}, fmt.Errorf("no answer from observer %s: %w (last read: %v)", to, ctx.Err(), err)
		}
	}
}

func localPort(a net.Addr) int {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.Port
	case *net.UDPAddr:
		return a.Port
	}
	panic(fmt.Sprintf("unexpected address %T", a))
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip.To4())
	return a
}

// TestPublicToPublic: a public host reaches another over TCP and UDP, seen at its own address (no NAT),
// and bed addresses count as public for libp2p.
func TestPublicToPublic(t *testing.T) {
	needBed(t)
	t.Parallel()
	b := New(t, "pub")
	p1, p2 := b.AddPublic("p1"), b.AddPublic("p2")
	startObserver(t, p2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, h := range []*Host{p1, p2} {
		m, err := ma.NewMultiaddr("/ip4/" + h.IP().String() + "/tcp/4001")
		if err != nil {
			t.Fatal(err)
		}
		if !manet.IsPublicAddr(m) {
			t.Errorf("%s is not public to libp2p", m)
		}
	}

	seen, err := observeTCP(ctx, p1, 0, p2.IP())
	if err != nil {
		t.Fatalf("TCP p1 -> p2: %v", err)
	}
	if seen.Addr() != addrOf(p1.IP()) {
		t.Errorf("TCP: p2 saw %s, want p1's address %s", seen, p1.IP())
	}

	pc, err := p1.ListenPacket(ctx, net.ListenConfig{}, "udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	seen, err = observeUDP(ctx, pc, p2.IP())
	if err != nil {
		t.Fatalf("UDP p1 -> p2: %v", err)
	}
	if want := netip.AddrPortFrom(addrOf(p1.IP()), uint16(localPort(pc.LocalAddr()))); seen != want {
		t.Errorf("UDP: p2 saw %s, want %s", seen, want)
	}

	// The bed has no way out: the internet namespace drops what is not for the bed.
	d := p1.Dialer(net.Dialer{Timeout: 300 * time.Millisecond})
	if c, err := d.DialContext(ctx, "tcp4", "11.1.0.1:80"); err == nil {
		c.Close()
		t.Error("dial to an address outside the bed succeeded")
	}
	if _, err := p1.DialContext(ctx, "tcp", "localhost:80"); err == nil || !strings.Contains(err.Error(), "literal IP") {
		t.Errorf("dial by name: got %v, want a literal-IP error", err)
	}
}

// TestEndpointIndependentMapping: flows from one local port of a home host to two public hosts are both
// seen from the router's public address with that same port, over TCP and UDP.
func TestEndpointIndependentMapping(t *testing.T) {
	needBed(t)
	t.Parallel()
	b := New(t, "eim")
	p1, p2 := b.AddPublic("p1"), b.AddPublic("p2")
	startObserver(t, p1)
	startObserver(t, p2)
	home := b.AddHome("h", EndpointIndependent)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// TCP: bind the port by listening on :0, then dial from it, as libp2p does.
	l, err := home.Listen(ctx, net.ListenConfig{Control: reuse}, "tcp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := localPort(l.Addr())
	want := netip.AddrPortFrom(addrOf(home.PublicIP()), uint16(port))
	for _, p := range []*Host{p1, p2} {
		seen, err := observeTCP(ctx, home.Host, port, p.IP())
		if err != nil {
			t.Fatalf("TCP to %s: %v", p.IP(), err)
		}
		if seen != want {
			t.Errorf("TCP from local port %d: %s saw %s, want %s", port, p.IP(), seen, want)
		}
	}

	pc, err := home.ListenPacket(ctx, net.ListenConfig{}, "udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	want = netip.AddrPortFrom(addrOf(home.PublicIP()), uint16(localPort(pc.LocalAddr())))
	for _, p := range []*Host{p1, p2} {
		seen, err := observeUDP(ctx, pc, p.IP())
		if err != nil {
			t.Fatalf("UDP to %s: %v", p.IP(), err)
		}
		if seen != want {
			t.Errorf("UDP: %s saw %s, want %s", p.IP(), seen, want)
		}
	}
}

// TestSymmetricMapping: one local port is seen by two public hosts with different external ports.
func TestSymmetricMapping(t *testing.T) {
	needBed(t)
	t.Parallel()
	b := New(t, "sym")
	p1, p2 := b.AddPublic("p1"), b.AddPublic("p2")
	startObserver(t, p1)
	startObserver(t, p2)
	home := b.AddHome("h", Symmetric)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Random ports can coincide (about 1 in 64 000); a symmetric NAT differs in one of three tries, an
	// endpoint-independent one never does.
	const tries = 3
	check := func(proto string, observe func() (local int, seen1, seen2 netip.AddrPort)) {
		for range tries {
			local, s1, s2 := observe()
			t.Logf("%s local port %d: %s sees %s, %s sees %s", proto, local, p1.IP(), s1, p2.IP(), s2)
			for _, s := range []netip.AddrPort{s1, s2} {
				if s.Addr() != addrOf(home.PublicIP()) {
					t.Fatalf("%s seen from %s, want the router's %s", proto, s.Addr(), home.PublicIP())
				}
			}
			// Ports that differ cannot both equal the local port.
			if s1.Port() != s2.Port() {
				return
			}
		}
		t.Errorf("%s: %d tries gave the same external port towards both hosts", proto, tries)
	}

	check("UDP", func() (int, netip.AddrPort, netip.AddrPort) {
		pc, err := home.ListenPacket(ctx, net.ListenConfig{}, "udp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		s1, err1 := observeUDP(ctx, pc, p1.IP())
		s2, err2 := observeUDP(ctx, pc, p2.IP())
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		return localPort(pc.LocalAddr()), s1, s2
	})
	check("TCP", func() (int, netip.AddrPort, netip.AddrPort) {
		l, err := home.Listen(ctx, net.ListenConfig{Control: reuse}, "tcp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		port := localPort(l.Addr())
		s1, err1 := observeTCP(ctx, home.Host, port, p1.IP())
		s2, err2 := observeTCP(ctx, home.Host, port, p2.IP())
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		return port, s1, s2
	})
}

// TestUnsolicitedInboundDropped: the router drops (does not reject) unsolicited TCP and UDP from the
// internet, and lets in the reply to a flow the home host opened.
func TestUnsolicitedInboundDropped(t *testing.T) {
	needBed(t)
	t.Parallel()
	b := New(t, "inb")
	p := b.AddPublic("p")
	home := b.AddHome("h", EndpointIndependent)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	l, err := home.Listen(ctx, net.ListenConfig{}, "tcp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	target := net.JoinHostPort(home.PublicIP().String(), strconv.Itoa(localPort(l.Addr())))
	c, err := p.Dialer(net.Dialer{Timeout: 1500 * time.Millisecond}).DialContext(ctx, "tcp4", target)
	switch {
	case err == nil:
		c.Close()
		t.Errorf("unsolicited TCP to %s connected", target)
	case errors.Is(err, syscall.ECONNREFUSED):
		t.Errorf("unsolicited TCP to %s was refused, want it silently dropped: %v", target, err)
	default:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("unsolicited TCP to %s: %v, want a timeout", target, err)
		}
	}

	homePC, err := home.ListenPacket(ctx, net.ListenConfig{}, "udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer homePC.Close()
	homePort := localPort(homePC.LocalAddr())
	pubPC, err := p.ListenPacket(ctx, net.ListenConfig{}, "udp4", net.JoinHostPort(p.IP().String(), "9000"))
	if err != nil {
		t.Fatal(err)
	}
	defer pubPC.Close()
	homeExt := &net.UDPAddr{IP: home.PublicIP(), Port: homePort}
	for range 3 {
		if _, err := pubPC.WriteTo([]byte("unsolicited"), homeExt); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1500)
	_ = homePC.SetReadDeadline(time.Now().Add(time.Second))
	if n, from, err := homePC.ReadFrom(buf); err == nil {
		t.Errorf("unsolicited UDP arrived: %q from %s", buf[:n], from)
	}

	// Stateful: once the home host has sent to p from homePort, p's reply to routerIP:homePort arrives.
	deadline := time.Now().Add(3 * time.Second)
	var got bool
	for !got && time.Now().Before(deadline) {
		if _, err := homePC.WriteTo([]byte("hello"), pubPC.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		_ = pubPC.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, from, err := pubPC.ReadFrom(buf)
		if err != nil {
			continue
		}
		if string(buf[:n]) != "hello" || from.String() != homeExt.String() {
			t.Fatalf("p got %q from %s, want \"hello\" from %s", buf[:n], from, homeExt)
		}
		if _, err := pubPC.WriteTo([]byte("reply"), homeExt); err != nil {
			t.Fatal(err)
		}
		_ = homePC.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, from, err = homePC.ReadFrom(buf)
		got = err == nil && string(buf[:n]) == "reply" && from.String() == pubPC.LocalAddr().String()
	}
	if !got {
		t.Error("the public host's reply to the home host's flow never arrived")
	}
}

// punch has two home hosts send UDP to each other's observed public address until both have received
// one datagram from the other or ctx ends, and reports who received.
func punch(ctx context.Context, t *testing.T, a, b *Home, observer net.IP) (gotA, gotB bool) {
	t.Helper()
	pcA, err := a.ListenPacket(ctx, net.ListenConfig{}, "udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pcA.Close()
	pcB, err := b.ListenPacket(ctx, net.ListenConfig{}, "udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pcB.Close()
	extA, errA := observeUDP(ctx, pcA, observer)
	extB, errB := observeUDP(ctx, pcB, observer)
	if err := errors.Join(errA, errB); err != nil {
		t.Fatal(err)
	}
	t.Logf("a %s is %s, b %s is %s (seen by the observer)", pcA.LocalAddr(), extA, pcB.LocalAddr(), extB)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var gotFromB, gotFromA sync.WaitGroup // done when a has heard from b, b from a
	gotFromB.Add(1)
	gotFromA.Add(1)
	var wg sync.WaitGroup
	side := func(pc net.PacketConn, peer netip.AddrPort, heard *sync.WaitGroup, got *bool) {
		wg.Go(func() { // sender
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			to := net.UDPAddrFromAddrPort(peer)
			for {
				_, _ = pc.WriteTo([]byte("punch"), to)
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
		wg.Go(func() { // receiver
			dl, _ := ctx.Deadline()
			_ = pc.SetReadDeadline(dl)
			buf := make([]byte, 1500)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				if string(buf[:n]) == "punch" && addrOf(from.(*net.UDPAddr).IP) == peer.Addr() {
					*got = true
					heard.Done()
					return
				}
			}
		})
	}
	side(pcA, extB, &gotFromB, &gotA)
	side(pcB, extA, &gotFromA, &gotB)
	bothHeard := make(chan struct{})
	go func() {
		gotFromA.Wait()
		gotFromB.Wait()
		close(bothHeard)
	}()
	select {
	case <-bothHeard:
		cancel()
	case <-ctx.Done():
	}
	cancel()
	// Unblock receivers still reading.
	_ = pcA.SetReadDeadline(time.Now())
	_ = pcB.SetReadDeadline(time.Now())
	wg.Wait()
	return gotA, gotB
}

// TestHolePunch: UDP hole punching by hand works through two endpoint-independent NATs and fails
// through two symmetric ones.
func TestHolePunch(t *testing.T) {
	needBed(t)
	t.Parallel()
	for _, tc := range []struct {
		nat     NAT
		succeed bool
	}{{EndpointIndependent, true}, {Symmetric, false}} {
		t.Run(tc.nat.String(), func(t *testing.T) {
			t.Parallel()
			b := New(t, "punch")
			obs := b.AddPublic("obs")
			startObserver(t, obs)
			ha, hb := b.AddHome("a", tc.nat), b.AddHome("b", tc.nat)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			gotA, gotB := punch(ctx, t, ha, hb, obs.IP())
			if tc.succeed && !(gotA && gotB) {
				t.Errorf("hole punching failed: a received %t, b received %t", gotA, gotB)
			}
			if !tc.succeed && (gotA || gotB) {
				t.Errorf("hole punching through symmetric NATs let a datagram through: a received %t, b received %t", gotA, gotB)
			}
			if tc.succeed {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				punchTCP(ctx, t, ha, hb, obs.IP())
			}
		})
	}
}

// punchTCP has two home hosts, each listening on a port with SO_REUSEPORT as libp2p does, dial each
// other's observed public address from that port at the same time until a connection forms (by TCP
// simultaneous open, or by a SYN reaching the other's listener), and checks data flows over it.
func punchTCP(ctx context.Context, t *testing.T, a, b *Home, observer net.IP) {
	t.Helper()
	type side struct {
		home *Home
		l    net.Listener
		port int
		ext  netip.AddrPort
	}
	sides := []*side{{home: a}, {home: b}}
	for _, s := range sides {
		l, err := s.home.Listen(ctx, net.ListenConfig{Control: reuse}, "tcp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		s.l, s.port = l, localPort(l.Addr())
		if s.ext, err = observeTCP(ctx, s.home.Host, s.port, observer); err != nil {
			t.Fatal(err)
		}
	}

	type result struct {
		side int
		how  string
		c    net.Conn
	}
	results := make(chan result, 8)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, s := range sides {
		peer := sides[1-i]
		wg.Go(func() {
			c, err := s.l.Accept()
			if err == nil {
				results <- result{i, "accepted", c}
			}
		})
		wg.Go(func() {
			d := s.home.Dialer(net.Dialer{Control: reuse, LocalAddr: &net.TCPAddr{Port: s.port}, Timeout: time.Second})
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp4", peer.ext.String())
				if err == nil {
					results <- result{i, "dialed", c}
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}
	var conns [2]net.Conn
	for conns[0] == nil || conns[1] == nil {
		select {
		case r := <-results:
			t.Logf("TCP hole punch: side %d %s %s -> %s", r.side, r.how, r.c.LocalAddr(), r.c.RemoteAddr())
			if conns[r.side] == nil {
				conns[r.side] = r.c
			} else {
				r.c.Close()
			}
		case <-ctx.Done():
			t.Errorf("TCP hole punching failed: a connected %t, b connected %t", conns[0] != nil, conns[1] != nil)
		}
		if ctx.Err() != nil {
			break
		}
	}
	cancel()
	for _, s := range sides {
		s.l.Close()
	}
	wg.Wait()
	close(results)
	for r := range results {
		r.c.Close()
	}
	if conns[0] == nil || conns[1] == nil {
		return
	}
	defer conns[0].Close()
	defer conns[1].Close()
	for i, c := range conns {
		if got := addrOf(c.RemoteAddr().(*net.TCPAddr).IP); got != sides[1-i].ext.Addr() {
			t.Errorf("side %d connected to %s, want the peer's public address %s", i, got, sides[1-i].ext)
		}
	}
	_ = conns[1].SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conns[0].Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conns[1], buf); err != nil || string(buf) != "ping" {
		t.Errorf("over the punched connection: %q, %v", buf, err)
	}
}

// serveHello accepts connections on l and greets each with msg.
func serveHello(t *testing.T, l net.Listener, msg string) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, msg)
			c.Close()
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
}

// readHello connects from p to addr and returns what the server says.
func readHello(ctx context.Context, p *Host, addr string) (string, error) {
	c, err := p.DialContext(ctx, "tcp4", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// TestUPnP: with UPnP(true), a NAT-PMP mapping (and a UPnP IGD mapping found by SSDP) lets a public host
// reach the home host's listener through the router's public address.
func TestUPnP(t *testing.T) {
	needBed(t)
	if err := MiniUPnPdAvailable(); err != nil {
		t.Skip(err)
	}
	t.Parallel()
	b := New(t, "upnp")
	p := b.AddPublic("p")
	home := b.AddHome("h", EndpointIndependent, UPnP(true))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("NAT-PMP", func(t *testing.T) {
		l, err := home.Listen(ctx, net.ListenConfig{}, "tcp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		serveHello(t, l, "hello via NAT-PMP")
		port := localPort(l.Addr())
		target := net.JoinHostPort(home.PublicIP().String(), strconv.Itoa(port))
		short, cancelShort := context.WithTimeout(ctx, time.Second)
		_, err = readHello(short, p, target)
		cancelShort()
		if err == nil {
			t.Fatalf("%s reachable before any mapping", target)
		}

		var ext *natpmp.GetExternalAddressResult
		var mapping *natpmp.AddPortMappingResult
		// go-nat-pmp dials its UDP socket on the calling goroutine: run it inside the home namespace.
		err = home.do(func() error {
			client := natpmp.NewClientWithTimeout(home.Gateway(), 3*time.Second)
			var err error
			if ext, err = client.GetExternalAddress(); err != nil {
				return err
			}
			mapping, err = client.AddPortMapping("tcp", port, port, 120)
			return err
		})
		if err != nil {
			t.Fatalf("NAT-PMP: %v\n%s", err, home.UPnPLog())
		}
		if got := net.IP(ext.ExternalIPAddress[:]); !got.Equal(home.PublicIP()) {
			t.Errorf("NAT-PMP external address %s, want %s", got, home.PublicIP())
		}
		t.Logf("NAT-PMP mapped tcp %d -> external %d for %d s", port, mapping.MappedExternalPort, mapping.PortMappingLifetimeInSeconds)
		target = net.JoinHostPort(home.PublicIP().String(), strconv.Itoa(int(mapping.MappedExternalPort)))
		got, err := readHello(ctx, p, target)
		if err != nil || got != "hello via NAT-PMP" {
			t.Fatalf("through the mapping %s: %q, %v\n%s", target, got, err, home.UPnPLog())
		}
	})

	t.Run("IGD", func(t *testing.T) {
		location := ssdpSearch(ctx, t, home)
		client := home.HTTPClient()
		controlURL, service := igdControl(ctx, t, client, location)

		l, err := home.Listen(ctx, net.ListenConfig{}, "tcp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		serveHello(t, l, "hello via IGD")
		port := localPort(l.Addr())
		ext := port + 1 // any free external port; the listener's own port is fine too
		args := fmt.Sprintf(`<NewRemoteHost></NewRemoteHost><NewExternalPort>%d</NewExternalPort>`+
			`<NewProtocol>TCP</NewProtocol><NewInternalPort>%d</NewInternalPort>`+
			`<NewInternalClient>%s</NewInternalClient><NewEnabled>1</NewEnabled>`+
			`<NewPortMappingDescription>netbed</NewPortMappingDescription><NewLeaseDuration>120</NewLeaseDuration>`,
			ext, port, home.IP())
		if err := soapCall(ctx, client, controlURL, service, "AddPortMapping", args); err != nil {
			t.Fatalf("AddPortMapping: %v\n%s", err, home.UPnPLog())
		}
		target := net.JoinHostPort(home.PublicIP().String(), strconv.Itoa(ext))
		got, err := readHello(ctx, p, target)
		if err != nil || got != "hello via IGD" {
			t.Fatalf("through the IGD mapping %s: %q, %v\n%s", target, got, err, home.UPnPLog())
		}
	})
}

// ssdpSearch multicasts an SSDP M-SEARCH for an IGD from the home host and returns the LOCATION of
// the first answer.
func ssdpSearch(ctx context.Context, t *testing.T, home *Home) string {
	t.Helper()
	pc, err := home.ListenPacket(ctx, net.ListenConfig{}, "udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	const search = "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n" +
		"ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n"
	group := &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250), Port: 1900}
	buf := make([]byte, 4096)
	for ctx.Err() == nil {
		if _, err := pc.WriteTo([]byte(search), group); err != nil {
			t.Fatal(err)
		}
		_ = pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(buf[:n]), "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "location") {
				return strings.TrimSpace(v)
			}
		}
	}
	t.Fatalf("no SSDP answer from the IGD\n%s", home.UPnPLog())
	return ""
}

type igdDevice struct {
	Services []struct {
		ServiceType string `xml:"serviceType"`
		ControlURL  string `xml:"controlURL"`
	} `xml:"serviceList>service"`
	Devices []igdDevice `xml:"deviceList>device"`
}

// igdControl fetches the IGD description and returns the WANIPConnection control URL and service type.
func igdControl(ctx context.Context, t *testing.T, client *http.Client, location string) (string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, location, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var root struct {
		Device igdDevice `xml:"device"`
	}
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&root); err != nil {
		t.Fatalf("IGD description %s: %v", location, err)
	}
	var find func(d igdDevice) (string, string, bool)
	find = func(d igdDevice) (string, string, bool) {
		for _, s := range d.Services {
			if strings.HasPrefix(s.ServiceType, "urn:schemas-upnp-org:service:WANIPConnection:") {
				return s.ControlURL, s.ServiceType, true
			}
		}
		for _, sub := range d.Devices {
			if u, st, ok := find(sub); ok {
				return u, st, true
			}
		}
		return "", "", false
	}
	u, st, ok := find(root.Device)
	if !ok {
		t.Fatalf("IGD description %s has no WANIPConnection service", location)
	}
	base, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return base.ResolveReference(ref).String(), st
}

// soapCall performs one UPnP SOAP action.
func soapCall(ctx context.Context, client *http.Client, controlURL, service, action, args string) error {
	body := `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ` +
		`s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:` + action +
		` xmlns:u="` + service + `">` + args + `</u:` + action + `></s:Body></s:Envelope>`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, controlURL, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", `text/xml; charset="utf-8"`)
	req.Header.Set("SOAPAction", `"`+service+"#"+action+`"`)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", action, resp.Status, bytes.TrimSpace(out))
	}
	return nil
}

// TestChangePublicIP: after the router's address changes, new flows are seen from the new address.
func TestChangePublicIP(t *testing.T) {
	needBed(t)
	t.Parallel()
	b := New(t, "chg")
	p := b.AddPublic("p")
	startObserver(t, p)
	home := b.AddHome("h", EndpointIndependent)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	observe := func() (tcp, udp netip.Addr) {
		t.Helper()
		st, err := observeTCP(ctx, home.Host, 0, p.IP())
		if err != nil {
			t.Fatal(err)
		}
		pc, err := home.ListenPacket(ctx, net.ListenConfig{}, "udp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		su, err := observeUDP(ctx, pc, p.IP())
		if err != nil {
			t.Fatal(err)
		}
		return st.Addr(), su.Addr()
	}
	old := addrOf(home.PublicIP())
	if tcp, udp := observe(); tcp != old || udp != old {
		t.Fatalf("before the change: seen from %s (TCP) and %s (UDP), want %s", tcp, udp, old)
	}
	newIP := home.ChangePublicIP()
	if addrOf(newIP) == old || !home.PublicIP().Equal(newIP) || !home.Router.IP().Equal(newIP) {
		t.Fatalf("ChangePublicIP returned %s (old %s, PublicIP now %s)", newIP, old, home.PublicIP())
	}
	if tcp, udp := observe(); tcp != addrOf(newIP) || udp != addrOf(newIP) {
		t.Fatalf("after the change: seen from %s (TCP) and %s (UDP), want %s", tcp, udp, newIP)
	}
}

// netnsList returns the output of `ip netns list`.
func netnsList(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(probeTools(t).ip, "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	return string(out)
}

func probeTools(t *testing.T) tools {
	tl, err := probeOnce()
	if err != nil {
		t.Skip(err)
	}
	return tl
}

// listed reports which of names appear in an `ip netns list` output.
func listed(list string, names []string) []string {
	var found []string
	for line := range strings.Lines(list) {
		f := strings.Fields(line)
		if len(f) > 0 && slices.Contains(names, f[0]) {
			found = append(found, f[0])
		}
	}
	return found
}

// TestTeardown: after a bed's cleanup none of its namespaces remain, tracked processes and miniupnpd
// are stopped.
func TestTeardown(t *testing.T) {
	needBed(t)
	t.Parallel()
	var (
		names []string
		cmd   *exec.Cmd
		upnp  *daemon
	)
	t.Run("bed", func(t *testing.T) {
		b := New(t, "down")
		p := b.AddPublic("p")
		var opts []HomeOption
		if MiniUPnPdAvailable() == nil {
			opts = append(opts, UPnP(true))
		}
		home := b.AddHome("h", Symmetric, opts...)
		upnp = home.upnp
		cmd = p.Command(context.Background(), "sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		b.Track(cmd)
		names = b.Namespaces()
		if len(names) != 4 {
			t.Fatalf("namespaces %v, want 4 (internet, public, router, home)", names)
		}
		if found := listed(netnsList(t), names); len(found) != len(names) {
			t.Fatalf("ip netns list shows %v of %v", found, names)
		}
	})
	if found := listed(netnsList(t), names); len(found) > 0 {
		t.Errorf("namespaces left after cleanup: %v", found)
	}
	// Cleanup waited until the process had exited; its status is still ours to collect.
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("tracked process: Wait = %v, want killed by SIGTERM", err)
	}
	if upnp != nil && !upnp.exited() {
		t.Error("miniupnpd still running after cleanup")
	}
}

// fakeTB records cleanups and fatal failures instead of ending the test, so a test can watch a bed's
// constructor fail and its cleanup run.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	fatal    string
	errs     []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fatal != "" || len(f.errs) > 0
}

// TestTeardownAfterFailedConstructor: when AddHome fails after creating the router namespace, the
// bed's cleanup still removes everything.
func TestTeardownAfterFailedConstructor(t *testing.T) {
	needBed(t)
	t.Parallel()
	ft := &fakeTB{TB: t}
	var b *Bed
	var before []string
	done := make(chan struct{})
	go func() { // Fatalf ends this goroutine, as it would end a test
		defer close(done)
		b = New(ft, "fail")
		b.AddPublic("p")
		b.failAt = "home-host"
		b.AddHome("h", EndpointIndependent)
	}()
	<-done
	if !strings.Contains(ft.fatal, "injected failure") {
		t.Fatalf("AddHome did not fail as injected: fatal %q", ft.fatal)
	}
	before = b.Namespaces()
	routerNS := b.tag + "-rtr-h"
	if !slices.Contains(before, routerNS) || len(listed(netnsList(t), []string{routerNS})) != 1 {
		t.Fatalf("the router namespace %s was not created before the failure (bed has %v)", routerNS, before)
	}
	for i := len(ft.cleanups) - 1; i >= 0; i-- {
		ft.cleanups[i]()
	}
	if len(ft.errs) > 0 {
		t.Errorf("cleanup reported errors: %v", ft.errs)
	}
	if found := listed(netnsList(t), before); len(found) > 0 {
		t.Errorf("namespaces left after cleanup of a failed bed: %v", found)
	}
}
