package discovery

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/discovery"
)

// advertiseLoop advertises this node under the rendezvous namespace as soon
// as the routing table has a peer (at start, or when the routing watch says
// it gained its first one), again before the returned TTL runs out (at 7/8
// of it, between the discovery interval and maxReadvertise); failures and
// an empty routing table are retried with backoff.
func (s *Service) advertiseLoop() {
	defer s.wg.Done()
	strat := s.newRoundBackoff()
	timer := time.NewTimer(0)
	defer timer.Stop()
	advertised := false // since the routing table was last empty
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-timer.C:
		case <-s.advKick:
			if advertised {
				continue // the timer already holds the next advertisement
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		if s.kad.RoutingTable().Size() == 0 {
			// Nobody to store the record: wait for the routing watch's kick
			// (or, as a fallback, the backoff).
			advertised = false
			timer.Reset(strat.Delay())
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.routingTimeout)
		ttl, err := s.disc.Advertise(ctx, s.namespace)
		cancel()
		if s.ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err != nil {
			wait = strat.Delay()
			s.log.Debug("cannot advertise", "namespace", s.namespace, "err", err, "retry_in", wait)
		} else {
			strat.Reset()
			advertised = true
			wait = readvertiseDelay(ttl, s.opts.interval)
			s.smu.Lock()
			s.lastAdvertise = time.Now()
			s.smu.Unlock()
			s.log.Debug("advertised", "namespace", s.namespace, "ttl", ttl, "next_in", wait)
		}
		timer.Reset(wait)
	}
}

// readvertiseDelay is how long to wait before advertising again after an
// advertisement valid for ttl.
func readvertiseDelay(ttl, floor time.Duration) time.Duration {
	return min(max(ttl-ttl/8, floor), maxReadvertise)
}

// rendezvousLoop bootstraps the DHT, then, while fewer than TargetPeers are
// connected, looks up the rendezvous namespace every discovery interval
// (sooner, with backoff, while rounds find nobody to dial; at once when the
// routing table gains its first peer) and dials what it finds.
func (s *Service) rendezvousLoop() {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.routingTimeout)
	if err := s.kad.Bootstrap(ctx); err != nil {
		s.log.Warn("cannot bootstrap the DHT", "err", err)
	}
	cancel()

	strat := s.newRoundBackoff()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-timer.C:
		case <-s.rdvKick:
			strat.Reset()
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		if s.kad.RoutingTable().Size() == 0 {
			s.roundsEmpty.Add(1)
			timer.Reset(strat.Delay()) // nobody to ask; the routing watch kicks
			continue
		}
		if s.connected() >= s.target {
			strat.Reset()
			timer.Reset(s.opts.interval)
			continue
		}
		res := s.rendezvousRound()
		if s.ctx.Err() != nil {
			return
		}
		wait := s.opts.interval
		if res.Err != nil || res.Dialed == 0 {
			wait = strat.Delay()
		} else {
			strat.Reset()
		}
		timer.Reset(wait)
	}
}

// rendezvousRound looks up the namespace once and dials the peers found
// until TargetPeers are connected or being dialed.
func (s *Service) rendezvousRound() RoundResult {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.routingTimeout)
	defer cancel()
	var res RoundResult
	ch, err := s.disc.FindPeers(ctx, s.namespace, discovery.Limit(4*s.target))
	if err != nil {
		res.Err = err
	} else {
	loop:
		for {
			select {
			case <-ctx.Done():
				if s.ctx.Err() == nil && res.Found == 0 {
					res.Err = ctx.Err()
				}
				break loop
			case ai, ok := <-ch:
				if !ok {
					break loop
				}
				if ai.ID == s.cfg.Host.ID() {
					continue
				}
				res.Found++
				if s.connected()+s.inflightCount() >= s.target {
					break loop
				}
				if started, _ := s.tryDial(ai, kindRendezvous); started {
					res.Dialed++
				}
			}
		}
	}
	res.At = time.Now()
	s.rounds.Add(1)
	s.rdvDials.Add(uint64(res.Dialed))
	s.smu.Lock()
	s.lastRound = res
	s.smu.Unlock()
	s.log.Debug("rendezvous round", "namespace", s.namespace, "found", res.Found, "dialed", res.Dialed,
		"connected", s.connected(), "err", res.Err)
	return res
}

// routingWatchLoop turns "a DHT server identified" (from the event loop)
// into "the routing table gained its first peer": kad-dht adds an
// identified server to its table only after a FIND_NODE check, and offers
// no event for it, so the table's size is read every routingPoll until the
// peer is in (or routingWaitMax passes). When the table goes from empty to
// not empty, the advertise and rendezvous loops run at once instead of
// waiting for their timers.
func (s *Service) routingWatchLoop() {
	defer s.wg.Done()
	rt := s.kad.RoutingTable()
	poll := time.NewTicker(routingPoll)
	defer poll.Stop()
	kick := func() {
		s.log.Debug("routing table gained its first peer; advertising and looking up now", "namespace", s.namespace)
		signal(s.advKick)
		signal(s.rdvKick)
	}
	wasEmpty := true
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.dhtPeer:
		}
		if rt.Size() > 0 {
			// Already in: under load the table can take the peer before
			// this event is read. Still the first peer, if it was empty.
			if wasEmpty {
				kick()
			}
			wasEmpty = false
			continue
		}
		wasEmpty = true
		deadline := time.Now().Add(routingWaitMax)
		for wasEmpty && time.Now().Before(deadline) {
			select {
			case <-s.ctx.Done():
				return
			case <-poll.C:
			}
			if rt.Size() > 0 {
				wasEmpty = false
				kick()
			}
		}
	}
}
