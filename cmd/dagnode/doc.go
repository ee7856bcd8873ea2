// Command dagnode is the dagnode daemon and its command-line tools.
//
//	dagnode [flags]                        run the node
//	dagnode keys newaddress [flags]        make a mining key and print its address
//	dagnode rpc [flags] METHOD [PARAMS...] call the node's JSON-RPC server
//	dagnode devnet [flags]                 run a local network of N nodes, M mining
//
// devnet starts N dagnode processes (this same executable) on loopback with
// OS-chosen ports, one data directory each (under --dir, or a temporary
// directory removed at exit), each after the first bootstrapped off the
// first (discovery does the rest; mDNS and UPnP off), M of them mining with
// one worker; it prints a table (node, pid, peer ID, P2P and RPC address,
// data directory) and each node's log goes to <dir>/dagnode.log. A node
// that dies is reported on stderr. SIGINT or SIGTERM stop every node with
// one SIGINT (they run in their own process groups, so a terminal's Ctrl-C
// reaches devnet only), then SIGKILL after 15 s; devnet returns once all
// have exited. With --latency D (root and /dev/net/tun) each node runs in a
// network namespace of its own (internal/netbed) behind a TUN device, devnet
// forwards their packets with D one way between any two nodes
// (internal/netbed/wire), and each node's RPC server and dashboard are
// forwarded to the host's loopback; the namespaces are deleted once the
// nodes have stopped.
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
