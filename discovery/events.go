package discovery

import (
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// eventLoop follows the host's peers: it records connected peers of our
// network in the store, tracks connection lifetimes for the backoff, and
// wakes the dial loop when a peer is lost.
func (s *Service) eventLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case e, ok := <-s.sub.Out():
			if !ok {
				return
			}
			s.handleEvent(e)
		}
	}
}

// handleEvent handles one host event. Only called from the event loop.
func (s *Service) handleEvent(e any) {
	switch ev := e.(type) {
	case event.EvtPeerConnectednessChanged:
		switch ev.Connectedness {
		case network.Connected:
			s.markConnected(ev.Peer)
		case network.NotConnected:
			s.markDisconnected(ev.Peer)
			if s.isMust(ev.Peer) || (!s.connectOnly && s.connected() < s.target) {
				s.wake()
			}
		}
	case event.EvtPeerIdentificationCompleted:
		if s.speaksNetwork(ev.Protocols) {
			s.remember(ev.Peer)
		}
		if s.kad != nil && slices.Contains(ev.Protocols, s.kadProtocol()) {
			signal(s.dhtPeer)
		}
	case event.EvtPeerProtocolsUpdated:
		if s.speaksNetwork(ev.Added) && s.cfg.Host.Network().Connectedness(ev.Peer) == network.Connected {
			s.remember(ev.Peer)
		}
		if s.kad != nil && slices.Contains(ev.Added, s.kadProtocol()) {
			signal(s.dhtPeer)
		}
	}
}

// speaksNetwork reports whether one of protos is under /dagnode/<network>/:
// only such peers are persisted, so a peer of another network that happens
// to connect is never dialed again from the store.
func (s *Service) speaksNetwork(protos []protocol.ID) bool {
	prefix := string(s.protoPrefix) + "/"
	for _, p := range protos {
		if strings.HasPrefix(string(p), prefix) {
			return true
		}
	}
	return false
}
