// Command dagnode is the dagnode daemon and its command-line tools.
//
//	dagnode [flags]                        run the node
//	dagnode keys newaddress [flags]        make a mining key and print its address
//	dagnode rpc [flags] METHOD [PARAMS...] call the node's JSON-RPC server
//
// The daemon opens the DAG in its data directory (an embedded pebble store),
// loads or creates the node identity, and mines when asked (--generate). It
// reads an optional TOML config file (--configfile, default
// ~/.dagnode/dagnode.toml); flags override the file. A bad flag or config
// value is reported with exit code 2 before anything is written. SIGINT or
// SIGTERM shut the node down in reverse order of start-up (miner, then the
// store, flushed and closed); a second signal forces an immediate exit.
//
// This is the only package that sees the concrete types of several parts and
// wires them together; it holds no node logic of its own.
package main
