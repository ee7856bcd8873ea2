package discovery

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
)

// TestDHTModeAutoServesUntilPrivate: by default the DHT answers queries
// while reachability is unknown (loopback), stops once the host learns it
// is private, and answers again once public. Forced modes ignore it.
func TestDHTModeAutoServesUntilPrivate(t *testing.T) {
	ha, hc := newHost(t), newHost(t)
	sa := startService(t, Config{Host: ha, DHT: true})
	sc := startService(t, Config{Host: hc, DHT: true}, WithDHTMode(DHTModeClient))
	if !sa.DHTServing() || !sa.Stats().DHTServing {
		t.Fatal("auto mode does not serve while reachability is unknown")
	}
	if sc.DHTServing() {
		t.Fatal("client mode serves")
	}
	em, err := ha.EventBus().Emitter(new(event.EvtLocalReachabilityChanged), eventbus.Stateful)
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	for _, c := range []struct {
		r     network.Reachability
		serve bool
	}{{network.ReachabilityPrivate, false}, {network.ReachabilityPublic, true}, {network.ReachabilityPrivate, false}, {network.ReachabilityUnknown, true}} {
		if err := em.Emit(event.EvtLocalReachabilityChanged{Reachability: c.r}); err != nil {
			t.Fatal(err)
		}
		eventually(t, testDeadline, "DHT serving follows "+c.r.String(), func() bool { return sa.DHTServing() == c.serve })
	}
}

func TestParseDHTMode(t *testing.T) {
	for _, m := range []DHTMode{DHTModeAuto, DHTModeServer, DHTModeClient} {
		if got, err := ParseDHTMode(m.String()); err != nil || got != m {
			t.Fatalf("%s: %v %v", m, got, err)
		}
	}
	if _, err := ParseDHTMode("sometimes"); err == nil {
		t.Fatal("an unknown mode was accepted")
	}
}

// TestFirstRoundOnFirstRoutingPeer: with the default (slow) timers, a node
// advertises and looks the namespace up as soon as its routing table gains
// its first peer, not after the 5 s round backoff. B runs its DHT as a
// client, so only B's rendezvous record can lead C to B.
func TestFirstRoundOnFirstRoutingPeer(t *testing.T) {
	slow := []Option{WithDiscoveryInterval(DefaultDiscoveryInterval), WithBackoff(DefaultBackoffMin, DefaultBackoffMax)}
	ha, hb, hc := newHost(t), newHost(t), newHost(t)
	startService(t, Config{Host: ha, DHT: true}, slow...)
	start := time.Now()
	sb := startService(t, Config{Host: hb, DHT: true, Bootstrap: []peer.AddrInfo{info(ha)}},
		append(slow, WithDHTMode(DHTModeClient))...)
	eventually(t, testDeadline, "B advertised", func() bool { return !sb.Stats().LastAdvertise.IsZero() })
	if d := time.Since(start); d >= DefaultBackoffMin {
		t.Fatalf("B advertised %v after start: it waited for a timer", d)
	}
	start = time.Now()
	sc := startService(t, Config{Host: hc, DHT: true, Bootstrap: []peer.AddrInfo{info(ha)}}, slow...)
	eventually(t, testDeadline, "C connected to B", func() bool { return isConnected(hc, hb) })
	if d := time.Since(start); d >= DefaultBackoffMin {
		t.Fatalf("C reached B %v after start: it waited for a timer", d)
	}
	// The round that led C to B ends after its dial started; it found B.
	eventually(t, testDeadline, "C's rendezvous round that found B", func() bool {
		st := sc.Stats()
		return st.Rounds > 0 && st.LastRound.Found > 0
	})
}

// TestBackoffTableFollowsPeers: a peer that leaves after a stable
// connection leaves nothing behind; a flapping peer keeps its backoff until
// it has run out for the longest backoff; configured peers keep theirs.
func TestBackoffTableFollowsPeers(t *testing.T) {
	h, boot := newHost(t), newHost(t)
	const bmin, bmax = 10 * time.Millisecond, 50 * time.Millisecond
	s, err := New(Config{Host: h, Network: "simnet", Store: memStore(), Bootstrap: []peer.AddrInfo{info(boot)}},
		WithBackoff(bmin, bmax))
	if err != nil {
		t.Fatal(err)
	}
	stable, flapping := newHost(t).ID(), newHost(t).ID()
	now := time.Now()
	for _, p := range []peer.ID{stable, flapping, boot.ID()} {
		s.retries[p] = &retryState{strat: s.backoffs(), next: now, since: now.Add(-2 * bmax)}
	}
	s.retries[flapping].since = now
	for _, p := range []peer.ID{stable, flapping, boot.ID()} {
		s.markDisconnected(p)
	}
	if _, ok := s.retries[stable]; ok {
		t.Fatal("a stable peer that left kept its backoff entry")
	}
	if _, ok := s.retries[flapping]; !ok {
		t.Fatal("a flapping peer lost its backoff")
	}
	if r := s.retries[boot.ID()]; r == nil || !r.next.IsZero() {
		t.Fatal("the bootstrap peer's backoff was not kept and reset")
	}
	s.pruneRetries(now.Add(2 * bmax))
	if _, ok := s.retries[flapping]; ok {
		t.Fatal("the flapping peer's expired backoff was not pruned")
	}
	if _, ok := s.retries[boot.ID()]; !ok {
		t.Fatal("the bootstrap peer's backoff was pruned")
	}
}
