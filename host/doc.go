// Package host builds the node's libp2p host and keeps the peer tracker: the
// one place that holds per-peer state and decides penalties and bans.
//
// # The host
//
// New turns a Config into libp2p options and returns a core/host.Host:
// TCP and QUIC-v1 transports (by default on 0.0.0.0 and :: at DefaultPort of
// the network: mainnet 9700, testnet 9701, simnet 9702, regtest 9703), Noise
// and TLS security, yamux, a connection manager (DefaultLowWater /
// DefaultHighWater / DefaultGracePeriod unless configured), a resource manager
// whose system and transient limits are raised so that HighWater peers never
// hit them (see limits.go for the arithmetic), and NAT traversal (nat.go,
// relay.go, holepunch.go):
//
//   - UPnP/NAT-PMP port mapping, unless DisableNAT;
//   - AutoNAT v1 and v2 clients, and their services for other peers unless
//     DisableNATService, rate limited (AutoNATGlobalLimit, AutoNATPeerLimit);
//     libp2p serves them while the node is public or does not know yet;
//   - AutoRelay while the node is private: reservations on AutoRelayNumRelays
//     relays, StaticRelays first, then connected peers that run the relay
//     service on a public address;
//   - the circuit relay v2 service while public, unless DisableRelayService,
//     within RelayResources (2 min and 128 KiB per circuit, 64 reservations,
//     4 per IP): a relayed link reaches a home node and carries a hole punch,
//     never blocks;
//   - DCUtR hole punching, traced into the Tracker (Trace);
//   - ForceReachability for servers (or nodes) that know their reachability;
//   - ExternalAddrs, addresses the operator knows (a port forward), added to
//     the host's addresses (libp2p AddrsFactory), so identify and the DHT
//     announce them.
//
// CheckListenPorts tries the listen ports before the node writes anything:
// libp2p listens with SO_REUSEPORT, so a port another process holds would
// otherwise be shared silently; a *PortInUseError names the port.
//
// NATMonitor follows reachability (AutoNAT v1, with its confidence read back
// from libp2p's metrics), AutoNAT v2's per-address verdicts, libp2p's NAT
// type guess, the addresses peers observe us at (identify) and our relay
// addresses; it logs changes at Info. It also decides the host's
// reachability: public as soon as AutoNAT v2 has confirmed one of our
// addresses (two agreeing dial-backs, which any peer can serve, home nodes
// included), else AutoNAT v1's verdict (which only asks peers listing a
// public address, so the first public node of a network, surrounded by home
// nodes, never hears one). When that differs from the last
// EvtLocalReachabilityChanged on the bus it emits one itself, so the relay
// service, AutoRelay, the DHT mode and getnetworkinfo follow the same value;
// with ForceReachability it only watches. Loopback and private addresses are
// never public to libp2p: on them reachability stays unknown. Identify announces the agent
// "dagnode/<Version>" and the protocol version "/dagnode/<network>".
// libp2p's Prometheus metrics go to Config.PrometheusRegisterer, or are off.
// FullAddrs gives the addresses (with /p2p/<id>) other nodes dial.
//
// # The tracker
//
// A Tracker is made before the host and given to New, where it becomes the
// connection gater (a banned peer is refused when we dial it and when it
// dials us; when the ban expires it may connect again) and the bandwidth
// reporter. Start(h) then follows the host's events: a peer's state appears
// when it connects, gets identify's agent and protocols, is pinged every
// ping interval (latency: the peerstore's moving average), and disappears
// when the last connection closes. Bans and scores outlive connections
// (in memory only). Peers and Peer return PeerInfo snapshots (with every
// connection, direct ones first, and the peer's hole punch record; a peer
// reached only through a relay is Relayed and is not pinged); the sync
// protocol records each peer's dag.Status with SetStatus and its sync peer
// with SetSyncPeer, which also protects that peer from trimming.
//
// # Misbehaviour
//
// Consumers never decide penalties: they declare
//
//	type Penalizer interface{ Penalize(p peer.ID, err error) }
//
// and pass the typed error. Penalize classifies it with errors.As:
//
//	*Misbehavior            its own Penalty (MalformedMessage 20, OversizeMessage 50,
//	                        UnrequestedBlock 10, Stall 10, WrongNetwork 100)
//	error with Penalty() int  that weight (syncproto.ProtocolError: malformed frame 100,
//	                        unrequested block 50, empty promise 50, stall 34, wrong network 100)
//	*dag.RuleError          BanThreshold: an invalid block is never honest; except
//	                        ErrTimeTooNew (depends on our clock): PenaltyFutureBlock 20
//	*dag.MissingParentsError, dag.ErrDuplicateBlock, context.Canceled: no penalty
//	anything else           PenaltyDefault 2
//
// Scores decay, halving every ScoreHalfLife (a minute); at BanThreshold (100)
// the peer is banned for the ban duration (DefaultBanDuration, a day) and
// disconnected. Stats counts penalties, ignored errors, bans and refusals.
// The tables that outlive connections are bounded, as peer IDs are free: at
// most MaxBans bans (a new one lifts the ban that expires first), 4096
// scores (the lowest goes), 512 hole punch records; a peer's state goes when
// its last connection closes. The node never bans itself.
//
// What this package must not do: speak any protocol of ours, import any
// package of this module but dag, or own the host's lifetime beyond New (the
// caller closes the host; Tracker.Close works before or after that).
package host
