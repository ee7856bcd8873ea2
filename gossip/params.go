package gossip

import (
	"crypto/sha256"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
)

// TopicName returns the block topic of a network: /dagnode/<network>/blocks/1.
// The network in the name keeps networks apart: a node subscribes to its own
// network's topic only, so blocks of other networks never reach it.
func TopicName(network string) string {
	return "/dagnode/" + network + "/blocks/1"
}

// Mesh and gossip parameters (GossipSubParams). Everything not listed keeps
// the library default.
const (
	// meshD is the mesh degree GossipSub aims at, meshDlo and meshDhi the
	// bounds that trigger grafting and pruning at a heartbeat. Ethereum's
	// values (the library's are 6/5/12): two more peers in the mesh cost
	// little for ~1.4 KB blocks and add redundant paths, so one slow or
	// hostile mesh peer delays a block less.
	meshD   = 8
	meshDlo = 6
	meshDhi = 12

	// heartbeatInterval is how often the mesh is maintained and IHAVE gossip
	// goes out. Ethereum's 700 ms: meshes repair and lost blocks are
	// re-advertised sooner than with the 1 s default, and the extra control
	// traffic is small because blocks are the only messages.
	heartbeatInterval = 700 * time.Millisecond

	// historyLength and historyGossip are in heartbeats: a message stays in
	// the cache for 6 (4.2 s) and is advertised in IHAVE for the last 3
	// (2.1 s), Ethereum's values for the same heartbeat.
	historyLength = 6
	historyGossip = 3

	// seenMessagesTTL is how long a message id (a block hash) is remembered,
	// so a block is validated once however many peers send it. This is the
	// library default, chosen explicitly: after it a re-announced block costs
	// one decode, one header hash and a DAG lookup, so a longer window buys
	// little.
	seenMessagesTTL = 2 * time.Minute
)

// Queues and validation limits.
const (
	// peerOutboundQueueSize is the number of RPCs queued towards one peer
	// before further RPCs to it are dropped. The default of 32 overflows
	// when a burst of blocks (a wide DAG round, being forwarded and
	// gossiped) meets a slow link; busy production networks run several
	// hundred. The queue holds pointers to messages shared between peers, so
	// 256 costs little memory.
	peerOutboundQueueSize = 256

	// validateQueueSize is the front-end queue between the RPC readers and
	// the validation workers; a message arriving while it is full is dropped
	// without validation (counted as dropped). The default of 32 drops
	// blocks under bursts. The validation workers that drain it stay at the
	// default, one per CPU: under StrictNoSign they check no signatures and
	// only hand messages to our asynchronous validator.
	validateQueueSize = 256

	// maxConcurrentValidations bounds the validations in flight, for the
	// topic and (with one topic) globally; a message beyond this bound is
	// dropped, not penalised. A validation takes microseconds (Submit
	// queues the block for the DAG's writer and returns), but it may wait
	// for the DAG's read lock (behind the writer, itself behind a long read
	// such as serving a sync from genesis) or for the penalizer; the
	// validator runs asynchronously so that such a wait delays only its own
	// block. Each one holds at most a block and a goroutine (~10 KB), so 256
	// cost ~2.5 MB. The library's global default of 8192 is sized for many
	// topics.
	maxConcurrentValidations = 256

	// validatorTimeout bounds one validation, Submit included. Submit
	// normally returns in microseconds (it does not wait for the disk); a
	// block still waiting after 5 s is ignored (not penalised) and sync
	// fetches it later, so nothing stalled can pin all validation slots.
	validatorTimeout = 5 * time.Second

	// subscriptionBuffer is the buffer of our own subscription. The read
	// loop only counts deliveries, so it keeps up; the buffer absorbs
	// scheduling hiccups (an overflow is counted as dropped).
	subscriptionBuffer = 128
)

// Message size limits. A pubsub RPC frame carries messages and control
// (IHAVE/IWANT/IDONTWANT ids, GRAFT/PRUNE, subscriptions); the sender splits
// frames to fit our limit, the reader resets a stream that exceeds it.
const (
	// maxTopicLen bounds the topic name; Start refuses longer ones. Network
	// names are at most seven characters.
	maxTopicLen = 64

	// maxBlockMessageSize is the largest encoded pubsub Message carrying one
	// block: the block, the data field's tag and length varint (3 bytes),
	// the topic field's tag and length (2 bytes) and the topic. No from,
	// seqno, signature or key field is sent under StrictNoSign.
	maxBlockMessageSize = dag.MaxBlockSize + 3 + 2 + maxTopicLen

	// messagesPerRPC is how many full-size blocks one frame may carry
	// (IWANT replies and forwarding bursts are batched).
	messagesPerRPC = 16

	// controlHeadroom is the room left in a frame for control: about 960
	// 34-byte message ids, or a PRUNE with peer records.
	controlHeadroom = 32 << 10

	// maxRPCSize is the frame limit given to WithMaxMessageSize: 16 blocks,
	// each with its 3-byte RPC field framing, plus the control headroom
	// (about 55 KB, against the library's 1 MiB default).
	maxRPCSize = messagesPerRPC*(maxBlockMessageSize+3) + controlHeadroom
)

// Peer score thresholds (PeerScoreThresholds). Scores come from the
// topic parameters below: one invalid block costs -1000, good behaviour
// earns at most +10 (+1 from time in mesh, capped by topicScoreCap).
const (
	// gossipThreshold: below it a peer gets no IHAVE gossip from us and its
	// IHAVEs are ignored. One invalid block puts a peer below it.
	gossipThreshold = -500
	// publishThreshold: below it our own blocks are not flood-published to
	// the peer.
	publishThreshold = -1000
	// graylistThreshold: below it every RPC from the peer is ignored. Two
	// invalid blocks (-4000) put a peer here until the penalty decays.
	graylistThreshold = -2500
	// acceptPXThreshold: peer exchange is off; the threshold is above any
	// score reachable from topic behaviour, so only a peer vouched for by
	// the application score could be trusted for PX.
	acceptPXThreshold = 1000
	// opportunisticGraftThreshold: when the median mesh score falls below it,
	// better-scoring peers are grafted in (a mesh that delivers nothing
	// first is replaced bit by bit).
	opportunisticGraftThreshold = 1
)

// Topic score parameters (TopicScoreParams) of the block topic.
const (
	// topicWeight scales the topic's contribution; with one topic, 1.
	topicWeight = 1

	// topicScoreCap caps the positive topic score, so good behaviour can
	// offset at most 1% of one invalid block.
	topicScoreCap = 10

	// timeInMeshQuantum/timeInMeshCap/timeInMeshWeight (P1): +1 after an
	// hour in the mesh.
	timeInMeshQuantum = time.Second
	timeInMeshCap     = 3600
	timeInMeshWeight  = 1.0 / timeInMeshCap

	// firstDeliveriesWeight/firstDeliveriesCap (P2): +1 per block first
	// delivered to us, at most +10, decaying over an hour.
	firstDeliveriesWeight = 1
	firstDeliveriesCap    = 10
	firstDeliveriesDecay  = time.Hour

	// invalidDeliveriesWeight (P4): the penalty is weight × count², so one
	// invalid block is -1000 and two are -4000; it decays over an hour.
	invalidDeliveriesWeight = -1000
	invalidDeliveriesDecay  = time.Hour

	// Mesh message delivery rates (P3, P3b) are off: blocks are bursty and
	// a DAG network may be quiet for minutes, so a quiet mesh peer is not a
	// faulty one, and P3 would prune honest peers.
)

// Peer score parameters (PeerScoreParams) not tied to the topic.
const (
	// appSpecificWeight multiplies the application score (WithAppSpecificScore,
	// 0 by default).
	appSpecificWeight = 1

	// ipColocationWeight/ipColocationThreshold (P6): more than 10 peers
	// behind one IP cost (n-10)² × -100. Small networks often share an IP
	// (home NAT, containers), hence the tolerant threshold; loopback is
	// never counted by the library.
	ipColocationWeight    = -100
	ipColocationThreshold = 10

	// behaviourPenalty* (P7): broken IHAVE promises and GRAFTs during
	// backoff beyond 6 cost (n-6)² × -10, decaying over an hour.
	behaviourPenaltyWeight    = -10
	behaviourPenaltyThreshold = 6
	behaviourPenaltyDecay     = time.Hour

	// retainScore keeps a disconnected peer's score, so reconnecting does
	// not wash away penalties; an hour is the invalid-block penalty's decay
	// period.
	retainScore = time.Hour
)

// gossipSubParams returns the router parameters: the library defaults with
// the mesh, heartbeat and history values above.
func gossipSubParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.D, p.Dlo, p.Dhi = meshD, meshDlo, meshDhi
	p.HeartbeatInterval = heartbeatInterval
	p.HistoryLength = historyLength
	p.HistoryGossip = historyGossip
	return p
}

// peerScoreParams returns the score parameters for the block topic.
func peerScoreParams(topic string, appScore func(peer.ID) float64) *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		Topics: map[string]*pubsub.TopicScoreParams{
			topic: {
				TopicWeight: topicWeight,

				TimeInMeshWeight:  timeInMeshWeight,
				TimeInMeshQuantum: timeInMeshQuantum,
				TimeInMeshCap:     timeInMeshCap,

				FirstMessageDeliveriesWeight: firstDeliveriesWeight,
				FirstMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(firstDeliveriesDecay),
				FirstMessageDeliveriesCap:    firstDeliveriesCap,

				InvalidMessageDeliveriesWeight: invalidDeliveriesWeight,
				InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(invalidDeliveriesDecay),
			},
		},
		TopicScoreCap:               topicScoreCap,
		AppSpecificScore:            appScore,
		AppSpecificWeight:           appSpecificWeight,
		IPColocationFactorWeight:    ipColocationWeight,
		IPColocationFactorThreshold: ipColocationThreshold,
		BehaviourPenaltyWeight:      behaviourPenaltyWeight,
		BehaviourPenaltyThreshold:   behaviourPenaltyThreshold,
		BehaviourPenaltyDecay:       pubsub.ScoreParameterDecay(behaviourPenaltyDecay),
		DecayInterval:               pubsub.DefaultDecayInterval,
		DecayToZero:                 pubsub.DefaultDecayToZero,
		RetainScore:                 retainScore,
	}
}

// peerScoreThresholds returns the thresholds above.
func peerScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             gossipThreshold,
		PublishThreshold:            publishThreshold,
		GraylistThreshold:           graylistThreshold,
		AcceptPXThreshold:           acceptPXThreshold,
		OpportunisticGraftThreshold: opportunisticGraftThreshold,
	}
}

// undecodableIDPrefix starts the id of a message that is not a well-formed
// block. It makes such ids 33 bytes long, so they never equal a block hash.
const undecodableIDPrefix = "x"

// messageID is the message id function: the block hash for a well-formed
// block whose body matches its header's body hash, otherwise a prefixed
// SHA-256 of the bytes. Checking the body matters: with the header hash
// alone, a peer could send a known header with a corrupt body first, get it
// rejected under the real block's id, and have the genuine block dropped as
// already seen. With the check, two messages share an id only if their bytes
// are equal (DecodeBlock accepts only the canonical encoding).
func messageID(m *pb.Message) string {
	data := m.GetData()
	if b, err := dag.DecodeBlock(data); err == nil && b.Body.Hash() == b.Header.BodyHash {
		h := b.Hash()
		return string(h[:])
	}
	sum := sha256.Sum256(data)
	return undecodableIDPrefix + string(sum[:])
}

// hashOfID returns the block hash in a message id, or the zero hash for the
// id of an undecodable message.
func hashOfID(id string) dag.Hash {
	var h dag.Hash
	if len(id) == dag.HashSize {
		copy(h[:], id)
	}
	return h
}
