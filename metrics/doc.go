// Package metrics is the node's metrics manager: it collects figures reported
// by the other parts of the node and hands out consistent snapshots of them.
//
// For now it keeps the block metrics of soterd's getblockmetrics RPC: how many
// blocks this node has mined that the DAG accepted, and the hashes and solve
// times of the most recent MaxBlockMetrics of them (see Manager.BlockMined and
// Manager.BlockMetrics).
//
// Producers (the miner, later gossip and sync) declare their own small
// interfaces with the methods they call, such as
//
//	type BlockRecorder interface{ BlockMined(hash string, solveTime time.Duration) }
//
// and cmd/dagnode passes them a *Manager. Every recording method is safe on a
// nil *Manager, so a component can run with metrics switched off.
//
// Prometheus export is planned as a strictly additive change: a method such as
// Register(prometheus.Registerer) error will add collectors backed by the same
// figures, while New, BlockMined, BlockMetrics and the BlockMetrics fields keep
// their signatures and meaning. The Manager's state is unexported so that it
// can grow without breaking callers.
//
// What this package must not do: it starts no goroutines and does no I/O (it
// only records and reports), it never blocks a producer beyond a short mutex
// hold, its memory use is bounded whatever the node's uptime, and it imports
// nothing else from this module.
package metrics
