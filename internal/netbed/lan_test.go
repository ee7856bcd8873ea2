package netbed

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"
)

// TestLANHosts: hosts on one home LAN reach each other directly on their
// private addresses (no NAT between them), see each other's multicast, and
// all go out through the router's one public address.
func TestLANHosts(t *testing.T) {
	needBed(t)
	t.Parallel()
	b := New(t, "lan")
	p := b.AddPublic("p")
	startObserver(t, p)
	home := b.AddHome("h", EndpointIndependent)
	h2 := home.AddHost("h2")
	h3 := home.AddHost("h3")
	if want := net.IPv4(192, 168, byte(home.lanNet), 4).To4(); !h3.IP().Equal(want) {
		t.Fatalf("third LAN host at %s, want %s", h3.IP(), want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Direct TCP on the LAN: the listener sees the dialer's private address.
	l, err := home.Listen(ctx, net.ListenConfig{}, "tcp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Addr, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		accepted <- c.RemoteAddr()
		c.Close()
	}()
	c, err := h2.DialContext(ctx, "tcp4", net.JoinHostPort(home.IP().String(), strconv.Itoa(localPort(l.Addr()))))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case ra := <-accepted:
		if got := ra.(*net.TCPAddr).IP; !got.Equal(h2.IP()) {
			t.Fatalf("LAN peer seen at %s, want its private address %s", got, h2.IP())
		}
	case <-ctx.Done():
		t.Fatal("no LAN connection accepted")
	}

	// Multicast: a datagram h3 sends to a group reaches h2, which joined it.
	group := &net.UDPAddr{IP: net.IPv4(239, 255, 77, 1), Port: 45777}
	var mc *net.UDPConn
	if err := h2.do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		mc, err = net.ListenMulticastUDP("udp4", ifi, group)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	pc, err := h3.ListenPacket(ctx, net.ListenConfig{}, "udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	got := make(chan net.Addr, 1)
	go func() {
		buf := make([]byte, 64)
		_, from, err := mc.ReadFrom(buf)
		if err == nil {
			got <- from
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		if _, err := pc.WriteTo([]byte("hello"), group); err != nil {
			t.Fatal(err)
		}
		select {
		case from := <-got:
			if ip := from.(*net.UDPAddr).IP; !ip.Equal(h3.IP()) {
				t.Fatalf("multicast from %s, want %s", ip, h3.IP())
			}
			done = true
		case <-tick.C: // the first datagram may precede the group join's effect
		case <-ctx.Done():
			t.Fatal("multicast on the LAN not received")
		}
	}

	// Out to the internet: every LAN host behind the router's address.
	for _, h := range []*Host{home.Host, h2, h3} {
		seen, err := observeTCP(ctx, h, 0, p.IP())
		if err != nil {
			t.Fatal(err)
		}
		if seen.Addr() != addrOf(home.PublicIP()) {
			t.Fatalf("%s seen from the internet at %s, want the router's %s", h.IP(), seen, home.PublicIP())
		}
	}
}
