// Package dagtest makes blocks for tests and benchmarks of every package: a
// nonce solver, a generator of random multi-parent DAGs validated by a real
// in-memory DAG, and a shared table of invalid blocks with the rule each one
// breaks (in the spirit of btcd's fullblocktests).
//
// It must not be imported by non-test code: its solver is a plain loop, fine
// for regtest and simnet targets only.
package dagtest
