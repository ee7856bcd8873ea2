package discovery

import (
	"context"
	"math/rand"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/backoff"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// Why a peer is dialed, for logs and for the swarm's own backoff.
const (
	kindPersistent = "persistent" // Connect or Persistent peer
	kindBootstrap  = "bootstrap"
	kindStored     = "stored"
	kindRendezvous = "rendezvous"
	kindMDNS       = "mdns"
)

// dialLoop is the "keep N peers" loop over the peers the service knows by
// address: Connect/Persistent peers whenever lost, and bootstrap and stored
// peers while fewer than TargetPeers are connected. It wakes on a timer (the
// earliest redial of a configured peer, at most the discovery interval) and
// when the event loop reports a lost peer.
func (s *Service) dialLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-timer.C:
		case <-s.kick:
		}
		timer.Reset(s.dialRound())
	}
}

// dialRound starts the dials due now and returns how long to sleep. Only
// called from the dial loop.
func (s *Service) dialRound() time.Duration {
	s.dialRounds.Add(1)
	s.dmu.Lock()
	s.pruneRetries(time.Now())
	s.dmu.Unlock()
	next := s.opts.interval
	consider := func(ai peer.AddrInfo, kind string) {
		if _, wait := s.tryDial(ai, kind); wait > 0 && wait < next {
			next = wait
		}
	}
	for _, ai := range s.mustPeers() {
		consider(ai, kindPersistent)
	}
	if s.connectOnly || s.connected() >= s.target {
		return next
	}
	for _, ai := range s.bootstrap {
		consider(ai, kindBootstrap)
	}
	// Stored peers, most recently seen first, at most TargetPeers new dials
	// per round: the rest wait for the next round.
	dialed := 0
	for _, ai := range s.KnownPeers() {
		if dialed >= s.target || s.connected()+s.inflightCount() >= s.target {
			break
		}
		if s.isMust(ai.ID) {
			continue
		}
		if started, _ := s.tryDial(ai, kindStored); started {
			dialed++
		}
	}
	return next
}

// tryDial starts a dial of ai unless it is this node, connected, already
// being dialed or backing off. It reports whether a dial started and how long
// until the peer may be dialed again. It blocks while MaxConcurrentDials
// dials are in flight, or until shutdown.
func (s *Service) tryDial(ai peer.AddrInfo, kind string) (started bool, wait time.Duration) {
	h := s.cfg.Host
	if ai.ID == "" || ai.ID == h.ID() || h.Network().Connectedness(ai.ID) == network.Connected {
		return false, 0
	}
	now := time.Now()
	s.dmu.Lock()
	if _, ok := s.inflight[ai.ID]; ok {
		s.dmu.Unlock()
		return false, 0
	}
	r := s.retries[ai.ID]
	if r != nil && now.Before(r.next) {
		wait := r.next.Sub(now)
		s.dmu.Unlock()
		return false, wait
	}
	if r == nil {
		if len(s.retries) >= maxBackoffEntries {
			s.pruneRetries(now)
		}
		if len(s.retries) >= maxBackoffEntries {
			s.dmu.Unlock()
			return false, s.opts.interval
		}
		r = &retryState{strat: s.backoffs()}
		s.retries[ai.ID] = r
	}
	delay := r.strat.Delay()
	r.next = now.Add(delay)
	s.inflight[ai.ID] = struct{}{}
	s.dmu.Unlock()

	select {
	case s.dialSem <- struct{}{}:
	case <-s.ctx.Done():
		s.dmu.Lock()
		delete(s.inflight, ai.ID)
		s.dmu.Unlock()
		return false, 0
	}
	s.dialAttempts.Add(1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			<-s.dialSem
			s.dmu.Lock()
			delete(s.inflight, ai.ID)
			s.dmu.Unlock()
		}()
		s.dial(ai, kind)
	}()
	return true, delay
}

// dial connects to ai within the dial timeout.
func (s *Service) dial(ai peer.AddrInfo, kind string) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.dialTimeout)
	defer cancel()
	configured := kind == kindPersistent || kind == kindBootstrap
	if configured {
		// Our backoff decides when an operator's peer is redialed; the
		// swarm's own (5 s and up, per address) would delay the first dial
		// after the peer comes back.
		if sw, ok := s.cfg.Host.Network().(interface{ Backoff() *swarm.DialBackoff }); ok {
			sw.Backoff().Clear(ai.ID)
		}
	}
	err := s.cfg.Host.Connect(ctx, ai)
	if err == nil {
		s.log.Debug("connected to peer", "peer", ai.ID, "kind", kind)
		return
	}
	if s.ctx.Err() != nil {
		return
	}
	s.dialFailures.Add(1)
	if configured {
		s.log.Info("cannot connect to configured peer; will retry", "peer", ai.ID, "kind", kind, "err", err)
	} else {
		s.log.Debug("cannot connect to peer", "peer", ai.ID, "kind", kind, "err", err)
	}
}

// markConnected notes when p connected. Called from the event loop.
func (s *Service) markConnected(p peer.ID) {
	s.dmu.Lock()
	if r := s.retries[p]; r != nil {
		r.since = time.Now()
	}
	s.dmu.Unlock()
}

// markDisconnected resets p's backoff if its connection outlived the longest
// backoff, so a stable peer is redialed at once while a flapping one keeps
// backing off. Called from the event loop.
//
// The entry of a peer that is not configured (bootstrap, persistent) is
// deleted instead when its backoff would be reset, since it then holds
// nothing worth keeping; entries of flapping peers go once their backoff
// has run out for longer than the longest backoff (pruneRetries, every dial
// round), so the table follows the peers that come and go.
func (s *Service) markDisconnected(p peer.ID) {
	configured := s.isMust(p) || s.isBootstrap(p)
	s.dmu.Lock()
	if r := s.retries[p]; r != nil && !r.since.IsZero() {
		if time.Since(r.since) >= s.opts.backoffMax {
			if !configured {
				delete(s.retries, p)
				s.dmu.Unlock()
				return
			}
			r.strat.Reset()
			r.next = time.Time{}
		}
		r.since = time.Time{}
	}
	s.dmu.Unlock()
}

// isBootstrap reports whether p is a bootstrap peer.
func (s *Service) isBootstrap(p peer.ID) bool {
	return slices.ContainsFunc(s.bootstrap, func(ai peer.AddrInfo) bool { return ai.ID == p })
}

// pruneRetries drops backoff entries of peers that are not connected and
// whose backoff ran out more than the longest backoff ago. Called with dmu
// held.
func (s *Service) pruneRetries(now time.Time) {
	for p, r := range s.retries {
		if r.since.IsZero() && !s.isMust(p) && !s.isBootstrap(p) && now.Sub(r.next) > s.opts.backoffMax {
			delete(s.retries, p)
		}
	}
}

// retryEntries returns the size of the per-peer backoff table.
func (s *Service) retryEntries() int {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	return len(s.retries)
}

func (s *Service) inflightCount() int {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	return len(s.inflight)
}

// newRoundBackoff returns the backoff of rounds that found nothing: from the
// backoff minimum up to the discovery interval.
func (s *Service) newRoundBackoff() backoff.BackoffStrategy {
	lo := min(s.opts.backoffMin, s.opts.interval)
	return backoff.NewExponentialBackoff(lo, s.opts.interval, backoff.FullJitter, lo, 2, 0,
		rand.NewSource(time.Now().UnixNano()))()
}
