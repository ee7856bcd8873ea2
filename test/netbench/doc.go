// Package netbench is the realistic network bench of dagnode (issue 14): N
// real dagnode processes, each in its own network namespace, over links with
// latency, jitter and a rate cap, mining at a steady rate at random nodes;
// then, on the same namespaces, links and connection graph, N bare GossipSub
// processes (bareps) sending messages of a block's size at the same times from
// the same nodes. It reports the arrival delay of every block at every node
// (p50, p99, and the ratio dagnode/bare, whose goal is at most 1.1), the bytes
// each node received per block (duplicates, control and background traffic
// included) and the resident memory of each process.
//
// # The network
//
// internal/netbed makes one namespace per node with a TUN device as eth0
// (netbed.AddTUN, public addresses 11.0.0.10, .11, ...). The wire program
// (./wire, which runs internal/netbed/wire in a process of its own) forwards
// packets between them: each node's access link has a
// one-way delay drawn from 10-30 ms (seeded, so node-to-node one-way delay is
// 20-60 ms), plus or minus 2 ms of jitter per packet and link without
// reordering, and a 20 Mbit/s cap in each direction. The links are modelled
// in userspace because the kernels this runs on may lack sch_netem (this
// machine's does: tc knows only htb, tbf and fifo). Each node i > 0 is given
// 2-3 random earlier nodes to bootstrap from (the same seeded graph every
// run); beyond that dagnode discovers peers with its defaults (DHT,
// rendezvous). The bare run then connects exactly the graph the dagnode
// nodes had formed when mining started (each peer given by its TCP and QUIC
// addresses, so libp2p picks as for dagnode), and runs a DHT server too.
//
// # The runs
//
// dagnode runs with its default flags: regtest, default ports (each namespace
// has its own), a data directory and cookie auth, plus --loglevel debug (the
// arrival times are the nodes' own debug log lines: "block published" at the
// miner, the first "block accepted" at every other node; timestamps in ms,
// one shared clock) and --nomdns (every node is on one simulated internet, not
// a LAN; with mDNS the bed's namespaces would not see each other anyway, but
// the flag says that nothing but bootstrap and DHT is meant). Debug also turns
// on go-libp2p-pubsub's tracing of every RPC sent and received (through the
// node's logger), which costs the node CPU that a node at info level does not
// spend: until the node logs block arrival at info (or keeps pubsub's logger
// at info), the dagnode figures carry that cost. A block is mined
// every 500 ms by `generate 1` over JSON-RPC at a seeded random node. bareps
// publishes a message of the mean block size on a command from the test at
// the same times from the same nodes and logs arrivals in ns.
//
// Every binary (dagnode, bareps, wire) is built once with a plain `go build`,
// never with -race, even when the test itself runs under -race, so that the
// times are those of the shipped program.
//
//	go test -count=1 -run NetBench -v ./test/netbench/                             # 12 nodes, 40 blocks (CI)
//	DAGNODE_NETBENCH_NODES=50 DAGNODE_NETBENCH_BLOCKS=120 go test -count=1 -run NetBench -v -timeout 20m ./test/netbench/
//	go test -run '^$' -bench NetBench -benchtime 1x -timeout 20m ./test/netbench/  # 50 nodes, 120 blocks
//
// # What it must not do
//
// The test asserts only what must hold (every block reaches every node, in
// both runs); figures are logged and reported, never compared with a
// threshold, as they depend on the machine. It needs root, iproute2 and
// nftables (netbed's probe) and /dev/net/tun, and skips saying why elsewhere
// and under -short. It must not touch the machine's own network (netbed's
// guarantee: all traffic stays in the bed's namespaces and the wire), and
// it ends only the processes it started, by their handles; the bed's cleanup
// deletes the namespaces.
package netbench
