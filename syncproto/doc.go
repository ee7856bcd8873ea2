// Package syncproto is the block sync protocol and the sync manager, the
// single writer of the DAG (soterd's netsync carried over a libp2p stream
// protocol).
//
// # Manager
//
// Every block that reaches the DAG — mined here, from gossip, or fetched by
// sync — goes through Manager.Submit into one loop, which calls
// DAG.ProcessBlock. A block with unknown parents is kept in a bounded orphan
// pool (MaxOrphans, MaxOrphanBytes, oldest evicted first, dropped after
// OrphanExpiry) and processed again as soon as its parents are accepted.
// On every new connection the manager exchanges statuses with the peer; a
// peer that does not speak the protocol of our network, or whose genesis
// differs, is reported to the peer tracker (ErrWrongNetwork), which bans it.
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
// read. Integers are little-endian, hashes 32 bytes, lists a uint16 count.
//
//	status   (1)  genesis | max height u64 | block count u64 | work len u8 | work (big-endian, minimal, <= 40 bytes) | u16 count | count × (tip hash | tip height u64), <= MaxStatusTips
//
// A status request carries the client's status and is answered with the
// server's, so both sides learn each other's DAG.
//
// # Handlers
//
// Every handler recovers from panics, sets a read deadline before the first
// read, reads bounded frames (never io.ReadAll), refuses unknown or
// unexpected types and trailing bytes, closes the stream on success and
// resets it on error. Protocol violations are *ProtocolError and go to the
// peer tracker.
//
// What this package must not do: write to the DAG anywhere but the manager
// loop, block that loop on the network, or trust a length before checking it.
package syncproto
