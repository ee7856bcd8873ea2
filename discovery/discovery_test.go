package discovery

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/dagnode/dagnode/dag"
)

// Test timings: short intervals so every scenario ends in seconds.
const (
	testInterval   = 200 * time.Millisecond
	testBackoffMin = 50 * time.Millisecond
	testBackoffMax = 500 * time.Millisecond
	testDeadline   = 45 * time.Second
)

func fastOptions() []Option {
	return []Option{
		WithDiscoveryInterval(testInterval),
		WithBackoff(testBackoffMin, testBackoffMax),
		WithDialTimeout(3 * time.Second),
		WithRoutingTimeout(5 * time.Second),
	}
}

func newHost(t *testing.T, opts ...libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")}, opts...)...)
	if err != nil {
		t.Fatalf("libp2p.New: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func newKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func memStore() datastore.Batching { return dssync.MutexWrap(datastore.NewMapDatastore()) }

func info(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startService builds and starts a service and closes it at cleanup (before
// its host, registered earlier).
func startService(t *testing.T, cfg Config, opts ...Option) *Service {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = memStore()
	}
	if cfg.Network == "" {
		cfg.Network = "simnet"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t).With("node", cfg.Host.ID().ShortString())
	}
	s, err := New(cfg, append(fastOptions(), opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isConnected(a, b host.Host) bool {
	return a.Network().Connectedness(b.ID()) == network.Connected
}

// outboundConn returns a's outbound connection to b, or nil.
func outboundConn(a, b host.Host) network.Conn {
	for _, c := range a.Network().ConnsToPeer(b.ID()) {
		if c.Stat().Direction == network.DirOutbound {
			return c
		}
	}
	return nil
}

func kadProtocol(network string) protocol.ID {
	return protocol.ID("/dagnode/" + network + "/kad/1.0.0")
}

// Test 1: C knows only A; B also bootstraps from A; C finds B through the
// DHT rendezvous and connects. B runs its DHT as a client and advertises
// before C starts, so no DHT lookup ever returns B as a routing peer: only
// the rendezvous record can lead C to B.
func TestRendezvousFindsPeerThroughDHT(t *testing.T) {
	ha, hb, hc := newHost(t), newHost(t), newHost(t)
	startService(t, Config{Host: ha, DHT: true})
	sb := startService(t, Config{Host: hb, DHT: true, Bootstrap: []peer.AddrInfo{info(ha)}}, WithDHTMode(DHTModeClient))
	if !slices.Contains(ha.Mux().Protocols(), kadProtocol("simnet")) {
		t.Fatalf("A does not serve %s: %v", kadProtocol("simnet"), ha.Mux().Protocols())
	}
	eventually(t, testDeadline, "B advertised", func() bool { return !sb.Stats().LastAdvertise.IsZero() })

	sc := startService(t, Config{Host: hc, DHT: true, Bootstrap: []peer.AddrInfo{info(ha)}})
	// Usually C dials B from the rendezvous record; under load B's own DHT
	// refresh may meet C first (B then dials C). Either way C is connected to
	// B, and below the rendezvous record that leads C to B is checked.
	eventually(t, testDeadline, "C connected to B", func() bool { return isConnected(hc, hb) })
	eventually(t, testDeadline, "a rendezvous round on C", func() bool { return sc.Stats().Rounds > 0 })
	// The rendezvous namespace, looked up from C, lists B.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch, err := sc.disc.FindPeers(ctx, "dagnode/simnet")
	if err != nil {
		t.Fatal(err)
	}
	var found []peer.ID
	for ai := range ch {
		found = append(found, ai.ID)
	}
	if !slices.Contains(found, hb.ID()) {
		t.Fatalf("rendezvous lookup from C = %v, want B %s among them", found, hb.ID())
	}
}

// Test 4: X connects to Y via bootstrap, closes everything, restarts with no
// bootstrap but the same on-disk store and identity, and redials Y from the
// persisted addresses.
func TestRestartReconnectsFromStore(t *testing.T) {
	hy := newHost(t)
	// Y speaks a protocol of our network, so X persists it.
	hy.SetStreamHandler("/dagnode/simnet/test/1", func(s network.Stream) { _ = s.Reset() })
	keyX := newKey(t)
	dir := t.TempDir()

	// First life.
	store, err := dag.OpenPebbleStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	hx, err := libp2p.New(libp2p.Identity(keyX), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	sx, err := New(Config{Host: hx, Network: "simnet", Store: store, Bootstrap: []peer.AddrInfo{info(hy)},
		Logger: testLogger(t)}, fastOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := sx.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, testDeadline, "X stores Y", func() bool {
		return slices.ContainsFunc(sx.KnownPeers(), func(ai peer.AddrInfo) bool { return ai.ID == hy.ID() })
	})
	if err := sx.Close(); err != nil {
		t.Fatal(err)
	}
	if err := hx.Close(); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, testDeadline, "Y sees X gone", func() bool { return hy.Network().Connectedness(hx.ID()) != network.Connected })

	// Second life: no bootstrap, same store and identity.
	store, err = dag.OpenPebbleStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	hx2 := newHost(t, libp2p.Identity(keyX))
	t.Cleanup(func() { _ = store.Close() }) // after the service, before nothing else
	sx2 := startService(t, Config{Host: hx2, Store: store})
	known := sx2.KnownPeers()
	if len(known) != 1 || known[0].ID != hy.ID() || len(known[0].Addrs) == 0 {
		t.Fatalf("loaded known peers = %v, want Y %s with addresses", known, hy.ID())
	}
	eventually(t, testDeadline, "restarted X dials Y", func() bool { return outboundConn(hx2, hy) != nil })
}

// Test 5: a persistent peer is redialed after it drops the connection, and it
// is protected.
func TestPersistentPeerRedialed(t *testing.T) {
	hx, hy := newHost(t), newHost(t)
	var mu sync.Mutex
	protected := map[peer.ID]string{}
	startService(t, Config{Host: hx, Persistent: []peer.AddrInfo{info(hy)}, Protect: func(p peer.ID, tag string) {
		mu.Lock()
		protected[p] = tag
		mu.Unlock()
	}})
	mu.Lock()
	tag := protected[hy.ID()]
	mu.Unlock()
	if tag != ProtectTag {
		t.Fatalf("Protect(Y) tag = %q, want %q", tag, ProtectTag)
	}

	var first network.Conn
	eventually(t, testDeadline, "X dials Y", func() bool { first = outboundConn(hx, hy); return first != nil })
	// Y may finish its side of the handshake after X: close only once Y
	// holds the connection too.
	eventually(t, testDeadline, "Y sees X", func() bool { return isConnected(hy, hx) })
	if err := hy.Network().ClosePeer(hx.ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, testDeadline, "X redials Y", func() bool {
		c := outboundConn(hx, hy)
		return c != nil && c.ID() != first.ID()
	})
}

// Test 6: with Connect set, only those peers are dialed; no DHT, no mDNS, no
// bootstrap or stored peers.
func TestConnectOnly(t *testing.T) {
	hx, hy, hz, hw := newHost(t), newHost(t), newHost(t), newHost(t)
	store := memStore()
	// A stored peer W that must not be dialed.
	val, err := encodeStoredPeer(storedPeer{addrs: hw.Addrs(), seen: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(context.Background(), peerKey(hw.ID()), val); err != nil {
		t.Fatal(err)
	}
	sx := startService(t, Config{Host: hx, Store: store, DHT: true, MDNS: true,
		Connect: []peer.AddrInfo{info(hy)}, Bootstrap: []peer.AddrInfo{info(hz)}})

	eventually(t, testDeadline, "X connected to Y", func() bool { return isConnected(hx, hy) })
	rounds := sx.dialRounds.Load()
	eventually(t, testDeadline, "five more dial rounds", func() bool { return sx.dialRounds.Load() >= rounds+5 })

	if sx.kad != nil || sx.mdns != nil {
		t.Fatalf("connect-only service runs DHT (%v) or mDNS (%v)", sx.kad != nil, sx.mdns != nil)
	}
	if slices.Contains(hx.Mux().Protocols(), kadProtocol("simnet")) {
		t.Fatalf("connect-only host serves the DHT protocol")
	}
	for _, h := range []host.Host{hz, hw} {
		if hx.Network().Connectedness(h.ID()) != network.NotConnected {
			t.Fatalf("connect-only X connected to %s (bootstrap or stored peer)", h.ID())
		}
	}
	if got := len(hx.Network().Peers()); got != 1 {
		t.Fatalf("X has %d peers, want 1", got)
	}
	if st := sx.Stats(); st.Rounds != 0 || st.MDNSFound != 0 || st.KnownPeers != 1 {
		t.Fatalf("stats = %+v: want no rendezvous round, no mDNS peer, the stored peer kept", st)
	}
}

// Test 7: the bootstrap peer comes up after X; X connects once it is up, its
// retries bounded by the backoff.
func TestBootstrapRetriedUntilUp(t *testing.T) {
	keyY := newKey(t)
	hy1, err := libp2p.New(libp2p.Identity(keyY), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	yInfo := info(hy1) // an OS-chosen port, free again once hy1 is closed
	if err := hy1.Close(); err != nil {
		t.Fatal(err)
	}

	const bmin, bmax = 100 * time.Millisecond, 400 * time.Millisecond
	hx := newHost(t)
	start := time.Now()
	sx := startService(t, Config{Host: hx, Bootstrap: []peer.AddrInfo{yInfo}}, WithBackoff(bmin, bmax))
	eventually(t, testDeadline, "three failed dials", func() bool { return sx.Stats().DialFailures >= 3 })
	elapsed := time.Since(start)
	if n, limit := sx.Stats().DialAttempts, uint64(elapsed/bmin)+2; n > limit {
		t.Fatalf("%d dial attempts in %v: backoff of at least %v allows at most %d", n, elapsed, bmin, limit)
	}

	hy := newHost(t, libp2p.Identity(keyY), libp2p.ListenAddrs(yInfo.Addrs...))
	eventually(t, testDeadline, "X connected to the late bootstrap peer", func() bool { return outboundConn(hx, hy) != nil })
}

// A node of another network shares no DHT: its routing table stays empty
// even when connected to a node of the first network, it does not find that
// network's advertised peers, and it does not store them.
func TestDHTOtherNetworkDoesNotAnswer(t *testing.T) {
	hs, hs2, hx := newHost(t), newHost(t), newHost(t)
	startService(t, Config{Host: hs, DHT: true})
	ss2 := startService(t, Config{Host: hs2, DHT: true, Bootstrap: []peer.AddrInfo{info(hs)}})
	sx := startService(t, Config{Host: hx, Network: "regtest", DHT: true, Bootstrap: []peer.AddrInfo{info(hs)}})

	eventually(t, testDeadline, "simnet S2 advertised", func() bool { return !ss2.Stats().LastAdvertise.IsZero() })
	eventually(t, testDeadline, "regtest X connected to its bootstrap S", func() bool { return isConnected(hx, hs) })
	rounds := sx.Stats().EmptyTableRounds
	eventually(t, testDeadline, "three more rendezvous rounds on X, skipped for an empty table", func() bool {
		return sx.Stats().EmptyTableRounds >= rounds+3
	})

	if n := sx.kad.RoutingTable().Size(); n != 0 {
		t.Fatalf("regtest routing table holds %d simnet peers", n)
	}
	if isConnected(hx, hs2) {
		t.Fatalf("regtest X connected to simnet S2")
	}
	if k := sx.KnownPeers(); len(k) != 0 {
		t.Fatalf("regtest X stored simnet peers: %v", k)
	}
	if protos, _ := hx.Peerstore().SupportsProtocols(hs.ID(), kadProtocol("regtest")); len(protos) != 0 {
		t.Fatalf("simnet S claims %v", protos)
	}
	// Looking up the simnet namespace through the regtest DHT finds nobody.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ch, err := sx.disc.FindPeers(ctx, "dagnode/simnet")
	if err != nil {
		t.Fatal(err)
	}
	for ai := range ch {
		t.Fatalf("regtest DHT answered the simnet namespace with %s", ai.ID)
	}
}
