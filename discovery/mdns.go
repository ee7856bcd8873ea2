package discovery

import "github.com/libp2p/go-libp2p/core/peer"

// mdnsNotifee receives the peers mDNS finds. The mdns package calls it from
// goroutines of its own that nobody waits for, so it never blocks: a full
// queue drops the peer (mDNS reports it again at its next query).
type mdnsNotifee struct{ s *Service }

// HandlePeerFound queues ai for the mDNS loop.
func (n mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	select {
	case n.s.mdnsFound <- ai:
	default:
		n.s.mdnsDropped.Add(1)
	}
}

// mdnsLoop dials the peers mDNS finds (with backoff). mDNS only reports
// peers announcing the service name dagnode-<network>, so peers of other
// networks are never found here.
func (s *Service) mdnsLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case ai := <-s.mdnsFound:
			s.mdnsFoundN.Add(1)
			s.log.Debug("peer found by mDNS", "peer", ai.ID)
			s.tryDial(ai, kindMDNS)
		}
	}
}
