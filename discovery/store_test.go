package discovery

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

func testPeerID(t *testing.T) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// The stored value's encoding is pinned: a future version must still read it.
func TestStoredPeerEncoding(t *testing.T) {
	sp := storedPeer{
		addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001"), ma.StringCast("/ip6/::1/udp/4001/quic-v1")},
		seen:  time.UnixMilli(1700000000123),
	}
	got, err := encodeStoredPeer(sp)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"seen":1700000000123,"addrs":["/ip4/127.0.0.1/tcp/4001","/ip6/::1/udp/4001/quic-v1"]}`
	if string(got) != want {
		t.Fatalf("encoding = %s, want %s", got, want)
	}
	back, err := decodeStoredPeer(got)
	if err != nil {
		t.Fatal(err)
	}
	if !back.seen.Equal(sp.seen) || len(back.addrs) != 2 || !back.addrs[1].Equal(sp.addrs[1]) {
		t.Fatalf("round trip = %+v, want %+v", back, sp)
	}
	p := testPeerID(t)
	if k := peerKey(p).String(); k != "/discovery/peers/"+p.String() {
		t.Fatalf("key = %s", k)
	}
}

func TestDecodeStoredPeerRejects(t *testing.T) {
	for name, v := range map[string]string{
		"not json":       `garbage`,
		"no time":        `{"addrs":["/ip4/1.2.3.4/tcp/1"]}`,
		"negative time":  `{"seen":-5,"addrs":["/ip4/1.2.3.4/tcp/1"]}`,
		"no address":     `{"seen":1,"addrs":[]}`,
		"only bad addrs": `{"seen":1,"addrs":["/nope/1","not a multiaddr"]}`,
		"too large":      `{"seen":1,"addrs":["` + strings.Repeat("x", maxStoredValueSize) + `"]}`,
	} {
		if _, err := decodeStoredPeer([]byte(v)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	// Bad addresses next to good ones are dropped; the entry is kept.
	sp, err := decodeStoredPeer([]byte(`{"seen":1,"addrs":["bad","/ip4/1.2.3.4/tcp/1"],"future":true}`))
	if err != nil || len(sp.addrs) != 1 {
		t.Fatalf("decode with one bad address = %+v, %v", sp, err)
	}
}

func FuzzDecodeStoredPeer(f *testing.F) {
	f.Add([]byte(`{"seen":1700000000123,"addrs":["/ip4/127.0.0.1/tcp/4001"]}`))
	f.Add([]byte(`{"seen":1,"addrs":["bad"]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sp, err := decodeStoredPeer(b)
		if err != nil {
			return
		}
		if len(sp.addrs) == 0 || len(sp.addrs) > MaxAddrsPerPeer || sp.seen.UnixMilli() <= 0 {
			t.Fatalf("accepted an invalid entry: %+v", sp)
		}
		again, err := encodeStoredPeer(sp)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeStoredPeer(again); err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
	})
}

// Corrupt entries are skipped at load, never fatal; good ones are loaded.
func TestLoadSkipsCorruptEntries(t *testing.T) {
	h := newHost(t)
	store := memStore()
	ctx := context.Background()
	good := testPeerID(t)
	val, _ := encodeStoredPeer(storedPeer{addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}, seen: time.Now()})
	puts := map[string][]byte{
		peerKey(good).String():                   val,
		peerKey(testPeerID(t)).String():          []byte("{corrupt"),
		StorePrefix + "/not-a-peer-id":           val,
		StorePrefix + "/" + good.String() + "/x": val,
	}
	for k, v := range puts {
		if err := store.Put(ctx, datastore.NewKey(k), v); err != nil {
			t.Fatal(err)
		}
	}
	s := startService(t, Config{Host: h, Store: store})
	known := s.KnownPeers()
	if len(known) != 1 || known[0].ID != good {
		t.Fatalf("known = %v, want only %s", known, good)
	}
}

// remember keeps at most MaxStoredPeers entries, evicting the peer seen
// longest ago, in memory and in the store.
func TestRememberEvictsOldest(t *testing.T) {
	h := newHost(t)
	store := memStore()
	s, err := New(Config{Host: h, Network: "simnet", Store: store}, WithMaxStoredPeers(2))
	if err != nil {
		t.Fatal(err)
	}
	ids := []peer.ID{testPeerID(t), testPeerID(t), testPeerID(t)}
	for i, p := range ids {
		h.Peerstore().AddAddr(p, ma.StringCast("/ip4/127.0.0.1/tcp/"+string(rune('1'+i))), peerstore.PermanentAddrTTL)
		s.remember(p)
	}
	known := s.KnownPeers()
	if len(known) != 2 || known[0].ID != ids[2] || known[1].ID != ids[1] {
		t.Fatalf("known = %v, want %s then %s", known, ids[2], ids[1])
	}
	ctx := context.Background()
	if _, err := store.Get(ctx, peerKey(ids[0])); err == nil {
		t.Fatalf("evicted peer still in the store")
	}
	for _, p := range ids[1:] {
		if _, err := store.Get(ctx, peerKey(p)); err != nil {
			t.Fatalf("kept peer %s: %v", p, err)
		}
	}
	// Seeing a stored peer again refreshes it instead of evicting another.
	s.remember(ids[1])
	if known := s.KnownPeers(); len(known) != 2 || known[0].ID != ids[1] {
		t.Fatalf("after refresh known = %v, want %s first", known, ids[1])
	}
}

func TestNewValidates(t *testing.T) {
	h := newHost(t)
	other := newHost(t)
	ok := Config{Host: h, Network: "simnet", Store: memStore()}
	cases := map[string]struct {
		mod  func(*Config)
		opts []Option
	}{
		"no host":             {mod: func(c *Config) { c.Host = nil }},
		"no store":            {mod: func(c *Config) { c.Store = nil }},
		"no network":          {mod: func(c *Config) { c.Network = "" }},
		"bad network":         {mod: func(c *Config) { c.Network = "Sim/net" }},
		"negative target":     {mod: func(c *Config) { c.TargetPeers = -1 }},
		"connect and addpeer": {mod: func(c *Config) { c.Connect, c.Persistent = []peer.AddrInfo{info(other)}, []peer.AddrInfo{info(other)} }},
		"peer without addr":   {mod: func(c *Config) { c.Bootstrap = []peer.AddrInfo{{ID: other.ID()}} }},
		"self as peer":        {mod: func(c *Config) { c.Persistent = []peer.AddrInfo{info(h)} }},
		"zero interval":       {opts: []Option{WithDiscoveryInterval(0)}},
		"inverted backoff":    {opts: []Option{WithBackoff(time.Second, time.Millisecond)}},
		"bad dht mode":        {opts: []Option{WithDHTMode(DHTMode(9))}},
		"zero dials":          {opts: []Option{WithMaxConcurrentDials(0)}},
		"zero dial timeout":   {opts: []Option{WithDialTimeout(0)}},
		"zero routing":        {opts: []Option{WithRoutingTimeout(0)}},
		"zero stored":         {opts: []Option{WithMaxStoredPeers(0)}},
	}
	for name, c := range cases {
		cfg := ok
		if c.mod != nil {
			c.mod(&cfg)
		}
		if _, err := New(cfg, c.opts...); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	s, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	if s.target != DefaultTargetPeers || s.opts.interval != DefaultDiscoveryInterval {
		t.Fatalf("defaults not applied: target %d interval %v", s.target, s.opts.interval)
	}
}

func TestLifecycle(t *testing.T) {
	h := newHost(t)
	s, err := New(Config{Host: h, Network: "simnet", Store: memStore(), DHT: true, Logger: testLogger(t)},
		fastOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start = %v, want ErrStarted", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := s.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}
	// Close before Start is fine too.
	s2, err := New(Config{Host: h, Network: "simnet", Store: memStore()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReadvertiseDelay(t *testing.T) {
	for _, c := range []struct{ ttl, floor, want time.Duration }{
		{3 * time.Hour, time.Minute, 3*time.Hour - 3*time.Hour/8},
		{0, time.Minute, time.Minute},
		{time.Second, time.Minute, time.Minute},
		{48 * time.Hour, time.Minute, maxReadvertise},
	} {
		if got := readvertiseDelay(c.ttl, c.floor); got != c.want {
			t.Errorf("readvertiseDelay(%v, %v) = %v, want %v", c.ttl, c.floor, got, c.want)
		}
	}
}
