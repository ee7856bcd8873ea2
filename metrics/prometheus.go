package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace starts the name of every dagnode family ("dagnode_").
const Namespace = "dagnode"

// Sources of accepted blocks, the values of the "source" label of
// dagnode_blocks_accepted_total.
const (
	SourceMined  = "mined"
	SourceGossip = "gossip"
	SourceSync   = "sync"
	// SourceOther is where BlockAccepted counts any other source string, so
	// that a caller's typo cannot add label values without bound.
	SourceOther = "other"
)

// Indexes into Manager.accepted, in the order of sourceNames.
const (
	srcMined = iota
	srcGossip
	srcSync
	srcOther
	numSources
)

var sourceNames = [numSources]string{SourceMined, SourceGossip, SourceSync, SourceOther}

// Results of a request, the values of the "result" label of
// dagnode_request_duration_seconds.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// requestBuckets are the upper bounds, in seconds, of
// dagnode_request_duration_seconds: 1 ms doubling up to 32.8 s, from a
// loopback round trip to a request that ran into a 30 s timeout.
var requestBuckets = prometheus.ExponentialBuckets(0.001, 2, 16)

// Handler limits.
const (
	// scrapeTimeout bounds one gathering: Prometheus's default
	// scrape_timeout is 10 s, after which nobody reads the answer.
	scrapeTimeout = 10 * time.Second
	// maxScrapes is how many scrapes may run at once; more are answered 503.
	// One or two scrapers are normal; gathering costs a source snapshot each.
	maxScrapes = 4
)

// Descriptions of the families collected at scrape time. A Desc is
// immutable, so one set serves every Manager's registry.
var (
	descMined = prometheus.NewDesc(Namespace+"_blocks_mined_total",
		"Blocks this node mined that the DAG accepted.", nil, nil)
	descDAGBlocks = prometheus.NewDesc(Namespace+"_dag_blocks",
		"Blocks in the DAG, genesis included.", nil, nil)
	descDAGTips = prometheus.NewDesc(Namespace+"_dag_tips",
		"Blocks in the DAG without children.", nil, nil)
	descDAGMaxHeight = prometheus.NewDesc(Namespace+"_dag_max_height",
		"Greatest block height in the DAG.", nil, nil)
	descSyncing = prometheus.NewDesc(Namespace+"_sync_syncing",
		"1 while the node is catching up with a sync peer, else 0.", nil, nil)
	descSyncTarget = prometheus.NewDesc(Namespace+"_sync_target_height",
		"Greatest height announced by the peers; the DAG has caught up when dagnode_dag_max_height reaches it.", nil, nil)
	descSyncRate = prometheus.NewDesc(Namespace+"_sync_blocks_per_second",
		"Blocks per second added by the current sync session, 0 when idle.", nil, nil)
	descOrphans = prometheus.NewDesc(Namespace+"_sync_orphans",
		"Blocks in the orphan pool (parents not yet known).", nil, nil)
	descOrphanBytes = prometheus.NewDesc(Namespace+"_sync_orphan_bytes",
		"Encoded size of the blocks in the orphan pool.", nil, nil)
	descOrphanFetches = prometheus.NewDesc(Namespace+"_sync_orphan_fetches",
		"Orphan-parent fetches in flight.", nil, nil)
	descSyncQueueFull = prometheus.NewDesc(Namespace+"_sync_queue_full_total",
		"Peers' blocks dropped because the sync manager's queue was full (not forwarded; sync brings them later).", nil, nil)
	descSyncBackoffs = prometheus.NewDesc(Namespace+"_sync_backoff_peers",
		"Peers not elected as sync peer until their election backoff ends.", nil, nil)
	descLastSession = prometheus.NewDesc(Namespace+"_sync_last_session_end",
		"1 for the reason the last sync session ended (done, stalled, offense, fault, ...), absent before the first.",
		[]string{"reason"}, nil)
	descPeers = prometheus.NewDesc(Namespace+"_peers",
		"Connected peers by connection direction and transport.", []string{"direction", "transport"}, nil)
	descReach = prometheus.NewDesc(Namespace+"_reachability",
		"1 for the node's current reachability (public, private, unknown), 0 for the others.", []string{"state"}, nil)
	descRelayAddrs = prometheus.NewDesc(Namespace+"_relay_addresses",
		"Relay (/p2p-circuit) addresses this node holds, one per relay reservation.", nil, nil)
	descHolePunch = prometheus.NewDesc(Namespace+"_holepunch_total",
		"Upgrades of relayed connections to direct ones: direct_dial (no punch needed), started, succeeded, failed.",
		[]string{"result"}, nil)
	descGossip = prometheus.NewDesc(Namespace+"_gossip_messages_total",
		"Gossip messages per topic by outcome: accepted, rejected, ignored, duplicate, orphan, dropped.",
		[]string{"topic", "result"}, nil)
	descMesh = prometheus.NewDesc(Namespace+"_gossip_mesh_peers",
		"Peers in our GossipSub mesh per topic.", []string{"topic"}, nil)
)

// DAGSnapshot is the size of the DAG at one moment.
type DAGSnapshot struct {
	// Blocks is the number of blocks, genesis included.
	Blocks int
	// Tips is the number of blocks without children.
	Tips int
	// MaxHeight is the greatest block height.
	MaxHeight int64
}

// SyncSnapshot is the sync manager's progress at one moment.
type SyncSnapshot struct {
	// Syncing reports that the node is catching up with a sync peer.
	Syncing bool
	// TargetHeight is the greatest height the peers announced (0: unknown).
	TargetHeight int64
	// BlocksPerSecond is the rate at which the current session adds blocks.
	BlocksPerSecond float64
	// Orphans and OrphanBytes are the orphan pool's size, OrphanFetches
	// the orphan-parent fetches in flight.
	Orphans, OrphanBytes, OrphanFetches int
	// QueueFull counts peers' blocks dropped because the sync manager's
	// queue was full.
	QueueFull uint64
	// BackoffPeers counts the peers in election backoff.
	BackoffPeers int
	// LastSessionEnd is why the last session ended ("" before the first).
	LastSessionEnd string
}

// GossipSnapshot is one topic's gossip counters at one moment. The counters
// only grow while the node runs.
type GossipSnapshot struct {
	// Topic is the topic name, such as "/dagnode/mainnet/blocks/1".
	Topic string
	// Accepted, Rejected, Ignored, Duplicate, Orphan and Dropped count
	// messages by outcome; each becomes one "result" of
	// dagnode_gossip_messages_total.
	Accepted, Rejected, Ignored, Duplicate, Orphan, Dropped uint64
	// MeshPeers is the current size of our mesh on the topic.
	MeshPeers int
}

// PeerCount is how many connected peers share a direction ("inbound",
// "outbound") and transport ("tcp", "quic", "relay", ...). Counts of equal
// (Direction, Transport) pairs are added up, so a source may also return one
// PeerCount with N 1 per peer. Empty strings become "unknown".
type PeerCount struct {
	Direction, Transport string
	N                    int
}

// NATSnapshot is the node's NAT traversal state at one moment.
type NATSnapshot struct {
	// Reachability is "public", "private" or "unknown" (anything else
	// counts as unknown).
	Reachability string
	// RelayAddrs is how many relay addresses the node holds.
	RelayAddrs int
	// DirectDials, HolePunchStarted, HolePunchSucceeded and HolePunchFailed
	// are running totals of relayed connections' upgrades.
	DirectDials, HolePunchStarted, HolePunchSucceeded, HolePunchFailed uint64
}

// Sources are the functions a scrape reads its snapshots from. A nil field
// leaves its families out of the scrape. The functions run on the scraping
// goroutine, possibly concurrently, so they must be safe for concurrent use
// and quick (take atomic counters or a short read lock; never wait on an
// event loop that may be stuck). A function that panics fails its families
// for that scrape only. The strings they return become label values, so they
// must come from a small fixed set, never from what a peer sent.
type Sources struct {
	DAG    func() DAGSnapshot
	Sync   func() SyncSnapshot
	Gossip func() []GossipSnapshot
	Peers  func() []PeerCount
	NAT    func() NATSnapshot
}

// New returns a Manager with a fresh registry holding the Go runtime and
// process collectors and dagnode's own families. It starts nothing.
func New() *Manager {
	m := &Manager{reg: prometheus.NewRegistry()}
	accepted := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "blocks_accepted_total",
		Help:      "Blocks added to the DAG by source: mined, gossip, sync, other.",
	}, []string{"source"})
	for i, s := range sourceNames {
		m.accepted[i] = accepted.WithLabelValues(s)
	}
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace,
		Name:      "request_duration_seconds",
		Help:      "Duration of requests to peers and of RPC calls, by protocol, method and result (ok, error).",
		Buckets:   requestBuckets,
	}, []string{"protocol", "method", "result"})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		accepted,
		m.requests,
		collector{m},
	)
	return m
}

// Registry returns the node's registry, for libp2p's collectors
// (host.Config.PrometheusRegisterer) and any other. On a nil *Manager it
// returns nil; do not put that nil pointer into a prometheus.Registerer
// interface, which would then not compare equal to nil.
func (m *Manager) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler returns the Prometheus exposition handler for the registry. A
// failing collector is logged on slog.Default() and the rest is served. On a
// nil *Manager it answers 404.
func (m *Manager) Handler() http.Handler { return m.handler(slog.Default()) }

func (m *Manager) handler(log *slog.Logger) http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            promLogger{log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapes,
		Timeout:             scrapeTimeout,
	})
}

// promLogger passes promhttp's errors to slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Warn("metrics gathering failed", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}

// BlockAccepted counts a block added to the DAG under dagnode_blocks_accepted_total
// with its source: SourceMined, SourceGossip or SourceSync (anything else is
// counted as SourceOther). The one writer of the DAG calls it once per block.
// It is independent of BlockMined, which the miner calls. Calling it on a nil
// *Manager does nothing.
func (m *Manager) BlockAccepted(source string) {
	if m == nil {
		return
	}
	i := srcOther
	switch source {
	case SourceMined:
		i = srcMined
	case SourceGossip:
		i = srcGossip
	case SourceSync:
		i = srcSync
	}
	m.accepted[i].Inc()
}

// ObserveRequest records the duration d of one request under
// dagnode_request_duration_seconds, labelled with protocol (such as
// "sync" or "rpc"), method (such as "getblocks" or "getblockmetrics") and
// result ResultOK, or ResultError when err is not nil. protocol and method
// must come from a small fixed set of the caller's constants, never from what
// a peer sent. Calling it on a nil *Manager does nothing.
func (m *Manager) ObserveRequest(protocol, method string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := ResultOK
	if err != nil {
		result = ResultError
	}
	o, lerr := m.requests.GetMetricWithLabelValues(protocol, method, result)
	if lerr != nil { // invalid UTF-8: drop rather than panic
		return
	}
	o.Observe(d.Seconds())
}

// SetSources sets the snapshot functions the next scrapes read; it replaces
// those set before. Calling it on a nil *Manager does nothing.
func (m *Manager) SetSources(s Sources) {
	if m == nil {
		return
	}
	m.sources.Store(&s)
}

// RegisterGaugeFunc adds the gauge name, read from f at every scrape: for a
// figure a part already keeps, such as the sync manager's orphan count. name
// must start with "dagnode_"; f has the same contract as a Sources function.
// It fails on an invalid or already registered name. On a nil *Manager it
// does nothing and returns nil.
func (m *Manager) RegisterGaugeFunc(name, help string, f func() float64) error {
	return m.registerFunc(name, help, prometheus.GaugeValue, f)
}

// RegisterCounterFunc is RegisterGaugeFunc for a counter: f must never
// decrease while the node runs, and name must end in "_total".
func (m *Manager) RegisterCounterFunc(name, help string, f func() float64) error {
	if m != nil && !strings.HasSuffix(name, "_total") {
		return fmt.Errorf("metrics: counter %q does not end in _total", name)
	}
	return m.registerFunc(name, help, prometheus.CounterValue, f)
}

func (m *Manager) registerFunc(name, help string, typ prometheus.ValueType, f func() float64) error {
	if m == nil {
		return nil
	}
	if f == nil {
		return fmt.Errorf("metrics: %s has no function", name)
	}
	if !strings.HasPrefix(name, Namespace+"_") || !validName(name) {
		return fmt.Errorf("metrics: invalid name %q (want %s_ then letters, digits and _)", name, Namespace)
	}
	if help == "" {
		return fmt.Errorf("metrics: %s has no help text", name)
	}
	if err := m.reg.Register(funcCollector{name, prometheus.NewDesc(name, help, nil, nil), typ, f}); err != nil {
		return fmt.Errorf("metrics: register %s: %w", name, err)
	}
	return nil
}

// validName reports whether name is a classic Prometheus metric name, which
// every scraper accepts without quoting: [a-zA-Z_:][a-zA-Z0-9_:]*.
func validName(name string) bool {
	for i, c := range name {
		switch {
		case c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return name != ""
}

// funcCollector is one metric read from a function at scrape time.
type funcCollector struct {
	name string
	desc *prometheus.Desc
	typ  prometheus.ValueType
	f    func() float64
}

func (c funcCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c funcCollector) Collect(ch chan<- prometheus.Metric) {
	v, err := call(c.name, c.f)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	ch <- constMetric(c.desc, c.typ, v)
}

// collector collects the Manager's scrape-time families: the mined-block
// count and whatever the Sources give.
type collector struct{ m *Manager }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descMined, descDAGBlocks, descDAGTips, descDAGMaxHeight,
		descSyncing, descSyncTarget, descSyncRate, descOrphans, descOrphanBytes, descOrphanFetches, descSyncQueueFull,
		descSyncBackoffs, descLastSession, descPeers, descGossip, descMesh,
		descReach, descRelayAddrs, descHolePunch,
	} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	mined := c.m.blkGenCount
	c.m.mu.Unlock()
	ch <- constMetric(descMined, prometheus.CounterValue, float64(mined))

	src := c.m.sources.Load()
	if src == nil {
		return
	}
	if src.DAG != nil {
		if s, err := call("DAG", src.DAG); err != nil {
			ch <- prometheus.NewInvalidMetric(descDAGBlocks, err)
		} else {
			ch <- constMetric(descDAGBlocks, prometheus.GaugeValue, float64(s.Blocks))
			ch <- constMetric(descDAGTips, prometheus.GaugeValue, float64(s.Tips))
			ch <- constMetric(descDAGMaxHeight, prometheus.GaugeValue, float64(s.MaxHeight))
		}
	}
	if src.Sync != nil {
		if s, err := call("Sync", src.Sync); err != nil {
			ch <- prometheus.NewInvalidMetric(descSyncing, err)
		} else {
			syncing := 0.0
			if s.Syncing {
				syncing = 1
			}
			ch <- constMetric(descSyncing, prometheus.GaugeValue, syncing)
			ch <- constMetric(descSyncTarget, prometheus.GaugeValue, float64(s.TargetHeight))
			ch <- constMetric(descSyncRate, prometheus.GaugeValue, s.BlocksPerSecond)
			ch <- constMetric(descOrphans, prometheus.GaugeValue, float64(s.Orphans))
			ch <- constMetric(descOrphanBytes, prometheus.GaugeValue, float64(s.OrphanBytes))
			ch <- constMetric(descOrphanFetches, prometheus.GaugeValue, float64(s.OrphanFetches))
			ch <- constMetric(descSyncQueueFull, prometheus.CounterValue, float64(s.QueueFull))
			ch <- constMetric(descSyncBackoffs, prometheus.GaugeValue, float64(s.BackoffPeers))
			if s.LastSessionEnd != "" {
				ch <- constMetric(descLastSession, prometheus.GaugeValue, 1, s.LastSessionEnd)
			}
		}
	}
	if src.Gossip != nil {
		collectGossip(ch, src.Gossip)
	}
	if src.Peers != nil {
		collectPeers(ch, src.Peers)
	}
	if src.NAT != nil {
		collectNAT(ch, src.NAT)
	}
}

// reachabilityStates are the values of dagnode_reachability's label.
var reachabilityStates = []string{"public", "private", "unknown"}

func collectNAT(ch chan<- prometheus.Metric, f func() NATSnapshot) {
	s, err := call("NAT", f)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descReach, err)
		return
	}
	for _, state := range reachabilityStates {
		v := 0.0
		if state == orUnknown(s.Reachability) {
			v = 1
		}
		ch <- constMetric(descReach, prometheus.GaugeValue, v, state)
	}
	ch <- constMetric(descRelayAddrs, prometheus.GaugeValue, float64(s.RelayAddrs))
	for _, r := range []struct {
		name string
		n    uint64
	}{{"direct_dial", s.DirectDials}, {"started", s.HolePunchStarted}, {"succeeded", s.HolePunchSucceeded}, {"failed", s.HolePunchFailed}} {
		ch <- constMetric(descHolePunch, prometheus.CounterValue, float64(r.n), r.name)
	}
}

func collectGossip(ch chan<- prometheus.Metric, f func() []GossipSnapshot) {
	snaps, err := call("Gossip", f)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descGossip, err)
		return
	}
	// Add up repeated topics: a family must not hold one series twice.
	byTopic := make(map[string]GossipSnapshot, len(snaps))
	for _, s := range snaps {
		t := byTopic[s.Topic]
		t.Accepted += s.Accepted
		t.Rejected += s.Rejected
		t.Ignored += s.Ignored
		t.Duplicate += s.Duplicate
		t.Orphan += s.Orphan
		t.Dropped += s.Dropped
		t.MeshPeers += s.MeshPeers
		byTopic[s.Topic] = t
	}
	for topic, s := range byTopic {
		for _, r := range []struct {
			result string
			n      uint64
		}{
			{"accepted", s.Accepted}, {"rejected", s.Rejected}, {"ignored", s.Ignored},
			{"duplicate", s.Duplicate}, {"orphan", s.Orphan}, {"dropped", s.Dropped},
		} {
			ch <- constMetric(descGossip, prometheus.CounterValue, float64(r.n), topic, r.result)
		}
		ch <- constMetric(descMesh, prometheus.GaugeValue, float64(s.MeshPeers), topic)
	}
}

func collectPeers(ch chan<- prometheus.Metric, f func() []PeerCount) {
	counts, err := call("Peers", f)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPeers, err)
		return
	}
	type key struct{ dir, tr string }
	sum := make(map[key]int, len(counts))
	for _, c := range counts {
		sum[key{orUnknown(c.Direction), orUnknown(c.Transport)}] += c.N
	}
	for k, n := range sum {
		ch <- constMetric(descPeers, prometheus.GaugeValue, float64(n), k.dir, k.tr)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// constMetric is prometheus.NewConstMetric that reports a bad label value
// (invalid UTF-8) in the scrape instead of panicking.
func constMetric(d *prometheus.Desc, typ prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, typ, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}

// errPanic marks an error made from a source's panic.
var errPanic = errors.New("panicked")

// call returns f(), turning a panic into an error: collectors run on
// goroutines of their own during a scrape, where a panic would end the node.
func call[T any](name string, f func() T) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("metrics: source %s %w: %v", name, errPanic, r)
		}
	}()
	return f(), nil
}
