// Package natbed runs real dagnode processes in a NAT test bed built from
// Linux network namespaces (internal/netbed) and checks what a home node
// behind NAT must do: learn that it is private, hold a relay reservation,
// be reached through the relay, upgrade to a direct connection by hole
// punching through endpoint-independent NATs, fail truthfully through
// symmetric NATs, survive a new public address, and map a port by
// UPnP/NAT-PMP when the router offers it; and what discovery must do with
// default flags: home nodes on one LAN find each other through one
// bootstrap chain or by mDNS alone, and the network's first public node
// learns that it is public (and serves relay and DHT) without
// --reachability once home nodes have connected.
//
// The package has tests only. They build cmd/dagnode with `go build`,
// start each node with `ip netns exec`, and watch the nodes through their
// JSON-RPC servers (dialled from inside each namespace). They need root,
// iproute2 and nftables (miniupnpd for the UPnP scenario); without them they
// skip and say why. Every step has a deadline, and each step's time is
// logged ("step" lines, visible with -v) for the closing report.
//
// What this package must not do: touch the machine's own network
// configuration or send traffic outside the namespaces a test made (netbed
// guarantees both), or reach into a node other than through its RPC.
package natbed
