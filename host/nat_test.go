package host

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/multiformats/go-multiaddr"
)

func testPeer(t *testing.T, i int) peer.ID {
	t.Helper()
	return peer.ID(fmt.Sprintf("peer-%04d", i))
}

// TestObservedAddrsMostObserversFirst: the address most peers report comes
// first, old observations expire, and the table stays bounded.
func TestObservedAddrsMostObserversFirst(t *testing.T) {
	m := NewNATMonitor(nil, nil)
	now := time.Now()
	mapped := multiaddr.StringCast("/ip4/11.0.1.1/tcp/4001")
	random := multiaddr.StringCast("/ip4/11.0.1.1/tcp/5555")
	stale := multiaddr.StringCast("/ip4/11.0.9.9/tcp/4001")
	m.observe(testPeer(t, 1), random, now)
	m.observe(testPeer(t, 2), mapped, now)
	m.observe(testPeer(t, 3), mapped, now)
	m.observe(testPeer(t, 4), stale, now.Add(-2*observationTTL))
	m.mu.Lock()
	got := m.observedLocked(now)
	m.mu.Unlock()
	if len(got) != 2 || !got[0].Equal(mapped) || !got[1].Equal(random) {
		t.Fatalf("observed %v, want [%s %s]", got, mapped, random)
	}
	for i := 10; i < 10+2*maxObservations; i++ {
		m.observe(testPeer(t, i), mapped, now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(m.observed); n != maxObservations {
		t.Fatalf("%d observations kept, want the bound %d", n, maxObservations)
	}
	if _, ok := m.observed[testPeer(t, 10)]; ok {
		t.Fatal("the oldest observation was not the one evicted")
	}
}

// TestHolePunchTrace: hole punch events become per-peer records and totals.
func TestHolePunchTrace(t *testing.T) {
	tr := NewTracker()
	a, b := testPeer(t, 1), testPeer(t, 2)
	tr.Trace(&holepunch.Event{Remote: a, Evt: &holepunch.StartHolePunchEvt{}})
	tr.Trace(&holepunch.Event{Remote: a, Evt: &holepunch.HolePunchAttemptEvt{Attempt: 1}})
	tr.Trace(&holepunch.Event{Remote: a, Evt: &holepunch.EndHolePunchEvt{Success: true, EllapsedTime: 80 * time.Millisecond}})
	tr.Trace(&holepunch.Event{Remote: b, Evt: &holepunch.StartHolePunchEvt{}})
	tr.Trace(&holepunch.Event{Remote: b, Evt: &holepunch.EndHolePunchEvt{Error: "all dials failed"}})
	tr.Trace(&holepunch.Event{Remote: b, Evt: &holepunch.DirectDialEvt{Success: true}})
	tr.Trace(nil)

	ha, ok := tr.HolePunch(a)
	if !ok || ha.Started != 1 || ha.Succeeded != 1 || ha.Rounds != 1 || ha.LastElapsed != 80*time.Millisecond || ha.LastError != "" {
		t.Fatalf("a's record: %+v", ha)
	}
	hb, _ := tr.HolePunch(b)
	if hb.Failed != 1 || hb.DirectDials != 1 || hb.LastError != "" {
		t.Fatalf("b's record (a direct dial after a failure clears the error): %+v", hb)
	}
	if st := tr.HolePunchStats(); st != (HolePunchStats{DirectDials: 1, Started: 2, Succeeded: 1, Failed: 1}) {
		t.Fatalf("totals %+v", st)
	}
	for i := 0; i < maxHolePunchPeers+10; i++ {
		tr.Trace(&holepunch.Event{Remote: testPeer(t, 100+i), Evt: &holepunch.StartHolePunchEvt{}})
	}
	tr.mu.Lock()
	n := len(tr.holePunches)
	tr.mu.Unlock()
	if n > maxHolePunchPeers {
		t.Fatalf("%d hole punch records, bound %d", n, maxHolePunchPeers)
	}
}
