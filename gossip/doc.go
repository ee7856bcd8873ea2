// Package gossip announces new blocks on a GossipSub topic per network and
// validates the blocks that peers announce, deciding for each one whether
// GossipSub accepts (delivers and forwards) it, rejects it (and scores the
// sender down) or ignores it.
//
// # Topic
//
// One topic per network, /dagnode/<network>/blocks/1 (TopicName), e.g.
// /dagnode/mainnet/blocks/1. A node joins only its own network's topic, so
// blocks of other networks never reach it. A message is one block in its
// canonical encoding (dag.Block.Encode, at most dag.MaxBlockSize bytes), with
// no author, sequence number or signature (StrictNoSign): the proof of work
// is the block's credential, and peers are judged by what they forward. The
// message id is the block hash when the bytes are a well-formed block whose
// body matches its header, otherwise "x" + SHA-256 of the bytes; so each
// block is validated once, however many peers send it. GossipSub (v0.17)
// only takes peers whose connectedness is Connected: a peer reached only
// through a circuit relay gets no gossip until it has a direct connection,
// so blocks never cross a relay.
//
// # Validation
//
// The validator runs asynchronously (each validation in a goroutine of its
// own, so one that waits delays only its own block), checks cheap things
// first and maps every outcome in one function (classify). It decodes and
// sanity-checks a block once (dag.CheckRaw) and hands Submit the checked
// block. Submit must not wait for the disk or the DAG's writer: the node
// checks the block against the DAG and queues it for the writer.
//
//	message / outcome                               decision  counter    penalise
//	sent by ourselves (Publish)                     Accept    -          -
//	undecodable (dag.CheckRaw: decode error)        Reject    rejected   yes
//	dag.CheckRaw: dag.CheckSanity rule error        Reject    rejected   yes
//	  ... except dag.ErrTimeTooNew (clock skew)     Ignore    ignored    no
//	already in the DAG (Chain.HaveBlock)            Ignore    duplicate  no
//	Submit: nil (valid, handed to the DAG's writer) Accept    accepted   -
//	Submit: *dag.MissingParentsError (orphan)       Ignore    orphan     no
//	Submit: dag.ErrDuplicateBlock                   Ignore    duplicate  no
//	Submit: *dag.RuleError                          Reject    rejected   yes
//	Submit: wraps ErrDeferred (sync mode, busy)     Ignore    ignored    no
//	Submit: any other error (local failure)         Ignore    ignored    no (Warn log)
//
// "Penalise" means Penalizer.Penalize(sender, the *dag.RuleError); the
// router's own peer score also counts every Reject (P4). An orphan is kept by
// the sync manager, which fetches its parents; GossipSub does not forward it.
//
// # Parameters
//
// Chosen explicitly (params.go gives each its reason): mesh D=8, Dlo=6,
// Dhi=12 and a 700 ms heartbeat (Ethereum's), message cache 6 heartbeats with
// gossip over the last 3, seen-message TTL 2 min, flood publishing of our own
// blocks, no peer exchange, per-peer outbound queue 256, validation queue
// 256, at most 256 validations in flight, a 5 s validator timeout, an RPC
// frame limit of 16 full-size block messages plus 32 KiB of control
// (about 55 KB), and peer scoring: one invalid block costs -1000 (gossip
// threshold -500, publish -1000, graylist -2500), first deliveries and time
// in the mesh earn at most +10, mesh delivery rates are not scored (quiet
// peers are not faulty peers), plus IP colocation and behaviour penalties.
//
// # What it must not do
//
// It never writes to the DAG itself (Submit is the only write path), keeps
// no blocks (an ignored orphan belongs to the sync manager), signs nothing,
// and never matches errors by their text. Publish is only for blocks the DAG
// has already accepted: they are not validated again.
package gossip
