// Package miner is the CPU miner (soterd's and btcd's cpuminer, for a DAG).
//
// A worker asks the DAG for a template (the current tips, up to
// dag.MaxParents, and the difficulty they require), builds a header and runs a
// nonce loop over its encoding, rewriting only the trailing nonce bytes and
// hashing with dag.DoubleSHA256. Every few thousand hashes it compares the
// DAG's version with the template's: when the tips have changed the work is
// stale and the worker starts over on a fresh template. Solved blocks go to the
// Submit function given in Config, the same path blocks from the network take;
// only blocks it accepts count as mined and are reported to the Recorder.
//
// Mining runs either continuously (SetGenerate, the --generate flag) with a
// number of workers (the --genproclimit flag, default one per core) or for a
// fixed number of accepted blocks (Generate, soterd's generate RPC), never both
// at once. The hash rate is measured over a sliding window
// (HashesPerSecond).
//
// What this package must not do: import networking (it sees the DAG and the
// submit path only through Config), write to the DAG itself, or count a block
// that Submit refused.
package miner
