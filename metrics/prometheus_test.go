package metrics

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startServer serves m on a loopback port chosen by the OS until the test ends.
func startServer(t testing.TB, m *Manager, log *slog.Logger) *Server {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := NewServer("127.0.0.1:0", m, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// get does a request to the server and returns the status code and body.
func get(t testing.TB, s *Server, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.Addr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape returns the body of GET /metrics, failing the test on another status.
func scrape(t testing.TB, s *Server) string {
	t.Helper()
	code, body := get(t, s, http.MethodGet, Path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", Path, code, body)
	}
	return body
}

// wantLines fails the test for every line missing from a scrape body.
func wantLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	have := make(map[string]bool)
	for l := range strings.Lines(body) {
		have[strings.TrimSuffix(l, "\n")] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("scrape lacks %q", l)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's and the test's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

const topic = "/dagnode/regtest/blocks/1"

func TestScrape(t *testing.T) {
	m := New()
	var blocks atomic.Int64
	blocks.Store(42)
	m.SetSources(Sources{
		DAG: func() DAGSnapshot { return DAGSnapshot{Blocks: int(blocks.Load()), Tips: 3, MaxHeight: 17} },
		Sync: func() SyncSnapshot {
			return SyncSnapshot{Syncing: true, TargetHeight: 100, BlocksPerSecond: 12.5,
				Orphans: 3, OrphanBytes: 900, OrphanFetches: 2, QueueFull: 11, BackoffPeers: 1, LastSessionEnd: "stalled"}
		},
		Gossip: func() []GossipSnapshot {
			return []GossipSnapshot{{
				Topic: topic, Accepted: 7, Rejected: 1, Ignored: 2, Duplicate: 3, Orphan: 4, Dropped: 5, MeshPeers: 6,
			}}
		},
		Peers: func() []PeerCount {
			return []PeerCount{
				{Direction: "inbound", Transport: "tcp", N: 2},
				{Direction: "outbound", Transport: "quic", N: 4},
				{Direction: "inbound", Transport: "tcp", N: 1}, // added to the first
				{Transport: "relay", N: 1},
			}
		},
	})
	m.BlockAccepted(SourceGossip)
	m.BlockAccepted(SourceGossip)
	m.BlockAccepted(SourceSync)
	m.BlockAccepted("bogus")
	m.BlockMined("aa", time.Second)
	m.ObserveRequest("sync", "getblocks", 3*time.Millisecond, nil)
	m.ObserveRequest("sync", "getblocks", time.Minute, errors.New("timeout"))
	m.ObserveRequest("rpc", "getblockmetrics", 500*time.Microsecond, nil)
	queued := 5.0
	if err := m.RegisterGaugeFunc("dagnode_test_queued", "Blocks waiting in a test queue.",
		func() float64 { return queued }); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterCounterFunc("dagnode_sync_stalls_total", "Sync sessions ended by a stall.",
		func() float64 { return 9 }); err != nil {
		t.Fatal(err)
	}

	s := startServer(t, m, nil)
	body := scrape(t, s)
	wantLines(t, body,
		`dagnode_blocks_accepted_total{source="mined"} 0`,
		`dagnode_blocks_accepted_total{source="gossip"} 2`,
		`dagnode_blocks_accepted_total{source="sync"} 1`,
		`dagnode_blocks_accepted_total{source="other"} 1`,
		`dagnode_blocks_mined_total 1`,
		`dagnode_dag_blocks 42`,
		`dagnode_dag_tips 3`,
		`dagnode_dag_max_height 17`,
		`dagnode_sync_syncing 1`,
		`dagnode_sync_target_height 100`,
		`dagnode_sync_blocks_per_second 12.5`,
		`dagnode_sync_orphans 3`,
		`dagnode_sync_orphan_bytes 900`,
		`dagnode_sync_orphan_fetches 2`,
		`dagnode_sync_queue_full_total 11`,
		`dagnode_sync_backoff_peers 1`,
		`dagnode_sync_last_session_end{reason="stalled"} 1`,
		`dagnode_peers{direction="inbound",transport="tcp"} 3`,
		`dagnode_peers{direction="outbound",transport="quic"} 4`,
		`dagnode_peers{direction="unknown",transport="relay"} 1`,
		`dagnode_gossip_messages_total{result="accepted",topic="`+topic+`"} 7`,
		`dagnode_gossip_messages_total{result="rejected",topic="`+topic+`"} 1`,
		`dagnode_gossip_messages_total{result="ignored",topic="`+topic+`"} 2`,
		`dagnode_gossip_messages_total{result="duplicate",topic="`+topic+`"} 3`,
		`dagnode_gossip_messages_total{result="orphan",topic="`+topic+`"} 4`,
		`dagnode_gossip_messages_total{result="dropped",topic="`+topic+`"} 5`,
		`dagnode_gossip_mesh_peers{topic="`+topic+`"} 6`,
		`# TYPE dagnode_request_duration_seconds histogram`,
		`dagnode_request_duration_seconds_bucket{method="getblocks",protocol="sync",result="ok",le="0.002"} 0`,
		`dagnode_request_duration_seconds_bucket{method="getblocks",protocol="sync",result="ok",le="0.004"} 1`,
		`dagnode_request_duration_seconds_count{method="getblocks",protocol="sync",result="ok"} 1`,
		`dagnode_request_duration_seconds_bucket{method="getblocks",protocol="sync",result="error",le="32.768"} 0`,
		`dagnode_request_duration_seconds_bucket{method="getblocks",protocol="sync",result="error",le="+Inf"} 1`,
		`dagnode_request_duration_seconds_sum{method="getblocks",protocol="sync",result="error"} 60`,
		`dagnode_request_duration_seconds_bucket{method="getblockmetrics",protocol="rpc",result="ok",le="0.001"} 1`,
		`dagnode_test_queued 5`,
		`dagnode_sync_stalls_total 9`,
		`# TYPE dagnode_sync_stalls_total counter`,
		`# TYPE dagnode_gossip_messages_total counter`,
		`# TYPE dagnode_peers gauge`,
	)
	for _, family := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds"} {
		if !strings.Contains(body, "\n"+family+" ") {
			t.Errorf("scrape lacks the runtime family %s", family)
		}
	}

	// Pull-style: the next scrape reads the sources again.
	blocks.Store(43)
	queued = 0
	m.BlockAccepted(SourceMined)
	wantLines(t, scrape(t, s),
		`dagnode_dag_blocks 43`,
		`dagnode_test_queued 0`,
		`dagnode_blocks_accepted_total{source="mined"} 1`,
	)
}

func TestScrapeWithoutSources(t *testing.T) {
	s := startServer(t, New(), nil)
	body := scrape(t, s)
	wantLines(t, body, `dagnode_blocks_mined_total 0`, `dagnode_blocks_accepted_total{source="gossip"} 0`)
	for _, family := range []string{"dagnode_dag_", "dagnode_sync_", "dagnode_peers", "dagnode_gossip_"} {
		if strings.Contains(body, family) {
			t.Errorf("no sources set, but the scrape has %s", family)
		}
	}
}

func TestOnlyMetricsPath(t *testing.T) {
	s := startServer(t, New(), nil)
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/metrics/", http.StatusNotFound},
		{http.MethodGet, "/debug/pprof/", http.StatusNotFound},
		{http.MethodGet, "/metricsx", http.StatusNotFound},
		{http.MethodPost, Path, http.StatusMethodNotAllowed},
		{http.MethodHead, Path, http.StatusOK},
		{http.MethodGet, Path, http.StatusOK},
	} {
		if code, _ := get(t, s, tc.method, tc.path); code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, code, tc.code)
		}
	}
}

func TestPanickingSource(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	m := New()
	m.SetSources(Sources{
		DAG:   func() DAGSnapshot { panic("broken DAG source") },
		Peers: func() []PeerCount { return []PeerCount{{Direction: "inbound", Transport: "tcp", N: 1}} },
	})
	if err := m.RegisterGaugeFunc("dagnode_broken", "Panics.", func() float64 { panic("broken gauge") }); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Registry().Gather(); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("Gather error = %v, want the panics reported", err)
	}

	// The node goes on and the scrape keeps what could be gathered.
	body := scrape(t, startServer(t, m, log))
	wantLines(t, body, `dagnode_peers{direction="inbound",transport="tcp"} 1`, `dagnode_blocks_mined_total 0`)
	if strings.Contains(body, "dagnode_dag_blocks") || strings.Contains(body, "dagnode_broken") {
		t.Errorf("scrape has the panicking families:\n%s", body)
	}
	if l := logs.String(); !strings.Contains(l, "metrics gathering failed") || !strings.Contains(l, "broken DAG source") {
		t.Errorf("log = %q, want the failure logged", l)
	}
}

func TestBadLabelValues(t *testing.T) {
	m := New()
	bad := string([]byte{0xff, 0xfe})
	m.SetSources(Sources{Gossip: func() []GossipSnapshot { return []GossipSnapshot{{Topic: bad, Accepted: 1}} }})
	m.ObserveRequest(bad, "x", time.Second, nil) // dropped, no panic
	if _, err := m.Registry().Gather(); err == nil {
		t.Fatal("Gather accepted an invalid UTF-8 topic")
	}
	s := startServer(t, m, slog.New(slog.DiscardHandler))
	if body := scrape(t, s); strings.Contains(body, "dagnode_request_duration_seconds_count") {
		t.Errorf("a request with an invalid label was recorded")
	}
}

func TestRegisterFuncErrors(t *testing.T) {
	m := New()
	one := func() float64 { return 1 }
	if err := m.RegisterGaugeFunc("dagnode_x", "X.", one); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, help string
		f          func() float64
		counter    bool
	}{
		{"dagnode_x", "X.", one, false},                 // registered above
		{"dagnode_x", "Another help.", one, false},      // same name, other help
		{"dagnode_dag_blocks", "Clash.", one, false},    // one of ours
		{"dagnode_blocks_mined_total", "C.", one, true}, // one of ours
		{"x_total", "No prefix.", one, true},
		{"go_goroutines", "No prefix.", one, false},
		{"dagnode_bad-name", "Invalid.", one, false},
		{"dagnode_é", "Invalid.", one, false},
		{"dagnode_nofunc", "Nil f.", nil, false},
		{"dagnode_nohelp", "", one, false},
		{"dagnode_counter", "No _total.", one, true},
	} {
		register := m.RegisterGaugeFunc
		if tc.counter {
			register = m.RegisterCounterFunc
		}
		if err := register(tc.name, tc.help, tc.f); err == nil {
			t.Errorf("registering %q (%q) succeeded", tc.name, tc.help)
		}
	}
	if _, err := m.Registry().Gather(); err != nil {
		t.Fatalf("registry broken by refused registrations: %v", err)
	}
}

func TestManagersIndependent(t *testing.T) {
	a, b := New(), New()
	a.BlockAccepted(SourceSync)
	if err := a.RegisterGaugeFunc("dagnode_same", "Same.", func() float64 { return 1 }); err != nil {
		t.Fatal(err)
	}
	if err := b.RegisterGaugeFunc("dagnode_same", "Same.", func() float64 { return 2 }); err != nil {
		t.Fatal(err)
	}
	wantLines(t, scrape(t, startServer(t, b, nil)),
		`dagnode_blocks_accepted_total{source="sync"} 0`, `dagnode_same 2`)
}

func TestServerLifecycle(t *testing.T) {
	if _, err := NewServer("127.0.0.1:0", nil, nil); err == nil {
		t.Error("NewServer accepted a nil manager")
	}
	if _, err := NewServer("127.0.0.1", New(), nil); err == nil {
		t.Error("NewServer accepted an address without a port")
	}

	s, err := NewServer("127.0.0.1:0", New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != nil {
		t.Errorf("Addr before Start = %v, want nil", s.Addr())
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	scrape(t, s)

	// A second server cannot take the port.
	other, err := NewServer(addr, New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(); err == nil {
		other.Close()
		t.Error("two servers listen on one port")
	}
	if err := other.Close(); err != nil { // never started
		t.Error(err)
	}

	for i := range 3 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if err := s.Start(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Start after Close = %v, want ErrServerClosed", err)
	}
	if resp, err := http.Get("http://" + addr + Path); err == nil {
		resp.Body.Close()
		t.Error("closed server still answers")
	}

	// Close before Start.
	s2, err := NewServer("127.0.0.1:0", New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Start after Close = %v, want ErrServerClosed", err)
	}
	if s2.Addr() != nil {
		t.Error("Addr of a server never started is not nil")
	}
}

func TestNilManagerPrometheus(t *testing.T) {
	var m *Manager
	m.BlockAccepted(SourceGossip)
	m.ObserveRequest("sync", "getblocks", time.Second, nil)
	m.SetSources(Sources{DAG: func() DAGSnapshot { t.Error("source of a nil manager called"); return DAGSnapshot{} }})
	if err := m.RegisterGaugeFunc("dagnode_x", "X.", func() float64 { return 1 }); err != nil {
		t.Errorf("RegisterGaugeFunc on nil = %v", err)
	}
	if err := m.RegisterCounterFunc("bad", "", nil); err != nil {
		t.Errorf("RegisterCounterFunc on nil = %v", err)
	}
	if m.Registry() != nil {
		t.Error("Registry of a nil manager is not nil")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path, nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("Handler of a nil manager: %d, want 404", rec.Code)
	}

	// The usual way: behind a consumer's interface.
	var r interface {
		BlockAccepted(source string)
		ObserveRequest(protocol, method string, d time.Duration, err error)
	} = m
	r.BlockAccepted(SourceSync)
	r.ObserveRequest("rpc", "getinfo", time.Millisecond, nil)
}

func TestHandler(t *testing.T) {
	m := New()
	m.BlockAccepted(SourceMined)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path, nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `dagnode_blocks_accepted_total{source="mined"} 1`) {
		t.Fatalf("Handler: %d\n%s", rec.Code, rec.Body)
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := New()
	errTimeout := errors.New("timeout")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var err error
		if i&7 == 0 {
			err = errTimeout
		}
		m.ObserveRequest("sync", "getblocks", time.Duration(i)*time.Microsecond, err)
		i++
	}
}

func BenchmarkBlockAccepted(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.BlockAccepted(SourceGossip)
	}
}
