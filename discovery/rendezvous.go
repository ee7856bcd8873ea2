package discovery

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/discovery"
)

// advertiseLoop advertises this node under the rendezvous namespace, again
// before the returned TTL runs out (at 7/8 of it, between the discovery
// interval and maxReadvertise); failures (typically an empty routing table
// right after start) are retried with backoff.
func (s *Service) advertiseLoop() {
	defer s.wg.Done()
	strat := s.newRoundBackoff()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-timer.C:
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
// (sooner, with backoff, while rounds find nobody to dial) and dials what it
// finds.
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
