package host

import (
	"maps"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
)

// maxHolePunchPeers bounds the per-peer hole punch records: they outlive
// connections (a relayed connection often ends before anyone looks), so the
// oldest are dropped past this many.
const maxHolePunchPeers = 512

// HolePunchInfo is what DCUtR (hole punching) did with one peer. libp2p
// starts it when a peer reaches us over a relay: first a direct dial to the
// peer's public addresses, then, if that fails, synchronised hole punches
// (up to three rounds).
type HolePunchInfo struct {
	// DirectDials counts upgrades that succeeded by a plain direct dial,
	// before any hole punch.
	DirectDials int
	// Started, Succeeded and Failed count hole punches (each of up to three
	// rounds of simultaneous dials) by outcome.
	Started, Succeeded, Failed int
	// Rounds counts simultaneous-dial rounds over all hole punches.
	Rounds int
	// LastAt is when the last hole punch or direct dial ended.
	LastAt time.Time
	// LastElapsed is how long it took.
	LastElapsed time.Duration
	// LastError is why the last hole punch failed; empty after a success.
	LastError string
}

// HolePunchStats are the node's hole punch totals since start.
type HolePunchStats struct {
	DirectDials, Started, Succeeded, Failed, ProtocolErrors uint64
}

// Trace records one hole punch event. The Tracker is given to libp2p as its
// hole punch event tracer by New; Trace is safe for concurrent use and never
// blocks on the host.
func (t *Tracker) Trace(evt *holepunch.Event) {
	if evt == nil {
		return
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	hp := t.holePunches[evt.Remote]
	if hp == nil {
		if len(t.holePunches) >= maxHolePunchPeers {
			t.evictHolePunchLocked()
		}
		hp = &HolePunchInfo{}
		t.holePunches[evt.Remote] = hp
	}
	switch e := evt.Evt.(type) {
	case *holepunch.DirectDialEvt:
		if e.Success {
			hp.DirectDials++
			t.hpStats.DirectDials++
			hp.LastAt, hp.LastElapsed, hp.LastError = now, e.EllapsedTime, ""
		}
		t.log.Debug("hole punch direct dial", "peer", evt.Remote, "success", e.Success, "elapsed", e.EllapsedTime, "err", e.Error)
	case *holepunch.StartHolePunchEvt:
		hp.Started++
		t.hpStats.Started++
		t.log.Debug("hole punch started", "peer", evt.Remote, "remote_addrs", e.RemoteAddrs, "rtt", e.RTT)
	case *holepunch.HolePunchAttemptEvt:
		hp.Rounds++
	case *holepunch.EndHolePunchEvt:
		hp.LastAt, hp.LastElapsed, hp.LastError = now, e.EllapsedTime, e.Error
		if e.Success {
			hp.Succeeded++
			t.hpStats.Succeeded++
		} else {
			hp.Failed++
			t.hpStats.Failed++
		}
		t.log.Debug("hole punch ended", "peer", evt.Remote, "success", e.Success, "elapsed", e.EllapsedTime, "err", e.Error)
	case *holepunch.ProtocolErrorEvt:
		t.hpStats.ProtocolErrors++
		t.log.Debug("hole punch protocol error", "peer", evt.Remote, "err", e.Error)
	}
}

// evictHolePunchLocked drops the oldest record. Called with t.mu held.
func (t *Tracker) evictHolePunchLocked() {
	ps := slices.Collect(maps.Keys(t.holePunches))
	oldest := slices.MinFunc(ps, func(a, b peer.ID) int {
		return t.holePunches[a].LastAt.Compare(t.holePunches[b].LastAt)
	})
	delete(t.holePunches, oldest)
}

// HolePunch returns what hole punching did with p, if anything.
func (t *Tracker) HolePunch(p peer.ID) (HolePunchInfo, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	hp, ok := t.holePunches[p]
	if !ok {
		return HolePunchInfo{}, false
	}
	return *hp, true
}

// HolePunchStats returns the node's hole punch totals.
func (t *Tracker) HolePunchStats() HolePunchStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hpStats
}
