package discovery

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"golang.org/x/net/ipv4"
)

// multicastUnavailable returns why IPv4 multicast cannot loop back on this
// machine, or "" when it can: it sends one datagram to a multicast group on
// every up, multicast-capable interface and waits for it to come back.
func multicastUnavailable() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "listing interfaces: " + err.Error()
	}
	var mc []net.Interface
	for _, ifi := range ifaces {
		if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 {
			mc = append(mc, ifi)
		}
	}
	if len(mc) == 0 {
		return "no interface is up and multicast-capable"
	}
	c, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		return "udp4 socket: " + err.Error()
	}
	defer c.Close()
	p := ipv4.NewPacketConn(c)
	group := net.IPv4(239, 255, 77, 77)
	dst := &net.UDPAddr{IP: group, Port: c.LocalAddr().(*net.UDPAddr).Port}
	payload := []byte("dagnode multicast probe")
	sent := false
	for i := range mc {
		if p.JoinGroup(&mc[i], &net.UDPAddr{IP: group}) != nil || p.SetMulticastInterface(&mc[i]) != nil {
			continue
		}
		_ = p.SetMulticastLoopback(true)
		if _, err := p.WriteTo(payload, nil, dst); err == nil {
			sent = true
		}
	}
	if !sent {
		return "cannot join or send to a multicast group on any interface"
	}
	buf := make([]byte, 64)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return "a multicast datagram sent here does not come back: " + err.Error()
		}
		if bytes.Equal(buf[:n], payload) {
			return ""
		}
	}
}

func requireMulticast(t *testing.T) {
	t.Helper()
	if why := multicastUnavailable(); why != "" {
		t.Skipf("mDNS needs multicast: %s", why)
	}
}

// Test 2: two simnet nodes given no addresses find each other by mDNS.
func TestMDNSFindsPeers(t *testing.T) {
	requireMulticast(t)
	ha, hb := newHost(t), newHost(t)
	sa := startService(t, Config{Host: ha, MDNS: true})
	startService(t, Config{Host: hb, MDNS: true})
	eventually(t, testDeadline, "A and B connected through mDNS", func() bool { return isConnected(ha, hb) })
	if sa.mdns == nil {
		t.Fatal("mDNS not running")
	}
}

// Test 3: mDNS of one network does not find the nodes of another on the same
// LAN: two simnet and two regtest nodes pair up by network only.
func TestMDNSOtherNetworkNotFound(t *testing.T) {
	requireMulticast(t)
	hs1, hs2, hr1, hr2 := newHost(t), newHost(t), newHost(t), newHost(t)
	svcs := []*Service{
		startService(t, Config{Host: hs1, MDNS: true}),
		startService(t, Config{Host: hs2, MDNS: true}),
		startService(t, Config{Host: hr1, Network: "regtest", MDNS: true}),
		startService(t, Config{Host: hr2, Network: "regtest", MDNS: true}),
	}
	eventually(t, testDeadline, "simnet pair connected", func() bool { return isConnected(hs1, hs2) })
	eventually(t, testDeadline, "regtest pair connected", func() bool { return isConnected(hr1, hr2) })
	// Every node has heard its partner's announcement; the other network's
	// nodes announced at the same moment on the same LAN, so had the service
	// names matched, they would have been reported (and dialed) too.
	eventually(t, testDeadline, "an mDNS report on every node", func() bool {
		for _, s := range svcs {
			if s.Stats().MDNSFound < 1 {
				return false
			}
		}
		return true
	})
	for _, pair := range [][2]host.Host{{hs1, hr1}, {hs1, hr2}, {hs2, hr1}, {hs2, hr2}} {
		if pair[0].Network().Connectedness(pair[1].ID()) != network.NotConnected {
			t.Fatalf("simnet %s and regtest %s connected", pair[0].ID(), pair[1].ID())
		}
	}
	// Nor did either side try to dial the other network.
	for _, s := range svcs {
		s.dmu.Lock()
		for p := range s.retries {
			if s.cfg.Network == "simnet" && (p == hr1.ID() || p == hr2.ID()) ||
				s.cfg.Network == "regtest" && (p == hs1.ID() || p == hs2.ID()) {
				t.Errorf("%s node dialed %s of the other network", s.cfg.Network, p)
			}
		}
		s.dmu.Unlock()
	}
}
