// Package syncproto is the block sync protocol and the sync manager, the
// single writer of the DAG (soterd's netsync carried over a libp2p stream
// protocol, with bitmarkd's election of the sync peer).
//
// # Manager
//
// Every block that reaches the DAG goes through the manager loop, the DAG's
// only writer (ProcessBlocks for blocks made here; CommitBlocks and
// CommitChecked for peers' blocks, which sessions and orphan fetches decode
// and check with DAG.Check as they arrive): Submit waits for the outcome
// (mined blocks); Enqueue hands over a block that dag.CheckRaw and
// DAG.CheckConnect already passed, so gossip can forward it before it is on
// disk, and EnqueueOrphan a gossiped block whose parents are missing. Neither
// waits, for the loop or for the disk: each has a bounded queue, and a block
// that finds it full is dropped (ErrQueueFull, counted) for sync to bring
// later. Checked blocks are processed before any later Submit and before any
// queued orphan (which may be their child).
//
// Blocks made here (Submit with no sender: mined, submitted over RPC) are
// durable before Submit returns. A peer's blocks are committed to the store
// (readable at once) and synced to stable storage together, storeSyncDelay
// (250 ms) after the first of them, and at Close: the disk's sync stays off
// the path a block takes across the network, and a crash costs at most that
// much of what peers can send again (the store keeps a prefix of its log,
// a consistent DAG).
//
// # Orphans
//
// A block with unknown parents is kept in a bounded orphan pool (MaxOrphans,
// MaxOrphanBytes, at most MaxOrphansPerPeer per sender, oldest evicted
// first, dropped after OrphanExpiry) and processed again as soon as its
// parents are accepted (OnAccepted then reports it with relay set, so the
// node announces it, gossip having ignored it the first time). Its parents
// are fetched from the sender by orphan fetchers that run beside sessions
// and elections (orphanFetchers at once, one fetch per peer, each bounded
// by orphanFetchTimeout and maxOrphanFetchDepth generations; a deeper gap
// is left to a sync session with the sender). Orphans cost their sender: an
// orphan evicted or expired without its parents having come from anyone
// within orphanGrace charges PenaltyOrphan. In sync mode a peer's orphans
// are not kept (ErrSyncing): the session brings their ancestors, and their
// sender's status names them. Blocks whose parents we have are accepted in
// sync mode as at any other time. A session never depends on the pool: its
// blocks arrive parents first.
//
// # Sync
//
// On every new direct connection, and every SampleInterval, the manager
// exchanges statuses with the peer. A peer of another network (it identifies
// as a dagnode node of another network and does not speak our protocol, or
// its genesis differs) is reported to the peer tracker, which bans it. A
// peer that is no dagnode node at all (libp2p's AutoNAT dial-back hosts,
// plain DHT or relay clients) is left alone: ErrNotDagnode, no penalty. An
// implausible status (a block count below its height, more tips than blocks,
// less blue work than the genesis carries) is refused. A peer is a candidate when it
// names tips we lack for more than BehindGrace (time for blocks in flight
// to arrive by gossip), at once if it is syncLeadHeights heights or
// syncLeadBlocks blocks ahead or its status came with a new connection's
// handshake.
//
// Election runs as soon as the statuses are in (it waits up to ElectionWait
// only while handshakes are still in flight): candidates that claim the
// same tips and blue work form a group; the group with the most peers wins
// (ties: more blue work, the DAG's GHOSTDAG score, then more blocks), and within it the peer with the fewest
// failed sessions, then the fewest orphans still waiting for parents. A peer
// whose session failed is not elected again for a backoff that starts at
// backoffBase and doubles with each failure in a row up to backoffMax.
//
// A session is rounds of getblocks → inv → getdata: the request carries our
// locator (dag.Locator: our tips, then our selected-parent chain at doubling
// distances, then the genesis), the peer answers with every block outside
// the past of the locator, parents first (dag.NotInPast), streamed in inv
// frames while we fetch the blocks we lack with pipelineDepth getdata
// requests in flight and add them in inventory order. A round leaves no
// holes, whatever the DAG's shape (side blocks at any depth, many concurrent
// miners, gaps left by dropped gossip), so a session from a peer at the
// genesis is one round unless the peer has more than MaxInvPerReply blocks
// to list. The session ends:
//
//	done         our DAG holds the tips the peer claimed
//	stalled      no frame for StallTimeout: PenaltyStall
//	offense      a protocol violation, an invalid or unrequested block, or a
//	             claim not served (notfound for a listed block, an inventory
//	             without the claimed tips, a block before its parents):
//	             the violation's penalty (PenaltyEmptyPromise for claims)
//	fault        a reset, EOF or lost connection: no penalty; after
//	             maxFaults in a row the connection is closed, never banned
//	no progress  a round added nothing
//	preempted    the peer sent nothing for preemptAfter while another peer
//	             claims the blocks we lack: no penalty
//	closed/local the manager stops, or our own storage failed
//
// Every ending but done backs the peer off. After a session that added
// blocks the manager pushes its status to the other peers, so a healed
// partition converges in seconds, not at the next sample. Progress is
// logged every ProgressInterval; SyncInfo reports the session, the orphan
// pool, the orphan fetches, the last session's end and the backoffs.
//
// # Relayed connections
//
// Sync never runs over a circuit relay: a relay's limits (2 minutes, 128
// KiB) would cut a download, and a relay sees and may filter everything on
// it. A peer we reach only through a relay has Connectedness Limited, so it
// gets no status exchange, is never elected, and our requests to it fail
// (libp2p opens no stream on a limited connection unless asked to). Requests
// that arrive on a relayed connection are refused with ErrRelayed (counted in
// Stats.RelayedRefused, no penalty). Once hole punching gives a direct
// connection, the peer is handshaken like any new one.
//
// # Wire format
//
// The protocol id embeds the network and the version:
// /dagnode/<network>/sync/3. Version 3 carries the virtual block's blue
// work (the GHOSTDAG score) where version 2 carried the sum of all blocks'
// work; version 2 replaced sync/1's height-ranged getblocks, whose guesses
// left holes in wide DAGs, and retired its getheight and hashes messages. Each stream carries one request from the
// client, whose write side is then closed, and the server's reply. A frame
// is
//
//	uvarint(len) | type (1 byte) | payload (len-1 bytes)
//
// and its length is checked against the type's limit before the payload is
// read. Integers are little-endian, hashes 32 bytes, lists a u16 count.
//
//	status    (1) genesis | max height u64 | block count u64 | work len u8 | blue work (big-endian, minimal, <= 40 bytes) |
//	              u16 count | count × (tip hash | tip height u64), <= MaxStatusTips
//	getblocks (2) locator: hash list, <= MaxLocatorHashes, our tips first
//	inv       (3) flags u8 (1 last frame, 2 more after this reply) | u16 count | count × hash, <= MaxInvEntries
//	getdata   (4) hash list, <= MaxGetDataHashes
//	block     (5) one encoded block, <= dag.MaxBlockSize
//	notfound  (6) hash list of requested blocks the server lacks; ends a getdata reply
//
// Types 7 and 8 (sync/1's getheight and hashes) are unknown frames in
// version 2. Requests and replies: status → status (the request carries the
// client's status, so both sides learn each other's DAG); getblocks → inv
// frames, parents first, the last flagged, at most MaxInvPerReply hashes per
// reply (flag "more": ask again with the new locator); getdata → block
// frames then one notfound. Serving is charged to a per-peer rate limit
// (DefaultServeRate blocks per second; invEntriesPerToken inventory entries
// cost one block) and at most maxConcurrentInventories inventories are
// walked at once; an exhausted budget delays the reply, it never fails it.
//
// # Handlers
//
// Every handler recovers from panics, sets a read deadline before the first
// read, reads bounded frames (never io.ReadAll), refuses unknown or
// unexpected types and bytes after the request, closes the stream on
// success and resets it on error. Protocol violations are *ProtocolError
// carrying their penalty, and go to the peer tracker; so do invalid blocks
// (*dag.RuleError) and unrequested ones. Faults of the network are not
// violations: a reset, an EOF or a deadline after a complete request (or,
// in our client, after a complete reply) ends the stream without a penalty;
// only bytes that do arrive after the last frame are an offence. A read
// deadline applies to each frame of a reply (StallTimeout), not to the
// whole reply, so a long inventory from a slow honest peer is not a stall.
//
// What this package must not do: write to the DAG anywhere but the manager
// loop, block that loop on the network, or trust a length before checking it.
package syncproto
