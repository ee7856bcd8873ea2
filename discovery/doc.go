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
//     /dagnode/<network>/kad/1.0.0); its mode is auto (server when AutoNAT
//     says publicly reachable) unless WithDHTMode says otherwise. Over it, a
//     routing discovery advertises this node under the namespace
//     dagnode/<network> (again at 7/8 of the returned TTL, at most every 3 h)
//     and, while fewer than TargetPeers are connected, looks the namespace up
//     every discovery interval and dials what it finds.
//   - mDNS announces and browses the service name dagnode-<network>.
//   - Stored peers: every peer that connects and whose identify lists a
//     protocol under /dagnode/<network>/ is saved with its peerstore
//     addresses and the time; at start the stored peers are loaded and, while
//     fewer than TargetPeers are connected, dialed (most recent first).
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
// (WithRoutingTimeout).
//
// # Lifecycle
//
// New validates and starts nothing; Start loads the store, builds the DHT and
// mDNS and starts the loops (event, dial, advertise, rendezvous, mDNS), all
// counted in a WaitGroup; every wait in them also selects on shutdown. Close
// is idempotent: it cancels, closes mDNS, waits for the loops and the dials,
// then closes the DHT.
//
// What this package must not do: judge or disconnect peers (the host's peer
// tracker does), limit inbound connections (the connection manager does),
// open streams of its own protocols, or import other packages of this module.
package discovery
