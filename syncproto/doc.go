// Package syncproto is the block sync protocol and the sync manager, the
// single writer of the DAG (soterd's netsync carried over a libp2p stream
// protocol, with bitmarkd's election of the sync peer).
//
// # Manager
//
// Every block that reaches the DAG goes through the manager loop, which
// alone calls DAG.ProcessBlock(s): Submit waits for the outcome (mined
// blocks, orphans from gossip, blocks fetched by sync); Enqueue hands over a
// block that dag.CheckBlock already passed, so gossip can forward it before
// it is on disk (queued blocks are processed before any later Submit). A
// block with unknown parents is kept in a bounded orphan pool (MaxOrphans,
// MaxOrphanBytes, oldest evicted first, dropped after OrphanExpiry); its
// parents are fetched from the peer that sent it, and it is processed again
// as soon as they are accepted (OnAccepted then reports it with relay set,
// so the node announces it, gossip having ignored it the first time).
//
// # Sync
//
// On every new direct connection, and every SampleInterval, the manager
// exchanges statuses with the peer. A peer of another network (it identifies
// as a dagnode node of another network and does not speak our protocol, or
// its genesis differs) is reported to the peer tracker, which bans it. A
// peer that is no dagnode node at all (libp2p's AutoNAT dial-back hosts,
// plain DHT or relay clients) is left alone: ErrNotDagnode, no penalty. A
// peer is behind-worthy when it names tips we lack for more than
// BehindGrace, or is syncLeadHeights ahead. The election waits up to
// ElectionWait for MinElectionPeers statuses, takes the target most peers
// agree on (ties: more total work, then more blocks) and picks one sync peer
// among those that have it. In a session (sync mode: announcements from
// other peers are dropped with ErrSyncing) the manager finds a start height
// from the peer's tip heights, pages through getblocks → inv, fetches what
// it lacks with pipelineDepth getdata requests in flight, submits the blocks
// in inventory order, then fetches orphans' parents by hash. It ends when we
// have the peer's tips; a peer that lets StallTimeout pass without a block
// is dropped and penalised, and one that answers notfound for tips it
// claimed is penalised. Progress is logged every ProgressInterval and
// reported by SyncInfo.
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
// The protocol id embeds the network: /dagnode/<network>/sync/1. Each stream
// carries one request from the client, whose write side is then closed, and
// the server's reply. A frame is
//
//	uvarint(len) | type (1 byte) | payload (len-1 bytes)
//
// and its length is checked against the type's limit before the payload is
// read. Integers are little-endian, hashes 32 bytes, lists a u16 count.
//
//	status    (1) genesis | max height u64 | block count u64 | work len u8 | work (big-endian, minimal, <= 40 bytes) |
//	              u16 count | count × (tip hash | tip height u64), <= MaxStatusTips
//	getblocks (2) start height u64 | end hash (zero: up to the server's tips)
//	inv       (3) u16 count | count × (type u8 = 1 | hash | height u64), <= MaxInvEntries, by height
//	getdata   (4) hash list, <= MaxGetDataHashes
//	block     (5) one encoded block, <= dag.MaxBlockSize
//	notfound  (6) hash list of requested blocks the server lacks; ends a getdata reply
//	getheight (7) height u64
//	hashes    (8) hash list of the blocks at that height, <= MaxHeightHashes
//
// Requests and replies: status → status (the request carries the client's
// status, so both sides learn each other's DAG); getblocks → one inv (whole
// heights only, unless one height alone exceeds the limit); getdata → block
// frames then one notfound; getheight → hashes. Serving blocks is charged to
// a per-peer rate limit (DefaultServeRate); an exhausted budget delays the
// reply, it never fails it.
//
// # Handlers
//
// Every handler recovers from panics, sets a read deadline before the first
// read, reads bounded frames (never io.ReadAll), refuses unknown or
// unexpected types and trailing bytes, closes the stream on success and
// resets it on error. Protocol violations are *ProtocolError carrying their
// penalty, and go to the peer tracker; so do invalid blocks (*dag.RuleError)
// and unrequested ones.
//
// What this package must not do: write to the DAG anywhere but the manager
// loop, block that loop on the network, or trust a length before checking it.
package syncproto
