package host

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/multiformats/go-multiaddr"
)

func TestCombineReachability(t *testing.T) {
	cases := []struct {
		v1    network.Reachability
		v2    int
		want  network.Reachability
		basis string
	}{
		{network.ReachabilityUnknown, 0, network.ReachabilityUnknown, "none"},
		{network.ReachabilityUnknown, 1, network.ReachabilityPublic, "autonat-v2"},
		{network.ReachabilityPrivate, 2, network.ReachabilityPublic, "autonat-v2"},
		{network.ReachabilityPrivate, 0, network.ReachabilityPrivate, "autonat-v1"},
		{network.ReachabilityPublic, 0, network.ReachabilityPublic, "autonat-v1"},
	}
	for _, c := range cases {
		got, basis := combineReachability(c.v1, c.v2)
		if got != c.want || basis != c.basis {
			t.Errorf("combine(%s, %d) = %s %s, want %s %s", c.v1, c.v2, got, basis, c.want, c.basis)
		}
	}
}

// TestMonitorDecidesPublicFromAutoNATv2: a host whose AutoNAT v1 knows
// nothing turns public, for every subscriber of the bus, when AutoNAT v2
// confirms one of its addresses, and unknown again when that address is no
// longer confirmed. The v2 verdicts are injected on the bus, as libp2p's
// address manager emits them.
func TestMonitorDecidesPublicFromAutoNATv2(t *testing.T) {
	n := newNode(t)
	sub, err := n.h.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged), eventbus.BufSize(16))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	watch := &reachWatch{sub: sub}
	m := NewNATMonitor(testLog, nil)
	if err := m.Start(n.h); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if st := m.Status(); st.Reachability != "unknown" || st.Basis != "none" {
		t.Fatalf("fresh loopback host: %s (%s)", st.Reachability, st.Basis)
	}
	em, err := n.h.EventBus().Emitter(new(event.EvtHostReachableAddrsChanged), eventbus.Stateful)
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	pub := multiaddr.StringCast("/ip4/11.0.0.10/tcp/4001")
	if err := em.Emit(event.EvtHostReachableAddrsChanged{Reachable: []multiaddr.Multiaddr{pub}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the bus says public", func() bool { return watch.last() == network.ReachabilityPublic })
	waitFor(t, "the monitor says public (autonat-v2)", func() bool {
		st := m.Status()
		return st.Reachability == "public" && st.Basis == "autonat-v2"
	})
	if err := em.Emit(event.EvtHostReachableAddrsChanged{Unreachable: []multiaddr.Multiaddr{pub}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the bus says unknown again", func() bool { return watch.last() == network.ReachabilityUnknown })
	waitFor(t, "the monitor says unknown again", func() bool { return m.Status().Reachability == "unknown" })
}

// reachWatch is a subscriber to reachability events, read by one goroutine.
type reachWatch struct {
	sub  event.Subscription
	seen network.Reachability
}

// last drains the subscription and returns the last reachability it carried.
func (w *reachWatch) last() network.Reachability {
	for {
		select {
		case e := <-w.sub.Out():
			w.seen = e.(event.EvtLocalReachabilityChanged).Reachability
		default:
			return w.seen
		}
	}
}

// TestForcedReachabilityIsLeftAlone: with --reachability the monitor only
// watches, even when AutoNAT v2 says otherwise.
func TestForcedReachabilityIsLeftAlone(t *testing.T) {
	cfg := testConfig(t)
	cfg.ForceReachability = "private"
	n := startNode(t, cfg, NewTracker(WithLogger(testLog)))
	m := NewNATMonitor(testLog, nil)
	if err := m.Start(n.h); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	waitFor(t, "forced private", func() bool { return m.Status().Reachability == "private" })
	em, err := n.h.EventBus().Emitter(new(event.EvtHostReachableAddrsChanged), eventbus.Stateful)
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	if err := em.Emit(event.EvtHostReachableAddrsChanged{Reachable: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/11.0.0.10/tcp/4001")}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the v2 verdict recorded", func() bool { return len(m.Status().Reachable) == 1 })
	if st := m.Status(); st.Reachability != "private" || st.Basis != "forced" {
		t.Fatalf("forced private became %s (%s)", st.Reachability, st.Basis)
	}
}

func TestParseExternalAddr(t *testing.T) {
	good := []string{"/ip4/203.0.113.7/tcp/9702", "/ip6/2001:db8::1/udp/9702/quic-v1", "/dns4/node.example.org/tcp/9702"}
	for _, s := range good {
		if _, err := ParseExternalAddr(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	bad := map[string]string{
		"not a multiaddr":        "external address",
		"/tcp/9702":              "first",
		"/ip4/203.0.113.7":       "port",
		"/ip4/203.0.113.7/tcp/0": "port",
		"/ip4/203.0.113.7/tcp/9702/p2p/12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu": "/p2p",
	}
	for s, want := range bad {
		if _, err := ParseExternalAddr(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one mentioning %q", s, err, want)
		}
	}
}

// TestExternalAddrAnnounced: an external address is among the host's
// addresses, which identify sends to every peer.
func TestExternalAddrAnnounced(t *testing.T) {
	cfg := testConfig(t)
	cfg.ExternalAddrs = []string{"/ip4/203.0.113.7/tcp/9702"}
	a := startNode(t, cfg, NewTracker(WithLogger(testLog)))
	b := newNode(t)
	ext := multiaddr.StringCast("/ip4/203.0.113.7/tcp/9702")
	if !containsAddr(a.h.Addrs(), ext) {
		t.Fatalf("host addrs %v lack %s", a.h.Addrs(), ext)
	}
	if err := connect(b.h, a.h, peer.AddrInfo{ID: a.h.ID(), Addrs: a.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B learns A's external address by identify", func() bool {
		return containsAddr(b.h.Peerstore().Addrs(a.h.ID()), ext)
	})
	cfg = testConfig(t)
	cfg.ExternalAddrs = []string{"/ip4/203.0.113.7"}
	if _, err := New(cfg, nil); err == nil {
		t.Fatal("an external address without a port was accepted")
	}
}

func containsAddr(as []multiaddr.Multiaddr, a multiaddr.Multiaddr) bool {
	for _, x := range as {
		if x.Equal(a) {
			return true
		}
	}
	return false
}

// TestCheckListenPorts: a TCP or UDP port another process (here: a socket
// of this test) holds is reported with its number; free ports and port 0
// pass.
func TestCheckListenPorts(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tcpPort := l.Addr().(*net.TCPAddr).Port
	u, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	udpPort := u.LocalAddr().(*net.UDPAddr).Port

	for _, c := range []struct {
		addr, netw string
		port       int
	}{
		{"/ip4/127.0.0.1/tcp/" + strconv.Itoa(tcpPort), "tcp", tcpPort},
		{"/ip4/0.0.0.0/tcp/" + strconv.Itoa(tcpPort), "tcp", tcpPort},
		{"/ip4/127.0.0.1/udp/" + strconv.Itoa(udpPort) + "/quic-v1", "udp", udpPort},
	} {
		addrs, err := ListenAddrs("regtest", []string{"/ip4/127.0.0.1/tcp/0", c.addr})
		if err != nil {
			t.Fatal(err)
		}
		err = CheckListenPorts(addrs)
		var pe *PortInUseError
		if !errors.As(err, &pe) || pe.Port != c.port || pe.Network != c.netw {
			t.Fatalf("%s: %v, want a %s port %d in use", c.addr, err, c.netw, c.port)
		}
		if !strings.Contains(err.Error(), strconv.Itoa(c.port)) {
			t.Fatalf("message %q does not name the port", err)
		}
	}
	l.Close()
	u.Close()
	addrs, _ := ListenAddrs("regtest", []string{"/ip4/127.0.0.1/tcp/" + strconv.Itoa(tcpPort), "/ip4/127.0.0.1/udp/0/quic-v1"})
	if err := CheckListenPorts(addrs); err != nil {
		t.Fatalf("free ports: %v", err)
	}
}

// TestBanBounds: the ban list never exceeds MaxBans (the ban expiring first
// goes), and the node never bans itself.
func TestBanBounds(t *testing.T) {
	clock := newFakeClock()
	n := newNode(t, WithClock(clock.Now))
	n.tr.Ban(n.h.ID(), time.Hour, "self")
	n.tr.Penalize(n.h.ID(), errors.New("anything"))
	for range BanThreshold / PenaltyDefault {
		n.tr.Penalize(n.h.ID(), errors.New("anything"))
	}
	if n.tr.IsBanned(n.h.ID()) || len(n.tr.Banned()) != 0 {
		t.Fatalf("the node banned itself: %v", n.tr.Banned())
	}
	for i := range MaxBans + 10 {
		// Later peers get longer bans: the first ones expire first.
		n.tr.Ban(testPeer(t, i), time.Hour+time.Duration(i)*time.Second, "test")
	}
	bans := n.tr.Banned()
	if len(bans) != MaxBans {
		t.Fatalf("%d bans, bound %d", len(bans), MaxBans)
	}
	for i := range 10 {
		if n.tr.IsBanned(testPeer(t, i)) {
			t.Fatalf("ban %d (expiring first) was kept", i)
		}
	}
	if !n.tr.IsBanned(testPeer(t, MaxBans+9)) {
		t.Fatal("the newest ban was not kept")
	}
	for i := range maxScores + 10 {
		n.tr.Penalize(testPeer(t, 10_000+i), errors.New("anything"))
	}
	n.tr.mu.Lock()
	scores := len(n.tr.scores)
	n.tr.mu.Unlock()
	if scores > maxScores {
		t.Fatalf("%d scores, bound %d", scores, maxScores)
	}
}
