// Package dag is the block DAG: blocks and their canonical encoding, proof of
// work and difficulty, validation, and the DAG itself, indexed in memory and
// stored through go-datastore (an embedded pebble store by default, see
// OpenPebbleStore).
//
// # Blocks
//
// A header names one to MaxParents parents (sorted ascending, unique), a
// timestamp in Unix milliseconds, the compact difficulty target, the SHA-256
// of the body and a nonce, which comes last so a miner rewrites only the last
// NonceOffsetFromEnd bytes. A body holds the miner's AddrLen-byte address and
// at most MaxPayloadSize bytes of payload. Integers are little-endian and
// fixed width, so every block has exactly one encoding: DecodeBlock refuses
// trailing bytes and anything over MaxBlockSize, and re-encoding a decoded
// block gives back the same bytes. The block hash is DoubleSHA256 of the
// header; read big-endian, it is the proof-of-work number.
//
// # The DAG
//
// A block's height is one more than its highest parent's; the genesis (one
// per network, see Params) has height 0 and no parents. Tips are blocks
// without children. Each block's selected parent is the parent with the most
// chain work (ties to the smaller hash); chain work is a block's own work plus
// its selected parent's; the DAG's score, compared between peers, is its total
// work. Difficulty retargets every RetargetInterval heights along the
// selected-parent chain (see the Params field docs).
//
// # Validation and errors
//
// CheckSanity runs the context-free rules (cheap: gossip validators call it
// inline); ProcessBlock adds the rules that need the parents. The outcome is
// typed: a *RuleError with an ErrorCode for an invalid block (the sender
// misbehaved); a *MissingParentsError for an orphan (not a rule violation:
// fetch the parents and try again); ErrDuplicateBlock for a known block.
//
// # Storage and concurrency
//
// Each accepted block is written in one atomic datastore batch and synced
// before ProcessBlock returns, so an acknowledged block survives a crash and
// a reopened store is always a consistent DAG; Open checks that, and Verify
// checks everything. ProcessBlocks imports many blocks with one sync. A DAG is
// safe for concurrent use: reads share a RWMutex, writes take it exclusively.
// In the node the sync manager is the only writer. OpenPebbleStore refuses a
// store another process holds (ErrStoreLocked) and one whose write-ahead log
// no longer reads back where it had been synced (ErrStoreDamaged), rather
// than open it without the acknowledged blocks after the damage.
//
// What this package must not do: import networking or any other package of
// this module, start goroutines, or panic on bytes from outside.
package dag
