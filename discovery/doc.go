// Package discovery finds peers of one network and keeps the node connected
// to them. It replaces soterd's address manager and the dial/retry half of
// its connection manager (btcd connmgr): the peer address pool is a DHT, a
// rendezvous namespace, mDNS and a small persisted list; the "keep N peers"
// loop dials from them with per-peer backoff.
//
// # Sources of peers
//
//   - Bootstrap peers (--bootstrap) are dialed at start and redialed with
//     backoff while fewer than TargetPeers are connected; they, the
//     persistent peers and the most recently seen stored peers seed the DHT.
//   - Persistent peers (--addpeer) are redialed with backoff whenever lost and
//     protected from the connection manager (Config.Protect).
//   - Connect peers (--connect) are then the only peers dialed: no DHT,
//     rendezvous, mDNS, bootstrap or stored peers; inbound is still allowed.
//   - The Kademlia DHT uses the protocol prefix /dagnode/<network> (so
//     /dagnode/<network>/kad/1.0.0); its mode is auto unless WithDHTMode
//     says otherwise (see below). Over it, a routing discovery advertises
//     this node under the namespace dagnode/<network> (again at 7/8 of the
//     returned TTL, at most every 3 h) and, while fewer than TargetPeers are
//     connected, looks the namespace up every discovery interval and dials
//     what it finds. Both run at once when the routing table gains its first
//     peer, then back off as before; while the table is empty no round is
//     tried (EmptyTableRounds counts them).
//   - mDNS announces and browses the service name dagnode-<network>.
//   - Stored peers: every peer that connects and whose identify lists a
//     protocol under /dagnode/<network>/ is saved with its peerstore
//     addresses and the time; at start the stored peers are loaded and, while
//     fewer than TargetPeers are connected, dialed (most recent first).
//
// # DHT mode
//
// A DHT only works if some nodes answer queries: a client's routing table
// holds servers only. kad-dht's ModeAuto is a client until the host learns
// it is public, and a host learns that from AutoNAT, which on loopback, on
// a LAN (private addresses are never "public" to libp2p) and for the first
// node of a network never says so: every node would be a client, no routing
// table would ever hold a peer, and nodes given one bootstrap address would
// never find each other. So DHTModeAuto (the default, --dhtmode auto) is
// kad-dht's ModeAutoServer: a server while reachability is unknown or
// public, a client once the host knows it is private (a home node behind a
// NAT, whose answers nobody outside could reach anyway). The host's
// reachability is the one its NAT monitor decides (AutoNAT v2 per address,
// then v1, or --reachability). DHTServing says what the DHT does now.
//
// The routing table only gains a peer after kad-dht's FIND_NODE check of a
// server that identified, and kad-dht has no event for it; a routing watch
// polls the table's size (every 25 ms, at most 15 s) after each DHT server
// identifies, and kicks the advertise and rendezvous loops on the first
// peer.
//
// Everything embeds the network name, so nodes of different networks never
// find each other; a peer of another network that connects anyway is not
// stored (dropping it is the host's peer tracker's job, not this package's).
//
// # Storage
//
// One datastore entry per peer at /discovery/peers/<peer ID> holding JSON
// {"seen": <unix milliseconds>, "addrs": ["<multiaddr>", ...]}, at most
// MaxAddrsPerPeer addresses and DefaultMaxStoredPeers entries (option
// WithMaxStoredPeers); the peer seen longest ago is evicted first. Corrupt
// entries are skipped with a Debug log, never fatal. The DHT's own records
// stay in memory.
//
// # Dialing
//
// Every dial has a timeout (WithDialTimeout), at most WithMaxConcurrentDials
// run at once, and each peer has an exponential backoff with full jitter
// between WithBackoff's bounds; it is reset only when a connection outlives
// the longest backoff, so a peer that accepts and drops at once keeps
// backing off. For configured peers (bootstrap, persistent, connect) this
// backoff replaces the swarm's own dial backoff. Every DHT call has a timeout
// (WithRoutingTimeout). The backoff table follows the peers: the entry of a
// peer that leaves after a stable connection is deleted, others once their
// backoff has run out for the longest backoff (configured peers keep
// theirs), and it never holds more than 4096 entries.
//
// # Lifecycle
//
// New validates and starts nothing; Start loads the store, builds the DHT and
// mDNS and starts the loops (event, dial, advertise, rendezvous, routing
// watch, mDNS), all
// counted in a WaitGroup; every wait in them also selects on shutdown. Close
// is idempotent: it cancels, closes mDNS, waits for the loops and the dials,
// then closes the DHT.
//
// What this package must not do: judge or disconnect peers (the host's peer
// tracker does), limit inbound connections (the connection manager does),
// open streams of its own protocols, or import other packages of this module.
package discovery
