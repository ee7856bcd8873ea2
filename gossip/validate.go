package gossip

import (
	"context"
	"errors"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
)

// verdict is what a validation outcome means for the block and its sender.
type verdict int

const (
	// verdictAccept: the DAG accepted the block; forward it.
	verdictAccept verdict = iota
	// verdictInvalid: the block breaks a rule; reject it and penalise the
	// sender.
	verdictInvalid
	// verdictDuplicate: the DAG already holds the block.
	verdictDuplicate
	// verdictOrphan: the block's parents are unknown; the sync manager keeps
	// it and fetches them.
	verdictOrphan
	// verdictEarly: the timestamp is too far ahead of our clock. That
	// depends on the clocks, not on the block alone, so it proves no
	// misbehaviour (Ethereum ignores future blocks the same way); the block
	// may be valid a little later and sync will fetch it then.
	verdictEarly
	// verdictDeferred: the node takes no announcements now (sync mode);
	// nobody's fault, and common while syncing.
	verdictDeferred
	// verdictLocal: our own failure (storage, shutdown, timeout); not the
	// sender's fault.
	verdictLocal
)

// ErrDeferred is wrapped by Submit's error when the node takes no
// announcements for now (in sync mode): the block is ignored without blame
// and without a warning.
var ErrDeferred = errors.New("gossip: announcement deferred")

// judge maps a validation error onto a verdict. It is the one place where
// errors are classified; nil means accepted.
func judge(err error) verdict {
	var (
		re *dag.RuleError
		mp *dag.MissingParentsError
	)
	switch {
	case err == nil:
		return verdictAccept
	case errors.Is(err, dag.ErrDuplicateBlock):
		return verdictDuplicate
	case errors.As(err, &mp):
		return verdictOrphan
	case errors.Is(err, ErrDeferred):
		return verdictDeferred
	case errors.As(err, &re) && re.Code == dag.ErrTimeTooNew:
		return verdictEarly
	case errors.As(err, &re):
		return verdictInvalid
	default:
		return verdictLocal
	}
}

// result is the GossipSub decision for a verdict: only accepted blocks are
// forwarded, and only invalid ones count against the sender's score.
func (v verdict) result() pubsub.ValidationResult {
	switch v {
	case verdictAccept:
		return pubsub.ValidationAccept
	case verdictInvalid:
		return pubsub.ValidationReject
	default:
		return pubsub.ValidationIgnore
	}
}

// classify maps a validation error (from DecodeBlock, CheckSanity or
// Submit) onto the GossipSub decision: nil → Accept; *dag.RuleError →
// Reject, except ErrTimeTooNew → Ignore; *dag.MissingParentsError,
// dag.ErrDuplicateBlock, ErrDeferred and any other error → Ignore.
func classify(err error) pubsub.ValidationResult {
	return judge(err).result()
}

// validate is the topic validator. It runs asynchronously, at most
// maxConcurrentValidations at once, each bounded by validatorTimeout through
// ctx.
func (s *Service) validate(ctx context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	from := msg.ReceivedFrom
	if from == s.self {
		// Our own blocks: Publish is for blocks the DAG has accepted.
		return pubsub.ValidationAccept
	}
	c, err := dag.CheckRaw(msg.GetData(), s.cfg.Params, s.opts.now())
	if err != nil {
		hash := dag.ZeroHash // for the log: the block's, if it decodes
		if b, derr := dag.DecodeBlock(msg.GetData()); derr == nil {
			hash = b.Hash()
		}
		return s.conclude(from, hash, err)
	}
	if s.cfg.DAG.HaveBlock(c.Hash()) {
		return s.conclude(from, c.Hash(), dag.ErrDuplicateBlock)
	}
	return s.conclude(from, c.Hash(), s.cfg.Submit(ctx, from, c))
}

// conclude counts, logs and penalises one outcome and returns the decision.
func (s *Service) conclude(from peer.ID, hash dag.Hash, err error) pubsub.ValidationResult {
	v := judge(err)
	switch v {
	case verdictAccept:
		s.accepted.Add(1)
		s.log.Debug("block accepted", "peer", from, "hash", hash)
	case verdictInvalid:
		s.rejected.Add(1)
		s.log.Debug("invalid block rejected", "peer", from, "hash", hash, "err", err)
		if s.cfg.Penalizer != nil {
			s.cfg.Penalizer.Penalize(from, err)
		}
	case verdictDuplicate:
		s.duplicate.Add(1)
		s.log.Debug("known block ignored", "peer", from, "hash", hash)
	case verdictOrphan:
		s.orphan.Add(1)
		s.log.Debug("orphan block ignored", "peer", from, "hash", hash, "err", err)
	case verdictEarly:
		s.ignored.Add(1)
		s.log.Debug("future block ignored", "peer", from, "hash", hash, "err", err)
	case verdictDeferred:
		s.ignored.Add(1)
		s.log.Debug("block deferred: the node takes no announcements now", "peer", from, "hash", hash, "err", err)
	case verdictLocal:
		s.ignored.Add(1)
		if errors.Is(err, context.Canceled) {
			// Shutting down.
			s.log.Debug("block not validated: canceled", "peer", from, "hash", hash, "err", err)
		} else {
			s.log.Warn("block not validated: local failure", "peer", from, "hash", hash, "err", err)
		}
	}
	return v.result()
}
