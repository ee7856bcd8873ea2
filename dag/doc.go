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
// without children. No parent may be in the past of another
// (ErrParentInPast).
//
// # GHOSTDAG
//
// Every block gets its GHOSTDAG data once, when it is added, and stores it in
// the same batch (ghostdag.go): its selected parent (the parent with the most
// blue work, ties to the smaller hash), its merge set (its past minus its
// selected parent's past) split into blues and reds under the network's k,
// its blue score and its blue work. A merge set over MergeSetSizeLimit makes
// the block invalid (ErrMergeSetTooBig). The anticone checks ask a
// reachability index (reachability.go: the selected-parent tree as intervals
// of an order-maintenance list, plus future covering sets), which answers
// "is A in the past of B" in O(1) plus a binary search, so a block costs
// O(k × merge set) queries, never a walk over the DAG.
//
// k comes from the PHANTOM formula: the least k such that a Poisson variable
// of mean x = 2·D·λ exceeds k with probability below δ (PhantomK), for a
// maximal network delay D = 5 s and δ = 0.01 (AnticoneOverflow). Mainnet and
// testnet (λ = 0.1 block/s, x = 1): k = 4, merge set limit 40. Simnet and
// regtest (λ = 1 block/s, x = 10): k = 18, limit 180, as kaspad's one block a
// second. MaxParents (8) fits any limit.
//
// The virtual block (virtual.go) stands over the best tips: up to MaxParents
// tips with the most blue work, leaving out those that would take its merge
// set over the limit; miners build on its parents (Template). Its blue work
// is the DAG's score, which peers compare (Status.BlueWork); its colouring
// says which blocks are in (blue); its selected chain, each chain block
// preceded by the rest of its merge set in ascending blue work, is the total
// order (Order), a topological order since blue work grows along every edge.
//
// Difficulty follows the network-wide block rate (requiredBits): the target
// is the mean target of the last DifficultyWindow blocks of a block's past in
// GHOSTDAG order, blue and red alike, scaled by how long they took against
// TargetBlockInterval each, clamped to MaxRetargetFactor. Concurrent miners
// therefore do not raise the block rate. Regtest keeps the easiest target.
//
// # Validation and errors
//
// CheckSanity runs the context-free rules (cheap: gossip validators call it
// inline); ProcessBlock adds the rules that need the parents. A block from
// the network is decoded and sanity-checked once where it arrives (CheckRaw,
// DAG.Check): the Checked value keeps its hash and bytes, CheckConnect runs
// the rules that need the DAG, and CommitChecked stores those very bytes. The outcome is
// typed: a *RuleError with an ErrorCode for an invalid block (the sender
// misbehaved); a *MissingParentsError for an orphan (not a rule violation:
// fetch the parents and try again); ErrDuplicateBlock for a known block.
//
// # Storage and concurrency
//
// The blocks a ProcessBlocks call accepts are written in one atomic
// datastore batch, indexed once it is committed, and synced before the call
// returns, so an acknowledged block survives a crash and a reopened store is
// always a consistent DAG. CommitBlocks is the same without the sync: its
// blocks reach the disk with the next Sync or ProcessBlocks, and a crash
// before then may lose them, only as the tail of the log (for blocks peers
// can send again). Blocks are stored in height order, so reading them
// parents first (serving a sync) reads neighbouring keys. Open checks the
// store and rebuilds the in-memory index (reachability included) from the
// stored headers and GHOSTDAG data without recomputing GHOSTDAG (older
// stores are upgraded once: GHOSTDAG data, blocks moved into height order),
// and Verify checks everything, GHOSTDAG and reachability against a
// recomputation. A DAG is safe for concurrent use: reads share a RWMutex,
// writes take it exclusively and only to update the index; NotInPast walks
// the whole DAG without it (parents never change).
// In the node the sync manager is the only writer. OpenPebbleStore refuses a
// store another process holds (ErrStoreLocked) and one whose write-ahead log
// no longer reads back where it had been synced (ErrStoreDamaged), rather
// than open it without the acknowledged blocks after the damage.
//
// What this package must not do: import networking or any other package of
// this module, start goroutines, or panic on bytes from outside.
package dag
