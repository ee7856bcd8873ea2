package gossip

import (
	"slices"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// tracer is the pubsub RawTracer of a Service: it counts drops and policy
// rejections on our topic and follows our mesh. The library calls it
// synchronously from its event loop, so every method is short and never
// blocks (a mutex held for a map update at most).
type tracer struct {
	s *Service

	mu   sync.Mutex
	mesh map[peer.ID]struct{}
}

var _ pubsub.RawTracer = (*tracer)(nil)

func newTracer(s *Service) *tracer {
	return &tracer{s: s, mesh: make(map[peer.ID]struct{})}
}

// meshPeers returns our mesh peers on the topic, sorted.
func (t *tracer) meshPeers() []peer.ID {
	t.mu.Lock()
	out := make([]peer.ID, 0, len(t.mesh))
	for p := range t.mesh {
		out = append(out, p)
	}
	t.mu.Unlock()
	slices.Sort(out)
	return out
}

func (t *tracer) meshSize() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.mesh)
}

// Graft is called when p joins our mesh of topic.
func (t *tracer) Graft(p peer.ID, topic string) {
	if topic != t.s.topicName {
		return
	}
	t.mu.Lock()
	t.mesh[p] = struct{}{}
	t.mu.Unlock()
	t.s.log.Debug("mesh peer grafted", "peer", p)
}

// Prune is called when p leaves our mesh of topic.
func (t *tracer) Prune(p peer.ID, topic string) {
	if topic != t.s.topicName {
		return
	}
	t.mu.Lock()
	delete(t.mesh, p)
	t.mu.Unlock()
	t.s.log.Debug("mesh peer pruned", "peer", p)
}

// OnClosedOutboundStream is called when p goes away; the router then drops
// it from every mesh without a Prune event.
func (t *tracer) OnClosedOutboundStream(p peer.ID) {
	t.mu.Lock()
	delete(t.mesh, p)
	t.mu.Unlock()
}

// Leave is called when we leave a topic; the router prunes each mesh peer
// first, so this only clears what is left.
func (t *tracer) Leave(topic string) {
	if topic != t.s.topicName {
		return
	}
	t.mu.Lock()
	clear(t.mesh)
	t.mu.Unlock()
}

// RejectMessage counts messages dropped before our validator decided
// (validation queue full, throttled) and those refused by the signature
// policy before reaching it. Our validator's own Reject and Ignore
// decisions are counted where they are made.
func (t *tracer) RejectMessage(msg *pubsub.Message, reason string) {
	if msg.GetTopic() != t.s.topicName {
		return
	}
	switch reason {
	case pubsub.RejectValidationQueueFull, pubsub.RejectValidationThrottled:
		t.s.dropped.Add(1)
		t.s.log.Debug("block dropped before validation", "peer", msg.ReceivedFrom, "reason", reason)
	case pubsub.RejectMissingSignature, pubsub.RejectInvalidSignature, pubsub.RejectUnexpectedSignature,
		pubsub.RejectUnexpectedAuthInfo, pubsub.RejectSelfOrigin:
		// The router scores these itself (P4).
		t.s.rejected.Add(1)
		t.s.log.Debug("message refused by signature policy", "peer", msg.ReceivedFrom, "reason", reason)
	}
}

// DropRPC counts our topic's messages in an outbound RPC dropped because
// the peer's queue was full (or the peer was gone).
func (t *tracer) DropRPC(rpc *pubsub.RPC, p peer.ID) {
	n := 0
	for _, m := range rpc.GetPublish() {
		if m.GetTopic() == t.s.topicName {
			n++
		}
	}
	if n > 0 {
		t.s.dropped.Add(uint64(n))
		t.s.log.Debug("outbound blocks dropped", "peer", p, "count", n)
	}
}

// UndeliverableMessage counts messages our own subscription was too slow to
// take (they were validated and forwarded all the same).
func (t *tracer) UndeliverableMessage(msg *pubsub.Message) {
	if msg.GetTopic() == t.s.topicName {
		t.s.dropped.Add(1)
	}
}

// The remaining events are not needed.

// OnNewOutboundStream implements pubsub.RawTracer.
func (t *tracer) OnNewOutboundStream(peer.ID, protocol.ID) {}

// Join implements pubsub.RawTracer.
func (t *tracer) Join(string) {}

// ValidateMessage implements pubsub.RawTracer.
func (t *tracer) ValidateMessage(*pubsub.Message) {}

// DeliverMessage implements pubsub.RawTracer.
func (t *tracer) DeliverMessage(*pubsub.Message) {}

// DuplicateMessage implements pubsub.RawTracer.
func (t *tracer) DuplicateMessage(*pubsub.Message) {}

// ThrottlePeer implements pubsub.RawTracer.
func (t *tracer) ThrottlePeer(peer.ID) {}

// RecvRPC implements pubsub.RawTracer.
func (t *tracer) RecvRPC(*pubsub.RPC) {}

// SendRPC implements pubsub.RawTracer.
func (t *tracer) SendRPC(*pubsub.RPC, peer.ID) {}
