package host

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

var testLog = slog.New(slog.DiscardHandler)

const waitTimeout = 15 * time.Second

func newKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testConfig listens on loopback TCP and QUIC, ports chosen by the OS.
func testConfig(t *testing.T) Config {
	return Config{
		Network:     "regtest",
		PrivKey:     newKey(t),
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
		DisableNAT:  true,
		Version:     "test",
		Logger:      testLog,
	}
}

type node struct {
	h  host.Host
	tr *Tracker
}

// startNode builds a host from cfg with tr and starts tr; both are closed at
// the end of the test.
func startNode(t *testing.T, cfg Config, tr *Tracker) node {
	t.Helper()
	h, err := New(cfg, tr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.Close()
		h.Close()
	})
	if err := tr.Start(h); err != nil {
		t.Fatal(err)
	}
	return node{h, tr}
}

func newNode(t *testing.T, opts ...TrackerOption) node {
	t.Helper()
	return startNode(t, testConfig(t), NewTracker(append([]TrackerOption{WithLogger(testLog)}, opts...)...))
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// addrInfo returns to's address info restricted to one transport
// (multiaddr.P_TCP or multiaddr.P_QUIC_V1), built from FullAddrs.
func addrInfo(t *testing.T, to host.Host, transport int) peer.AddrInfo {
	t.Helper()
	var addrs []multiaddr.Multiaddr
	for _, a := range FullAddrs(to) {
		if transportCode(a) == transport {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		t.Fatalf("no address with transport %d in %v", transport, FullAddrs(to))
	}
	infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
	if err != nil || len(infos) != 1 {
		t.Fatalf("AddrInfosFromP2pAddrs(%v) = %v, %v", addrs, infos, err)
	}
	return infos[0]
}

func transportCode(a multiaddr.Multiaddr) int {
	code := 0
	for _, c := range a {
		switch c.Protocol().Code {
		case multiaddr.P_TCP, multiaddr.P_QUIC_V1:
			code = c.Protocol().Code
		}
	}
	return code
}

// connect dials to from `from` over one transport only, after forgetting
// addresses and dial backoffs of earlier attempts.
func connect(from, to host.Host, info peer.AddrInfo) error {
	from.Peerstore().ClearAddrs(to.ID())
	if s, ok := from.Network().(*swarm.Swarm); ok {
		s.Backoff().Clear(to.ID())
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return from.Connect(ctx, info)
}

func disconnected(a, b host.Host) func() bool {
	return func() bool {
		return a.Network().Connectedness(b.ID()) == network.NotConnected &&
			b.Network().Connectedness(a.ID()) == network.NotConnected
	}
}

func TestDefaultPort(t *testing.T) {
	want := map[string]int{"mainnet": 9700, "testnet": 9701, "simnet": 9702, "regtest": 9703, "": 0, "Mainnet": 0}
	for n, p := range want {
		if got := DefaultPort(n); got != p {
			t.Errorf("DefaultPort(%q) = %d, want %d", n, got, p)
		}
	}
	for _, p := range dag.Networks() {
		if DefaultPort(p.Name) == 0 {
			t.Errorf("dag network %q has no default port", p.Name)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	s, err := Config{Network: "simnet", PrivKey: newKey(t)}.validate()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range s.listen {
		got = append(got, a.String())
	}
	want := []string{"/ip4/0.0.0.0/tcp/9702", "/ip4/0.0.0.0/udp/9702/quic-v1", "/ip6/::/tcp/9702", "/ip6/::/udp/9702/quic-v1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("listen = %v, want %v", got, want)
	}
	if s.LowWater != DefaultLowWater || s.HighWater != DefaultHighWater || s.GracePeriod != DefaultGracePeriod {
		t.Errorf("watermarks %d/%d/%s", s.LowWater, s.HighWater, s.GracePeriod)
	}
	if s.agent != "dagnode/dev" || s.Logger == nil {
		t.Errorf("agent %q, logger %v", s.agent, s.Logger)
	}
}

func TestConfigErrors(t *testing.T) {
	relay := peer.AddrInfo{ID: peer.ID("relay"), Addrs: []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/1.2.3.4/tcp/1")}}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"unknown network", func(c *Config) { c.Network = "devnet" }, `unknown network "devnet"`},
		{"no network", func(c *Config) { c.Network = "" }, "unknown network"},
		{"nil key", func(c *Config) { c.PrivKey = nil }, "no private key"},
		{"bad multiaddr", func(c *Config) { c.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/300.0.0.1/tcp/0"} }, `listen address "/ip4/300.0.0.1/tcp/0"`},
		{"not a multiaddr", func(c *Config) { c.ListenAddrs = []string{"127.0.0.1:9700"} }, "listen address"},
		{"low above high", func(c *Config) { c.LowWater, c.HighWater = 50, 40 }, "low water 50 above high water 40"},
		{"low above default high", func(c *Config) { c.LowWater = DefaultHighWater + 1 }, "above high water"},
		{"negative", func(c *Config) { c.HighWater = -1 }, "negative"},
		{"negative grace", func(c *Config) { c.GracePeriod = -time.Second }, "negative"},
		{"relay without addrs", func(c *Config) { c.StaticRelays = []peer.AddrInfo{{ID: relay.ID}} }, "has no address"},
		{"relay without id", func(c *Config) { c.StaticRelays = []peer.AddrInfo{{Addrs: relay.Addrs}} }, "no peer ID"},
		{"relay twice", func(c *Config) { c.StaticRelays = []peer.AddrInfo{relay, relay} }, "given twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			c.mod(&cfg)
			tr := NewTracker()
			h, err := New(cfg, tr)
			if err == nil {
				h.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if tr.attached.Load() {
				t.Error("tracker still attached after a failed New")
			}
		})
	}
}

func TestTrackerServesOneHost(t *testing.T) {
	n := newNode(t)
	if h, err := New(testConfig(t), n.tr); err == nil {
		h.Close()
		t.Fatal("a second host accepted the same tracker")
	}
	h, err := New(testConfig(t), nil) // no tracker: no gater, no bandwidth
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
}

func TestConnectTCPAndQUIC(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t)
	cfg.PrometheusRegisterer = reg
	a := startNode(t, cfg, NewTracker(WithLogger(testLog)))
	b := newNode(t)

	for _, h := range []host.Host{a.h, b.h} {
		full := FullAddrs(h)
		if len(full) < 2 {
			t.Fatalf("FullAddrs = %v, want TCP and QUIC", full)
		}
		for _, m := range full {
			if id, err := m.ValueForProtocol(multiaddr.P_P2P); err != nil || id != h.ID().String() {
				t.Errorf("%s does not end in /p2p/%s", m, h.ID())
			}
		}
	}

	for _, tc := range []struct {
		code int
		name string
	}{{multiaddr.P_TCP, "tcp"}, {multiaddr.P_QUIC_V1, "quic"}} {
		t.Run(tc.name, func(t *testing.T) {
			if err := connect(b.h, a.h, addrInfo(t, a.h, tc.code)); err != nil {
				t.Fatal(err)
			}
			conns := b.h.Network().ConnsToPeer(a.h.ID())
			if len(conns) != 1 || transportName(conns[0].RemoteMultiaddr()) != tc.name {
				t.Fatalf("conns %v, want one over %s", conns, tc.name)
			}
			var ia, ib PeerInfo
			waitFor(t, "both trackers see the peer", func() bool {
				var oka, okb bool
				ia, oka = a.tr.Peer(b.h.ID())
				ib, okb = b.tr.Peer(a.h.ID())
				return oka && okb
			})
			if ia.Direction != network.DirInbound || ib.Direction != network.DirOutbound {
				t.Errorf("directions a:%s b:%s, want inbound/outbound", ia.Direction, ib.Direction)
			}
			if ia.Transport != tc.name || ib.Transport != tc.name || ia.Relayed || ib.Relayed {
				t.Errorf("transport a:%s b:%s relayed %v %v", ia.Transport, ib.Transport, ia.Relayed, ib.Relayed)
			}
			if len(ib.Addrs) != 1 || transportCode(ib.Addrs[0]) != tc.code {
				t.Errorf("b sees a at %v", ib.Addrs)
			}
			if ps := a.tr.Peers(); len(ps) != 1 || ps[0].ID != b.h.ID() {
				t.Errorf("Peers() = %v", ps)
			}

			if err := b.tr.Disconnect(a.h.ID()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "disconnect", disconnected(a.h, b.h))
			waitFor(t, "peer state removed", func() bool {
				a.tr.mu.Lock()
				_, okA := a.tr.peers[b.h.ID()]
				a.tr.mu.Unlock()
				_, okB := b.tr.Peer(a.h.ID())
				return !okA && !okB
			})
		})
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var libp2pMetrics int
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "libp2p_") {
			libp2pMetrics++
		}
	}
	if libp2pMetrics == 0 {
		t.Error("no libp2p metrics in the given registerer")
	}
}

func TestRaiseLimits(t *testing.T) {
	base := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&base)
	small := base.Scale(0, 0) // the base limits: a 128 MiB node

	for _, high := range []int{10, DefaultHighWater, 1000} {
		l := rcmgr.NewFixedLimiter(raiseLimits(small, high))
		sys, tr := l.GetSystemLimits(), l.GetTransientLimits()
		orig := rcmgr.NewFixedLimiter(small)
		osys, otr := orig.GetSystemLimits(), orig.GetTransientLimits()
		peers := high + peerSlack
		checks := []struct {
			name      string
			got, want int
		}{
			{"system conns in", sys.GetConnLimit(network.DirInbound), max(osys.GetConnLimit(network.DirInbound), 2*high+peerSlack)},
			{"system conns out", sys.GetConnLimit(network.DirOutbound), max(osys.GetConnLimit(network.DirOutbound), 2*high+peerSlack)},
			{"system conns", sys.GetConnTotalLimit(), max(osys.GetConnTotalLimit(), 2*high+peerSlack)},
			{"system streams in", sys.GetStreamLimit(network.DirInbound), max(osys.GetStreamLimit(network.DirInbound), peers*streamsPerPeer)},
			{"system streams", sys.GetStreamTotalLimit(), max(osys.GetStreamTotalLimit(), peers*streamsPerPeer)},
			{"transient conns in", tr.GetConnLimit(network.DirInbound), max(otr.GetConnLimit(network.DirInbound), high/2+peerSlack)},
			{"transient streams in", tr.GetStreamLimit(network.DirInbound), max(otr.GetStreamLimit(network.DirInbound), peers*transientStreamsPerPeer)},
			{"system fd", sys.GetFDLimit(), osys.GetFDLimit()},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("high %d: %s = %d, want %d", high, c.name, c.got, c.want)
			}
		}
		if got, want := sys.GetMemoryLimit(), max(osys.GetMemoryLimit(), int64(peers*streamsPerPeer*streamMemory)); got != want {
			t.Errorf("high %d: system memory %d, want %d", high, got, want)
		}
		if sys.GetConnTotalLimit() < high || sys.GetStreamTotalLimit() < high*streamsPerPeer {
			t.Errorf("high %d: limits below the connection manager's", high)
		}
	}
	// Default-sized hosts need more than libp2p's base limits.
	l := rcmgr.NewFixedLimiter(raiseLimits(small, DefaultHighWater))
	if l.GetSystemLimits().GetConnLimit(network.DirInbound) <= rcmgr.NewFixedLimiter(small).GetSystemLimits().GetConnLimit(network.DirInbound) {
		t.Error("inbound system conns not raised for DefaultHighWater")
	}
}

const holdProto = "/dagnode-test/hold/1"

// TestManyPeersStreams connects HighWater peers that each keep several
// streams open at once to one host: none may hit a resource limit.
func TestManyPeersStreams(t *testing.T) {
	const peers, streams = 20, 6
	cfg := testConfig(t)
	cfg.LowWater, cfg.HighWater = peers/2, peers
	srv := startNode(t, cfg, NewTracker(WithLogger(testLog)))
	srv.h.SetStreamHandler(holdProto, func(s network.Stream) {
		defer s.Close()
		var b [1]byte
		if _, err := io.ReadFull(s, b[:]); err != nil {
			s.Reset()
			return
		}
		if _, err := s.Write(b[:]); err != nil {
			s.Reset()
			return
		}
		io.Copy(io.Discard, io.LimitReader(s, 1)) // hold until the client closes
	})
	info := addrInfo(t, srv.h, multiaddr.P_TCP)

	var (
		opened  sync.WaitGroup // every stream of every client is open
		release = make(chan struct{})
		done    sync.WaitGroup
		errs    = make(chan error, peers*streams)
	)
	var releaseOnce sync.Once
	stop := func() { releaseOnce.Do(func() { close(release) }) }
	defer stop() // on a failure before the release below
	opened.Add(peers)
	done.Add(peers)
	for i := range peers {
		c, err := libp2p.New(libp2p.NoListenAddrs, libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go func() {
			defer done.Done()
			var ss []network.Stream
			defer func() {
				for _, s := range ss {
					s.Close()
				}
			}()
			openAll := func() error {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				if err := c.Connect(ctx, info); err != nil {
					return err
				}
				for j := range streams {
					s, err := c.NewStream(ctx, srv.h.ID(), holdProto)
					if err != nil {
						return fmt.Errorf("client %d stream %d: %w", i, j, err)
					}
					ss = append(ss, s)
					var b [1]byte
					if _, err := s.Write([]byte{byte(j)}); err != nil {
						return err
					}
					if _, err := io.ReadFull(s, b[:]); err != nil || b[0] != byte(j) {
						return fmt.Errorf("client %d stream %d: echo %v, %v", i, j, b, err)
					}
				}
				return nil
			}
			if err := openAll(); err != nil {
				errs <- err
			}
			opened.Done()
			<-release
		}()
	}
	opened.Wait()
	var inbound int
	srv.h.Network().ResourceManager().ViewSystem(func(s network.ResourceScope) error {
		inbound = s.Stat().NumStreamsInbound
		return nil
	})
	stop()
	done.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if inbound < peers*streams {
		t.Errorf("server had %d inbound streams open at once, want >= %d", inbound, peers*streams)
	}
	if n := len(srv.h.Network().Peers()); n != peers {
		t.Errorf("server has %d peers, want %d", n, peers)
	}
}
