// Package metrics is the node's metrics manager: it owns the node's one
// Prometheus registry, records the figures the other parts report, reads the
// figures they already keep when scraped, and serves the registry over HTTP.
//
// # Block metrics (getblockmetrics)
//
// It keeps the block metrics of soterd's getblockmetrics RPC: how many blocks
// this node has mined that the DAG accepted, and the hashes and solve times of
// the most recent MaxBlockMetrics of them (see Manager.BlockMined and
// Manager.BlockMetrics).
//
// # One registry
//
// New creates a prometheus.Registry holding the Go runtime (go_*) and process
// (process_*) collectors and dagnode's families below. cmd/dagnode passes
// Manager.Registry to host.Config.PrometheusRegisterer, so libp2p's own
// collectors (libp2p_swarm_*, libp2p_identify_*, libp2p_eventbus_*, the
// resource manager's libp2p_rcmgr_*, and libp2p_autonat_*, libp2p_holepunch_*,
// libp2p_relaysvc_*, libp2p_autorelay_* when those services run) land in the
// same registry. libp2p's collectors are process-wide variables: with several
// hosts in one process (tests) their values add up over all of them.
//
// # Feeding it
//
// Events are pushed through small methods that are no-ops on a nil *Manager,
// so a component runs unchanged with metrics off. Consumers declare the
// interface they call, next to their use, such as
//
//	type BlockRecorder interface{ BlockMined(hash string, solveTime time.Duration) }
//	type RequestObserver interface {
//		ObserveRequest(protocol, method string, d time.Duration, err error)
//	}
//
// and cmd/dagnode passes them the *Manager. Figures a part already keeps
// (DAG size, gossip and sync counters, the peer tracker's peers) are pulled
// at scrape time instead: cmd/dagnode gives SetSources functions that return
// the plain snapshot types of this package (DAGSnapshot, SyncSnapshot,
// GossipSnapshot, PeerCount), and RegisterGaugeFunc / RegisterCounterFunc
// add any other single figure under a dagnode_ name.
//
// # Families
//
//	family                                   type       labels                   fed by
//	dagnode_blocks_accepted_total            counter    source                   BlockAccepted (mined, gossip, sync, other)
//	dagnode_blocks_mined_total               counter    -                        BlockMined
//	dagnode_dag_blocks                       gauge      -                        Sources.DAG
//	dagnode_dag_tips                         gauge      -                        Sources.DAG
//	dagnode_dag_max_height                   gauge      -                        Sources.DAG
//	dagnode_sync_syncing                     gauge 0/1  -                        Sources.Sync
//	dagnode_sync_target_height               gauge      -                        Sources.Sync
//	dagnode_sync_blocks_per_second           gauge      -                        Sources.Sync
//	dagnode_sync_orphans                     gauge      -                        Sources.Sync
//	dagnode_sync_orphan_bytes                gauge      -                        Sources.Sync
//	dagnode_sync_orphan_fetches              gauge      -                        Sources.Sync
//	dagnode_sync_queue_full_total            counter    -                        Sources.Sync (peers' blocks dropped: queue full)
//	dagnode_sync_backoff_peers               gauge      -                        Sources.Sync
//	dagnode_sync_last_session_end            gauge 0/1  reason                   Sources.Sync
//	dagnode_peers                            gauge      direction, transport     Sources.Peers
//	dagnode_reachability                     gauge 0/1  state                    Sources.NAT (public, private, unknown)
//	dagnode_relay_addresses                  gauge      -                        Sources.NAT
//	dagnode_holepunch_total                  counter    result                   Sources.NAT (direct_dial, started,
//	                                                                             succeeded, failed)
//	dagnode_gossip_messages_total            counter    topic, result            Sources.Gossip (accepted, rejected,
//	                                                                             ignored, duplicate, orphan, dropped)
//	dagnode_gossip_mesh_peers                gauge      topic                    Sources.Gossip
//	dagnode_request_duration_seconds         histogram  protocol, method, result ObserveRequest (ok, error);
//	                                                                             buckets 1 ms to 32.8 s, doubling
//
// Families of an unset source are left out of the scrape. Other parts add
// theirs through RegisterGaugeFunc and RegisterCounterFunc: cmd/dagnode
// registers the dashboard's dagnode_ui_events_dropped_total,
// dagnode_ui_resyncs_total and dagnode_ui_blocks_lost_total.
//
// # The endpoint
//
// NewServer / Start / Close serve the registry at GET /metrics (every other
// path is 404) with read, write and idle timeouts, at most 4 scrapes at once
// and a 10 s gathering timeout. It is off unless the daemon is given
// --metrics host:port; it has no authentication, so bind it to loopback or a
// private address (a non-loopback address is logged at Warn). At most 64
// connections are open at once, 16 from one IP; more are closed at once
// (internal/connlimit). No label holds a file system path. A collector
// that fails (a panicking source, an invalid label) is logged and the rest
// is served.
//
// # What this package must not do
//
// It imports nothing else of this module but internal/connlimit, and
// nothing networked beyond net/http. Recording methods never block a producer beyond a short mutex
// hold or an atomic add, and never allocate on the hot path; memory use is
// bounded whatever the uptime: label values come only from fixed sets
// (BlockAccepted folds unknown sources into "other") or from the caller's own
// constants (topics, protocols, methods, transports), never from what a peer
// sent. A source function must not block: it runs on the scraping goroutine.
// The only goroutine is the Server's, started by Start and waited for by
// Close; a panicking source fails one scrape, never the node.
//
// The Manager's state is unexported so that it can grow without breaking
// callers; New, BlockMined, BlockMetrics and the BlockMetrics fields keep
// their signatures and meaning.
package metrics
