package ui

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeSource is a Source with a fixed DAG of blocks, safe for concurrent
// use.
type fakeSource struct {
	mu      sync.Mutex
	blocks  []Block
	colours map[string]Colour
}

func hashOf(i int) string { return fmt.Sprintf("%064x", i+1) }

func newFakeSource(n int) *fakeSource {
	f := &fakeSource{}
	for i := range n {
		b := Block{Hash: hashOf(i), Height: int64(i), Time: int64(i) * 1000, Miner: "minerX"}
		if i > 0 {
			b.Parents = []string{hashOf(i - 1)}
		}
		f.blocks = append(f.blocks, b)
	}
	return f
}

func (f *fakeSource) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Status{Network: "regtest", PeerID: "12D3KooWtest", Blocks: len(f.blocks)}
	if n := len(f.blocks); n > 0 {
		s.MaxHeight, s.Tips = f.blocks[n-1].Height, []string{f.blocks[n-1].Hash}
	}
	return s
}
func (f *fakeSource) Peers() []Peer {
	return []Peer{{ID: "12D3KooWpeer", Direction: "outbound", Transport: "tcp", LatencyMS: 0.2}}
}
func (f *fakeSource) Net() Net   { return Net{Reachability: "unknown"} }
func (f *fakeSource) Sync() Sync { return Sync{} }
func (f *fakeSource) Mining() Mining {
	return Mining{BlocksMined: 3, SolveTimesMS: make([]int64, 500)}
}
func (f *fakeSource) RecentBlocks(n int) []Block {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Block(nil), f.blocks[max(0, len(f.blocks)-n):]...)
}
func (f *fakeSource) BlockDetails(hash string) (BlockDetails, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.blocks {
		if b.Hash == hash {
			return BlockDetails{Block: b, Bits: "207fffff", Nonce: "18446744073709551615"}, true
		}
	}
	return BlockDetails{}, false
}

// colourSource is a fakeSource that colours its blocks.
type colourSource struct{ *fakeSource }

func (c colourSource) Colours(hashes []string) []Colour {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Colour, len(hashes))
	for i, h := range hashes {
		out[i] = c.colours[h]
	}
	return out
}

func testLogger(testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer starts a server on a loopback port chosen by the OS.
func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Source == nil {
		cfg.Source = newFakeSource(10)
	}
	cfg.Logger = testLogger(t)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func base(s *Server) string { return "http://" + s.Addr().String() }

// get does a GET with optional headers set by mod.
func get(t *testing.T, u string, mod func(*http.Request)) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(req)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func token(s *Server) string {
	u, _ := url.Parse(s.URL())
	return u.Query().Get("token")
}

func TestUIAuthRefusesWithoutCredentials(t *testing.T) {
	s := startServer(t, Config{Credentials: func() (string, string, bool) { return "alice", "s3cret", true }})
	for _, path := range []string{"/", "/app.js", "/style.css", "/events", "/api/snapshot", "/api/block?hash=" + hashOf(1), "/nope"} {
		for _, c := range []struct {
			name string
			mod  func(*http.Request)
		}{
			{"nothing", nil},
			{"wrong token", func(r *http.Request) { q := r.URL.Query(); q.Set("token", "0000"); r.URL.RawQuery = q.Encode() }},
			{"wrong cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: s.cookie, Value: s.token}) }},
			{"wrong password", func(r *http.Request) { r.SetBasicAuth("alice", "guess") }},
			{"wrong user", func(r *http.Request) { r.SetBasicAuth("bob", "s3cret") }},
		} {
			resp := get(t, base(s)+path, c.mod)
			b := body(t, resp)
			switch resp.StatusCode {
			case http.StatusTooManyRequests:
				// Failed logins from this address are being throttled.
				if c.mod == nil || strings.Contains(c.name, "cookie") {
					t.Errorf("%s with %s: 429, but it is no login attempt", path, c.name)
				}
				continue
			case http.StatusUnauthorized:
			default:
				t.Errorf("%s with %s: %d, want 401", path, c.name, resp.StatusCode)
			}
			if strings.Contains(b, hashOf(1)) || strings.Contains(b, "12D3KooW") || strings.Contains(b, "<svg") {
				t.Errorf("%s with %s: the 401 carries data: %q", path, c.name, b)
			}
			if got := resp.Header.Get("WWW-Authenticate"); (got != "") != (path == "/") {
				t.Errorf("%s: WWW-Authenticate %q", path, got)
			}
			if resp.Header.Get("Set-Cookie") != "" {
				t.Errorf("%s with %s: a cookie was set", path, c.name)
			}
		}
	}
}

func TestUIAuthTokenGivesCookie(t *testing.T) {
	s := startServer(t, Config{Credentials: func() (string, string, bool) { return "alice", "s3cret", true }})
	if !strings.HasPrefix(s.URL(), base(s)+"/?token=") || len(token(s)) != 48 {
		t.Fatalf("URL %q", s.URL())
	}
	resp := get(t, s.URL(), nil)
	page := body(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(page, `<script src="/app.js"`) {
		t.Fatalf("token URL: %d %q", resp.StatusCode, page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v", cookies)
	}
	c := cookies[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Value == token(s) ||
		c.Name != "dagnode_ui_"+fmt.Sprint(s.Addr().(*net.TCPAddr).Port) {
		t.Errorf("cookie %+v", c)
	}
	// The cookie alone now works, for every path.
	withCookie := func(r *http.Request) { r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value}) }
	for _, path := range []string{"/", "/app.js", "/style.css", "/api/snapshot"} {
		resp := get(t, base(s)+path, withCookie)
		if b := body(t, resp); resp.StatusCode != 200 || len(b) == 0 {
			t.Errorf("%s with the cookie: %d", path, resp.StatusCode)
		}
	}
	// So do basic-auth credentials.
	resp = get(t, base(s)+"/api/snapshot", func(r *http.Request) { r.SetBasicAuth("alice", "s3cret") })
	var snap snapshot
	if err := json.Unmarshal([]byte(body(t, resp)), &snap); err != nil || resp.StatusCode != 200 || len(snap.Blocks) != 10 {
		t.Fatalf("basic auth: %d, %d blocks, %v", resp.StatusCode, len(snap.Blocks), err)
	}
	// A cookie of another port's dashboard is not this one's.
	resp = get(t, base(s)+"/api/snapshot", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "dagnode_ui_1", Value: c.Value}) })
	if body(t, resp); resp.StatusCode != 401 {
		t.Errorf("another port's cookie: %d", resp.StatusCode)
	}
}

func TestUIFailedLoginsAreThrottled(t *testing.T) {
	s := startServer(t, Config{Credentials: func() (string, string, bool) { return "alice", "s3cret", true }})
	var codes []int
	for range failBurst + 2 {
		resp := get(t, base(s)+"/api/snapshot", func(r *http.Request) { r.SetBasicAuth("alice", "guess") })
		body(t, resp)
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 401 || codes[len(codes)-1] != 429 {
		t.Fatalf("codes %v: want 401s then 429", codes)
	}
	// The session cookie is not a guess: it still works.
	resp := get(t, s.URL(), nil)
	body(t, resp)
	if resp.StatusCode != 429 {
		t.Fatalf("token while throttled: %d", resp.StatusCode)
	}
}

func TestUIRefusesOtherOriginsAndHosts(t *testing.T) {
	s := startServer(t, Config{})
	tok := s.URL()[len(base(s)):]
	cases := []struct {
		name string
		path string
		mod  func(*http.Request)
		want int
	}{
		{"same origin", tok, func(r *http.Request) { r.Header.Set("Origin", base(s)) }, 200},
		{"other origin", tok, func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") }, 403},
		{"other port", tok, func(r *http.Request) { r.Header.Set("Origin", "http://127.0.0.1:1") }, 403},
		{"rebound host", tok, func(r *http.Request) { r.Host = "evil.example:80" }, 403},
		{"localhost", tok, func(r *http.Request) { r.Host = "localhost:1234" }, 200},
		{"cross-site fetch", strings.Replace(tok, "/?", "/api/snapshot?", 1), func(r *http.Request) {
			r.Header.Set("Sec-Fetch-Site", "same-site")
			r.Header.Set("Sec-Fetch-Mode", "no-cors")
		}, 403},
		{"cross-site navigation to the page", tok, func(r *http.Request) {
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			r.Header.Set("Sec-Fetch-Mode", "navigate")
		}, 200},
		{"same-origin fetch", strings.Replace(tok, "/?", "/api/snapshot?", 1), func(r *http.Request) {
			r.Header.Set("Sec-Fetch-Site", "same-origin")
			r.Header.Set("Sec-Fetch-Mode", "cors")
		}, 200},
	}
	for _, c := range cases {
		resp := get(t, base(s)+c.path, c.mod)
		b := body(t, resp)
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d (%q)", c.name, resp.StatusCode, c.want, b)
		}
		if c.want == 403 && strings.Contains(b, hashOf(1)) {
			t.Errorf("%s: the 403 carries data", c.name)
		}
	}
	// Only GET and HEAD.
	req, _ := http.NewRequest(http.MethodPost, s.URL(), strings.NewReader("x"))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if body(t, resp); resp.StatusCode != 405 {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

func TestUIOffLoopbackNeedsTLS(t *testing.T) {
	s, err := New(Config{Listen: "0.0.0.0:0", Source: newFakeSource(1), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("plain HTTP on 0.0.0.0: %v", err)
	}
	s.Close()

	// With TLS (a test certificate), it serves https, and the URL says so.
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	cert := ts.TLS.Certificates
	pool := ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	ts.Close()
	s = startServer(t, Config{Listen: "0.0.0.0:0", TLS: func(string) (*tls.Config, error) {
		return &tls.Config{Certificates: cert}, nil
	}})
	u := strings.Replace(s.URL(), "0.0.0.0", "127.0.0.1", 1)
	if !strings.HasPrefix(u, "https://127.0.0.1:") {
		t.Fatalf("URL %q", s.URL())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	if body(t, resp); resp.StatusCode != 200 || len(resp.Cookies()) != 1 || !resp.Cookies()[0].Secure {
		t.Fatalf("https: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
}

func TestUIBlockDetails(t *testing.T) {
	s := startServer(t, Config{})
	auth := func(r *http.Request) { q := r.URL.Query(); q.Set("token", token(s)); r.URL.RawQuery = q.Encode() }
	for _, c := range []struct {
		hash string
		want int
	}{{hashOf(3), 200}, {hashOf(99), 404}, {"zz", 400}, {strings.Repeat("g", 64), 400}} {
		resp := get(t, base(s)+"/api/block?hash="+c.hash, auth)
		b := body(t, resp)
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.hash, resp.StatusCode, c.want)
		}
		if c.want == 200 {
			var d BlockDetails
			if err := json.Unmarshal([]byte(b), &d); err != nil || d.Height != 3 || d.Source != SourceStored || d.Nonce != "18446744073709551615" {
				t.Errorf("details %+v %v", d, err)
			}
		}
	}
}

// sse reads server-sent events.
type sse struct {
	r    *bufio.Reader
	body io.Closer
}

func openStream(t *testing.T, s *Server) *sse {
	t.Helper()
	resp := get(t, base(s)+"/events?token="+token(s), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d %s", resp.StatusCode, body(t, resp))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	st := &sse{r: bufio.NewReaderSize(resp.Body, 1<<16), body: resp.Body}
	t.Cleanup(func() { resp.Body.Close() })
	return st
}

// next returns the next event's name and data.
func (st *sse) next() (string, string, error) {
	var name, data string
	for {
		line, err := st.r.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data, nil
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		}
	}
}

// until reads events until one named name, within timeout, and returns
// its data.
func (st *sse) until(t *testing.T, name string, timeout time.Duration) string {
	t.Helper()
	return st.untilFunc(t, name, timeout, func(n, _ string) bool { return n == name })
}

// untilFunc reads events until ok holds for one, within timeout.
func (st *sse) untilFunc(t *testing.T, what string, timeout time.Duration, ok func(name, data string) bool) string {
	t.Helper()
	type res struct {
		data string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		for {
			n, d, err := st.next()
			if err != nil || ok(n, d) {
				ch <- res{d, err}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("waiting for %s: %v", what, r.err)
		}
		return r.data
	case <-time.After(timeout):
		st.body.Close()
		<-ch
		t.Fatalf("no %s within %v", what, timeout)
		return ""
	}
}

func TestUIStreamDeliversBlocks(t *testing.T) {
	s := startServer(t, Config{})
	st := openStream(t, s)
	var snap snapshot
	if err := json.Unmarshal([]byte(st.until(t, "snapshot", 5*time.Second)), &snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Blocks) != 10 || snap.Blocks[0].Hash != hashOf(0) || snap.Blocks[9].Source != SourceStored || snap.MaxBlocks != DefaultMaxBlocks {
		t.Fatalf("snapshot: %d blocks %+v", len(snap.Blocks), snap.Blocks)
	}
	var p panels
	if err := json.Unmarshal(snap.Panels, &p); err != nil || p.Status.Blocks != 10 || len(p.Peers) != 1 || len(p.Mining.SolveTimesMS) != MaxSolveTimes {
		t.Fatalf("panels %+v %v", p, err)
	}
	published := time.Now()
	s.Publish(func() Block {
		return Block{Hash: hashOf(10), Parents: []string{hashOf(9)}, Height: 10, Source: SourceGossip, Peer: "12D3KooWpeer"}
	})
	var b Block
	if err := json.Unmarshal([]byte(st.until(t, "block", 5*time.Second)), &b); err != nil {
		t.Fatal(err)
	}
	if b.Hash != hashOf(10) || b.Source != SourceGossip || b.Arrived == 0 || b.Blue != nil {
		t.Fatalf("block event %+v", b)
	}
	t.Logf("block event read %v after Publish", time.Since(published))
	// A block published twice is drawn once.
	s.Publish(func() Block { return Block{Hash: hashOf(10), Height: 10, Source: SourceSync} })
	s.Publish(func() Block { return Block{Hash: hashOf(11), Height: 11, Source: SourceMined} })
	if err := json.Unmarshal([]byte(st.until(t, "block", 5*time.Second)), &b); err != nil || b.Hash != hashOf(11) {
		t.Fatalf("next block event %+v %v", b, err)
	}
	// The periodic panels count arrivals by source.
	if err := json.Unmarshal([]byte(st.until(t, "panels", 5*time.Second)), &p); err != nil {
		t.Fatal(err)
	}
	if p.Arrivals[SourceGossip] != 1 || p.Arrivals[SourceMined] != 1 || p.Arrivals[SourceSync] != 0 || p.Stream.Clients != 1 {
		t.Fatalf("panels arrivals %v stream %+v", p.Arrivals, p.Stream)
	}
}

func TestUIStreamSendsColours(t *testing.T) {
	src := colourSource{newFakeSource(5)}
	s := startServer(t, Config{Source: src, Interval: 20 * time.Millisecond})
	st := openStream(t, s)
	st.until(t, "snapshot", 5*time.Second)
	blue := true
	src.mu.Lock()
	src.colours = map[string]Colour{hashOf(4): {Blue: &blue, InChain: true, BlueScore: 4}}
	src.mu.Unlock()
	var cs map[string]Colour
	if err := json.Unmarshal([]byte(st.until(t, "colours", 5*time.Second)), &cs); err != nil {
		t.Fatal(err)
	}
	if c := cs[hashOf(4)]; len(cs) != 1 || c.Blue == nil || !*c.Blue || !c.InChain || c.BlueScore != 4 {
		t.Fatalf("colours %+v", cs)
	}
}

// TestUISlowClientNeverBlocksThePublisher: a browser that never reads
// its stream fills its queue; Publish keeps returning at once, the hub
// keeps serving the other streams, the slow stream's events are dropped
// and counted, and once it reads again it gets a resync.
func TestUISlowClientNeverBlocksThePublisher(t *testing.T) {
	s := startServer(t, Config{QueueLen: 16})
	// The stalled client: a raw connection that sends its request and
	// reads nothing, with a small receive buffer so that the server's
	// writes block soon.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error { return setSmallRcvBuf(c) }}
	conn, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /events?token=%s HTTP/1.1\r\nHost: %s\r\n\r\n", token(s), s.Addr())
	pollUntil(t, 5*time.Second, "the stalled stream open", func() bool { return s.Stats().Clients == 1 })
	healthy := openStream(t, s)
	healthy.until(t, "snapshot", 5*time.Second)

	parents := make([]string, 16)
	for i := range parents {
		parents[i] = hashOf(1000 + i)
	}
	var slowest time.Duration
	start := time.Now()
	n := 0
	for s.Stats().Dropped == 0 {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("no event dropped after %d blocks in %v: %+v", n, time.Since(start), s.Stats())
		}
		for range 1000 {
			h, height := hashOf(100000+n), int64(n)
			t0 := time.Now()
			s.Publish(func() Block { return Block{Hash: h, Parents: parents, Height: height, Source: SourceGossip} })
			slowest = max(slowest, time.Since(t0))
			n++
		}
		// Let the hub take them (Publish's own queue is not the subject).
		pollUntil(t, 10*time.Second, "the hub to take the published blocks", func() bool { return len(s.in) == 0 })
	}
	st := s.Stats()
	t.Logf("%d blocks published in %v, slowest Publish %v; %+v", n, time.Since(start), slowest, st)
	if slowest > 100*time.Millisecond {
		t.Errorf("a Publish took %v", slowest)
	}
	// The hub still serves the healthy stream: a new block reaches it.
	last := hashOf(5_000_000)
	s.Publish(func() Block { return Block{Hash: last, Height: 1, Source: SourceMined} })
	healthy.untilFunc(t, "the new block on the healthy stream", 30*time.Second, func(name, data string) bool {
		return (name == "block" || name == "resync") && strings.Contains(data, last)
	})
	// The stalled client reads again: it gets a resync that counts its
	// drops.
	r := bufio.NewReaderSize(conn, 1<<16)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stalled stream: %v", err)
		}
		if line == "event: resync\n" {
			line, err = r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			var snap snapshot
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &snap); err != nil {
				t.Fatal(err)
			}
			if snap.Dropped == 0 || snap.Resyncs != 1 || len(snap.Blocks) == 0 {
				t.Fatalf("resync: dropped %d, resyncs %d, %d blocks", snap.Dropped, snap.Resyncs, len(snap.Blocks))
			}
			break
		}
	}
	if s.Stats().Resyncs == 0 {
		t.Fatalf("stats %+v", s.Stats())
	}
}

func TestUIMaxClients(t *testing.T) {
	s := startServer(t, Config{MaxClients: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base(s)+"/events?token="+token(s), nil)
		return http.DefaultTransport.RoundTrip(req)
	}
	a := openStream(t, s)
	a.until(t, "snapshot", 5*time.Second)
	b := openStream(t, s)
	b.until(t, "snapshot", 5*time.Second)
	resp, err := open()
	if err != nil {
		t.Fatal(err)
	}
	if body(t, resp); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third stream: %d, want 503", resp.StatusCode)
	}
	a.body.Close()
	pollUntil(t, 5*time.Second, "the closed stream to go", func() bool { return s.Stats().Clients == 1 })
	c := openStream(t, s)
	c.until(t, "snapshot", 5*time.Second)
}

func TestUICloseEndsStreams(t *testing.T) {
	s := startServer(t, Config{})
	st := openStream(t, s)
	st.until(t, "snapshot", 5*time.Second)
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case <-done:
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("Close did not return")
	}
	if _, _, err := st.next(); err == nil {
		// Drain what was buffered: the stream must end.
		for err == nil {
			_, _, err = st.next()
		}
	}
	s.Publish(func() Block { return Block{Hash: hashOf(1)} }) // after Close: no effect, no block
	var nilServer *Server
	nilServer.Publish(func() Block { return Block{} })
}

// pollUntil polls cond until it holds or timeout passes.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling
	}
}

// setSmallRcvBuf shrinks a socket's receive buffer before it connects.
func setSmallRcvBuf(c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	})
	if err != nil {
		return err
	}
	return serr
}
