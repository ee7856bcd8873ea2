package host

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"time"

	"github.com/dagnode/dagnode/dag"
	"github.com/libp2p/go-libp2p/core/peer"
)

// BanThreshold is the misbehaviour score at which a peer is banned.
const BanThreshold = 100

// ScoreHalfLife is how fast a misbehaviour score decays: it halves every
// ScoreHalfLife (continuously, like btcd's dynamic ban score). A steady rate of
// r penalties of weight w per minute settles at about 1.44*w*r, so only a
// sustained stream of offences reaches BanThreshold, while a burst does at once.
const ScoreHalfLife = time.Minute

// Penalty weights. An honest peer can trigger the small ones (races, slow
// links, clock skew); the large ones only a broken or hostile peer.
const (
	// PenaltyMalformedMessage is for bytes our codecs refuse: no honest
	// implementation sends them, but a version skew might, so five strikes.
	PenaltyMalformedMessage = 20
	// PenaltyOversizeMessage is for a frame over a protocol's limit: two strikes.
	PenaltyOversizeMessage = 50
	// PenaltyUnrequestedBlock is for a block we did not ask for: it happens
	// honestly when a request timed out and the answer arrives late.
	PenaltyUnrequestedBlock = 10
	// PenaltyStall is for a peer that stopped answering: slow links are
	// honest, and the sync manager replaces a stalled peer anyway.
	PenaltyStall = 10
	// PenaltyWrongNetwork is for a peer of another network or genesis: it is
	// useless to us, so it is banned at once to stop reconnection loops.
	PenaltyWrongNetwork = BanThreshold
	// PenaltyFutureBlock is for a block rejected with dag.ErrTimeTooNew. That
	// rule depends on our clock, so an honest peer can break it under clock
	// skew: it is the one rule error that does not ban at once.
	PenaltyFutureBlock = 20
	// PenaltyDefault is for errors the tracker does not classify (I/O
	// errors, resets, timeouts): mostly honest, so small.
	PenaltyDefault = 2
)

// Misbehavior is an error that carries its own penalty. Consumers wrap what
// went wrong in one (see the constructors) and pass it to Penalize.
type Misbehavior struct {
	// Penalty is added to the peer's score.
	Penalty int
	// Reason is a short static description for logs.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (m *Misbehavior) Error() string {
	if m == nil {
		return "<nil misbehavior>"
	}
	if m.Err == nil {
		return m.Reason
	}
	return m.Reason + ": " + m.Err.Error()
}

// Unwrap returns the underlying error.
func (m *Misbehavior) Unwrap() error {
	if m == nil {
		return nil
	}
	return m.Err
}

// MalformedMessage returns a Misbehavior weighing PenaltyMalformedMessage.
func MalformedMessage(err error) *Misbehavior {
	return &Misbehavior{Penalty: PenaltyMalformedMessage, Reason: "malformed message", Err: err}
}

// OversizeMessage returns a Misbehavior weighing PenaltyOversizeMessage.
func OversizeMessage(err error) *Misbehavior {
	return &Misbehavior{Penalty: PenaltyOversizeMessage, Reason: "oversize message", Err: err}
}

// UnrequestedBlock returns a Misbehavior weighing PenaltyUnrequestedBlock.
func UnrequestedBlock(err error) *Misbehavior {
	return &Misbehavior{Penalty: PenaltyUnrequestedBlock, Reason: "unrequested block", Err: err}
}

// Stall returns a Misbehavior weighing PenaltyStall.
func Stall(err error) *Misbehavior {
	return &Misbehavior{Penalty: PenaltyStall, Reason: "stalled", Err: err}
}

// WrongNetwork returns a Misbehavior weighing PenaltyWrongNetwork.
func WrongNetwork(err error) *Misbehavior {
	return &Misbehavior{Penalty: PenaltyWrongNetwork, Reason: "wrong network", Err: err}
}

// classify returns the penalty for err and a short reason. The first match
// wins: a *Misbehavior (the consumer chose the weight), a *dag.RuleError (ban,
// except ErrTimeTooNew), then the harmless outcomes, then PenaltyDefault.
func classify(err error) (int, string) {
	var m *Misbehavior
	var pe penalized
	var re *dag.RuleError
	var mp *dag.MissingParentsError
	switch {
	case err == nil:
		return 0, "no error"
	case errors.As(err, &m) && m != nil:
		return max(m.Penalty, 0), m.Reason
	case errors.As(err, &pe) && pe != nil:
		return max(pe.Penalty(), 0), pe.Error()
	case errors.As(err, &re) && re != nil:
		if re.Code == dag.ErrTimeTooNew {
			return PenaltyFutureBlock, "block from the future"
		}
		return BanThreshold, "invalid block"
	case errors.As(err, &mp):
		return 0, "missing parents"
	case errors.Is(err, dag.ErrDuplicateBlock):
		return 0, "duplicate block"
	case errors.Is(err, context.Canceled):
		return 0, "canceled"
	}
	return PenaltyDefault, "unclassified error"
}

// penalized is an error from another package that states its own weight
// (syncproto.ProtocolError does), so consumers need not import this package.
type penalized interface {
	error
	Penalty() int
}

// score is a decaying misbehaviour score.
type score struct {
	value float64
	at    time.Time
}

// decayed returns the score's value at now.
func (s score) decayed(now time.Time) float64 {
	dt := now.Sub(s.at)
	if dt <= 0 {
		return s.value
	}
	return s.value * math.Exp2(-float64(dt)/float64(ScoreHalfLife))
}

// Penalize classifies err (see the Penalty constants and doc.go) and adds the
// penalty to p's score; at BanThreshold the peer is banned for the tracker's
// ban duration and disconnected. A nil err, missing parents, a duplicate block
// and context.Canceled cost nothing. Safe for concurrent use, and before Start.
func (t *Tracker) Penalize(p peer.ID, err error) {
	penalty, reason := classify(err)
	if penalty == 0 {
		if err != nil {
			t.ignored.Add(1)
			t.log.Debug("no penalty", "peer", p, "reason", reason, "err", err)
		}
		return
	}
	t.penalties.Add(1)
	now := t.now()
	t.mu.Lock()
	s := t.scores[p]
	s.value = s.decayed(now) + float64(penalty)
	s.at = now
	ban := s.value >= BanThreshold
	if ban {
		delete(t.scores, p) // the ban is the consequence; the peer starts afresh after it
	} else {
		if _, ok := t.scores[p]; !ok && len(t.scores) >= maxScores {
			t.evictScoreLocked(now)
		}
		t.scores[p] = s
	}
	t.mu.Unlock()
	t.log.Debug("peer penalized", "peer", p, "reason", reason, "penalty", penalty, "score", int(s.value), "err", err)
	if ban {
		t.ban(p, 0, reason, slog.LevelDebug)
	}
}

// evictScoreLocked drops the lowest decayed score to make room for one.
// Called with t.mu held.
func (t *Tracker) evictScoreLocked(now time.Time) {
	var low peer.ID
	lowest := 0.0
	for q, sc := range t.scores {
		if v := sc.decayed(now); low == "" || v < lowest {
			low, lowest = q, v
		}
	}
	delete(t.scores, low)
}

// Score returns p's current (decayed) misbehaviour score.
func (t *Tracker) Score(p peer.ID) int {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return int(t.scores[p].decayed(now))
}

// TrackerStats are the tracker's counters since NewTracker.
type TrackerStats struct {
	// Penalties counts Penalize calls that added to a score.
	Penalties uint64
	// Ignored counts Penalize calls with an error that costs nothing.
	Ignored uint64
	// Bans counts bans imposed, by Penalize or Ban.
	Bans uint64
	// Refused counts connections the gater refused because the peer was banned.
	Refused uint64
	// ActiveBans is the number of bans in force now.
	ActiveBans int
}

// Stats returns the tracker's counters.
func (t *Tracker) Stats() TrackerStats {
	return TrackerStats{
		Penalties:  t.penalties.Load(),
		Ignored:    t.ignored.Load(),
		Bans:       t.banCount.Load(),
		Refused:    t.refused.Load(),
		ActiveBans: len(t.Banned()),
	}
}
