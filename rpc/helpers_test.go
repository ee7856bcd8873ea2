package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
	"github.com/dagnode/dagnode/metrics"
)

const (
	testUser = "alice"
	testPass = "s3cret"
)

// testChain is a real in-memory regtest DAG holding the first blocks of a
// generated multi-parent DAG; rest are valid blocks it does not hold yet.
type testChain struct {
	dag  *dag.DAG
	rest []*dag.Block
}

// newTestChain builds a DAG of about n generated blocks (rounds up to 3 wide)
// and keeps the last keepOut of them out of it.
func newTestChain(t testing.TB, n, keepOut int) *testChain {
	t.Helper()
	g, err := dagtest.NewGenerator(dag.RegTestParams, 42)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := g.Build(n, 3)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dag.Open(context.Background(), dssync.MutexWrap(ds.NewMapDatastore()), dag.RegTestParams)
	if err != nil {
		t.Fatal(err)
	}
	in := blocks[:len(blocks)-keepOut]
	for i, err := range d.ProcessBlocks(context.Background(), in) {
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	return &testChain{dag: d, rest: blocks[len(blocks)-keepOut:]}
}

// dagSubmitter submits straight to the DAG, as the sync manager would.
type dagSubmitter struct{ d *dag.DAG }

func (s dagSubmitter) SubmitBlock(ctx context.Context, b *dag.Block) error {
	return s.d.ProcessBlock(ctx, b)
}

// fakeMiner records calls; Generate waits for release (if set) or returns
// the configured hashes.
type fakeMiner struct {
	mu         sync.Mutex
	generating bool
	workers    int
	setCalls   [][2]any
	hashes     []dag.Hash
	genErr     error
	entered    chan struct{} // receives when Generate starts, if not nil
	release    chan struct{} // Generate waits for it (or ctx), if not nil
	genCtxErr  atomic.Value  // the ctx error Generate saw
	panicRate  bool
	generateN  atomic.Int64
	genLatency time.Duration
}

func (m *fakeMiner) Generate(ctx context.Context, n int) ([]dag.Hash, error) {
	m.generateN.Store(int64(n))
	if m.entered != nil {
		m.entered <- struct{}{}
	}
	if m.release != nil {
		select {
		case <-m.release:
		case <-ctx.Done():
			m.genCtxErr.Store(ctx.Err())
			return m.hashes[:min(1, len(m.hashes))], ctx.Err()
		}
	}
	if m.genLatency > 0 {
		select {
		case <-time.After(m.genLatency):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return m.hashes, m.genErr
}

func (m *fakeMiner) SetGenerate(on bool, workers int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setCalls = append(m.setCalls, [2]any{on, workers})
	m.generating = on
	if workers != 0 {
		m.workers = workers
	}
	return nil
}

func (m *fakeMiner) Generating() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.generating
}

func (m *fakeMiner) Workers() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.workers
}

func (m *fakeMiner) HashesPerSecond() float64 {
	if m.panicRate {
		panic("fake miner: a handler bug")
	}
	return 1234.9
}

// fakePeers is a PeerSource over fixed peers.
type fakePeers struct {
	mu           sync.Mutex
	peers        []PeerInfo
	bans         []BanInfo
	banned       map[string]time.Duration
	disconnected []string
	persistent   map[string]bool
	connected    []string
	connectErr   error
	blockConnect bool // Connect waits for ctx
}

func newFakePeers() *fakePeers {
	now := time.Unix(1_800_000_000, 0)
	return &fakePeers{
		peers: []PeerInfo{
			{
				ID: "12D3KooWPeerA", Num: 3, Addrs: []string{"/ip4/10.0.0.1/tcp/9700", "/ip4/10.0.0.1/udp/9700/quic-v1"},
				Direction: "outbound", Transport: "tcp", Agent: "dagnode/1.0.0", ProtocolVersion: "/dagnode/regtest",
				Latency: 1500 * time.Microsecond, ConnectedAt: now, BytesSent: 100, BytesRecv: 200, Score: 7,
				Status: &dag.Status{MaxHeight: 12, Count: 30}, SyncPeer: true,
			},
			{
				ID: "12D3KooWPeerB", Num: 7, Addrs: []string{"/ip4/10.0.0.2/tcp/4001/p2p/12D3KooWRelay/p2p-circuit"},
				Direction: "inbound", Transport: "relay", Relayed: true, Agent: "dagnode/0.9.0",
			},
		},
		banned:     map[string]time.Duration{},
		persistent: map[string]bool{},
	}
}

func (f *fakePeers) Peers() []PeerInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]PeerInfo(nil), f.peers...)
}

func (f *fakePeers) Disconnect(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disconnected = append(f.disconnected, id)
	return nil
}

func (f *fakePeers) Ban(id string, d time.Duration, reason string) error {
	if id == "garbage" {
		return errors.Join(ErrInvalidPeerID, errors.New("failed to parse peer ID"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.banned[id] = d
	f.bans = append(f.bans, BanInfo{ID: id, Until: time.Unix(1_900_000_000, 0), Reason: reason})
	return nil
}

func (f *fakePeers) Unban(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, b := range f.bans {
		if b.ID == id {
			f.bans = append(f.bans[:i], f.bans[i+1:]...)
			break
		}
	}
	return nil
}

func (f *fakePeers) Banned() []BanInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]BanInfo(nil), f.bans...)
}

func (f *fakePeers) Connect(ctx context.Context, addr string) error {
	if f.blockConnect {
		<-ctx.Done()
		return ctx.Err()
	}
	if f.connectErr != nil {
		return f.connectErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected = append(f.connected, addr)
	return nil
}

func (f *fakePeers) AddPersistent(_ context.Context, addr string) error {
	if addr == "not-a-multiaddr" {
		return errors.Join(ErrInvalidAddress, errors.New("no protocol"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.persistent[addr] = true
	return nil
}

func (f *fakePeers) RemovePersistent(addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.persistent[addr] {
		return ErrNodeNotAdded
	}
	delete(f.persistent, addr)
	return nil
}

func (f *fakePeers) Ping(context.Context) []PingResult {
	return []PingResult{
		{ID: "12D3KooWPeerA", RTT: 2 * time.Millisecond},
		{ID: "12D3KooWPeerB", Err: errors.New("stream reset")},
	}
}

type fakeNet struct{}

func (fakeNet) NetworkInfo() NetworkInfo {
	return NetworkInfo{
		PeerID:        "12D3KooWSelf",
		ListenAddrs:   []string{"/ip4/127.0.0.1/tcp/9703/p2p/12D3KooWSelf"},
		ObservedAddrs: []string{"/ip4/203.0.113.7/tcp/9703"},
		Reachability:  "private",
		NAT:           "upnp: mapped",
		Protocols:     []string{"/dagnode/regtest/sync/1", "/ipfs/ping/1.0.0"},
		Agent:         "dagnode/1.2.3",
	}
}

func (fakeNet) NetTotals() NetTotals { return NetTotals{BytesRecv: 1000, BytesSent: 2000} }

type fakeSync struct{ info SyncInfo }

func (f fakeSync) SyncInfo() SyncInfo { return f.info }

// testEnv is a started server with all parts wired.
type testEnv struct {
	srv     *Server
	url     string
	chain   *testChain
	miner   *fakeMiner
	peers   *fakePeers
	metrics *metrics.Manager
	stops   *atomic.Int64
}

// startServer starts a server on 127.0.0.1:0 with every part wired to fakes
// over a real DAG; edit may change the Config first.
func startServer(t testing.TB, edit func(*Config)) *testEnv {
	t.Helper()
	env := &testEnv{
		chain:   newTestChain(t, 20, 2),
		miner:   &fakeMiner{workers: 2},
		peers:   newFakePeers(),
		metrics: metrics.New(),
		stops:   new(atomic.Int64),
	}
	env.metrics.BlockMined("00ab", 1500*time.Millisecond)
	cfg := Config{
		Listen:    []string{"127.0.0.1:0"},
		User:      testUser,
		Pass:      testPass,
		Version:   "1.2.3",
		Chain:     env.chain.dag,
		Submitter: dagSubmitter{env.chain.dag},
		Miner:     env.miner,
		Metrics:   env.metrics,
		Peers:     env.peers,
		Net:       fakeNet{},
		Sync: fakeSync{SyncInfo{Syncing: true, SyncPeer: "12D3KooWPeerA", Blocks: 25, Target: 100, Done: 5,
			BlocksPerSecond: 2.5, ETA: 30 * time.Second, Sessions: 1, Orphans: 4, OrphanBytes: 1200, OrphanFetches: 1,
			LastSession: SessionEnd{Peer: "12D3KooWPeerB", Reason: "stalled", Err: "no frame in 10s", Blocks: 7,
				Elapsed: 10500 * time.Millisecond, At: time.Unix(1_700_000_000, 0)},
			Backoffs: []SyncBackoff{{Peer: "12D3KooWPeerB", Until: time.Unix(1_700_000_002, 0), Failures: 1, Reason: "stalled"}}}},
		Stop:   func() { env.stops.Add(1) },
		Logger: slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	env.srv = s
	env.url = "http://" + s.Addrs()[0].String()
	return env
}

// post sends body with the test credentials (if auth) and returns the status
// and body.
func post(t testing.TB, url, body string, auth bool) (int, []byte) {
	t.Helper()
	return postAs(t, url, body, testUser, testPass, auth)
}

func postAs(t testing.TB, url, body, user, pass string, auth bool) (int, []byte) {
	t.Helper()
	if !auth {
		user = ""
	}
	return postWith(t, http.DefaultClient, url, body, user, pass)
}

// postWith posts body with client, with basic auth unless user is empty.
func postWith(t testing.TB, client *http.Client, url, body, user, pass string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// v1Resp is a decoded 1.0 response with presence of each member recorded.
type v1Resp struct {
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
	ID     json.RawMessage `json:"id"`
}

// call sends a 1.0 request and decodes the response.
func (e *testEnv) call(t testing.TB, method string, params ...any) v1Resp {
	t.Helper()
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"method": method, "params": params, "id": 1})
	if err != nil {
		t.Fatal(err)
	}
	status, out := post(t, e.url, string(body), true)
	if status != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", method, status, out)
	}
	var r v1Resp
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%s: %v: %s", method, err, out)
	}
	return r
}

// ok calls and decodes a successful result into v.
func (e *testEnv) ok(t testing.TB, v any, method string, params ...any) {
	t.Helper()
	r := e.call(t, method, params...)
	if r.Error != nil {
		t.Fatalf("%s %v: %v", method, params, r.Error)
	}
	if v != nil {
		if err := json.Unmarshal(r.Result, v); err != nil {
			t.Fatalf("%s: decoding %s: %v", method, r.Result, err)
		}
	}
}

// fail calls and checks the error code.
func (e *testEnv) fail(t testing.TB, code ErrorCode, method string, params ...any) *Error {
	t.Helper()
	r := e.call(t, method, params...)
	if r.Error == nil {
		t.Fatalf("%s %v: want error %d, got result %s", method, params, code, r.Result)
	}
	if r.Error.Code != code {
		t.Fatalf("%s %v: want code %d, got %v", method, params, code, r.Error)
	}
	if string(r.Result) != "null" {
		t.Fatalf("%s: 1.0 error response must have result null, got %s", method, r.Result)
	}
	return r.Error
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
