package rpc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagnode/dagnode/metrics"
)

// FuzzEnvelope feeds arbitrary bodies to the envelope and param layers: they
// must never panic, and every response they produce must be valid JSON of
// the request's version.
func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"method":"getblockhash","params":[1],"id":1}`,
		`{"jsonrpc":"2.0","method":"getblock","params":{"hash":"00","verbose":false},"id":"a"}`,
		`[{"method":"generate","params":[1e3]},{"jsonrpc":"2.0","method":"ban","params":["x",-5],"id":null},7]`,
		`{"jsonrpc":"1.0","method":"setgenerate","params":[true,null],"id":-0.5}`,
		`{"method":"addnode","params":["a","remove"],"id":[]}`,
		`[]`, `{`, `"x"`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		calls, _, err := parseBody(body)
		if err != nil {
			if b := marshalResponse(v2, nullID, nil, err); !json.Valid(b) {
				t.Fatalf("invalid JSON for a body error: %s", b)
			}
			return
		}
		for _, c := range calls {
			rerr := c.err
			if rerr == nil {
				if m := methods[c.method]; m != nil {
					_, rerr = parseParams(m, c.params)
				}
			}
			b := marshalResponse(c.version, c.id, json.RawMessage(`1`), rerr)
			if !json.Valid(b) {
				t.Fatalf("invalid response JSON %s for %q", b, body)
			}
			var r map[string]json.RawMessage
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			if _, ok := r["id"]; !ok {
				t.Fatalf("response without id: %s", b)
			}
			if _, v2 := r["jsonrpc"]; v2 == (c.version == v1) {
				t.Fatalf("version %d answered as %s", c.version, b)
			}
		}
	})
}

// FuzzCookie feeds arbitrary bytes as a cookie file and an arbitrary
// Authorization header value. ReadCookie must never panic; what it accepts
// is a user without a colon and a non-empty password, and those credentials
// pass the server's basic-auth check while a wrong password does not. The
// check of any header agrees with what net/http decodes from it.
func FuzzCookie(f *testing.F) {
	dir := f.TempDir()
	cookiePath := filepath.Join(dir, ".cookie")
	pass, err := writeCookie(cookiePath)
	if err != nil {
		f.Fatal(err)
	}
	written, err := os.ReadFile(cookiePath)
	if err != nil {
		f.Fatal(err)
	}
	if u, p, err := ReadCookie(cookiePath); err != nil || u != CookieUser || p != pass {
		f.Fatalf("ReadCookie(writeCookie) = %q, %q, %v; want %q, %q", u, p, err, CookieUser, pass)
	}
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	f.Add(written, basic(CookieUser, pass))
	f.Add(append(written, "\r\n"...), basic(CookieUser, pass+"x"))
	f.Add([]byte(" alice:s3cret:with:colons \n"), basic("alice", "s3cret:with:colons"))
	f.Add([]byte(":nouser"), "Basic Og==")
	f.Add([]byte("nopass:"), "Bearer x")
	f.Add([]byte("\x00\xff:\x00"), "basic "+base64.StdEncoding.EncodeToString([]byte("\x00\xff:\x00")))
	f.Add(bytes.Repeat([]byte("a"), maxCookieBytes+1), "Basic !!!")
	f.Fuzz(func(t *testing.T, cookie []byte, header string) {
		path := filepath.Join(t.TempDir(), ".cookie")
		if err := os.WriteFile(path, cookie, 0o600); err != nil {
			t.Fatal(err)
		}
		user, pass, err := ReadCookie(path)
		if err != nil {
			if user != "" || pass != "" {
				t.Fatalf("error %v with credentials %q:%q", err, user, pass)
			}
			user, pass = testUser, testPass
		} else {
			if len(cookie) > maxCookieBytes {
				t.Fatalf("accepted a cookie of %d bytes", len(cookie))
			}
			if user == "" || pass == "" || strings.Contains(user, ":") {
				t.Fatalf("accepted cookie %q as %q:%q", cookie, user, pass)
			}
		}
		a := newAuthenticator(time.Millisecond, time.Millisecond)
		a.setCredentials(user, pass)
		req := func(set func(*http.Request)) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			set(r)
			return r
		}
		if !a.check(req(func(r *http.Request) { r.SetBasicAuth(user, pass) })) {
			t.Fatalf("credentials %q:%q refused", user, pass)
		}
		if a.check(req(func(r *http.Request) { r.SetBasicAuth(user, pass+"x") })) {
			t.Fatalf("a wrong password for %q accepted", user)
		}
		r := req(func(r *http.Request) { r.Header.Set("Authorization", header) })
		hu, hp, ok := r.BasicAuth()
		if want := ok && hu == user && hp == pass; a.check(r) != want {
			t.Fatalf("header %q: check says %v, net/http decodes %q:%q (%v)", header, !want, hu, hp, ok)
		}
	})
}

// errorRecorder is a slog handler that keeps the messages of error records,
// so a fuzz target sees a handler panic the server recovered from.
type errorRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (e *errorRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (e *errorRecorder) Handle(_ context.Context, r slog.Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "panic" || a.Key == "method" || a.Key == "stack" {
			msg += "\n" + a.Key + ": " + a.Value.String()
		}
		return true
	})
	e.msgs = append(e.msgs, msg)
	return nil
}
func (e *errorRecorder) WithAttrs([]slog.Attr) slog.Handler { return e }
func (e *errorRecorder) WithGroup(string) slog.Handler      { return e }

func (e *errorRecorder) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.msgs
	e.msgs = nil
	return m
}

// newDispatchServer builds, but does not start, a server with every part
// wired to the test fakes over a real DAG; ServeHTTP is called in-process.
func newDispatchServer(t testing.TB, log *errorRecorder) (*Server, *testChain) {
	t.Helper()
	chain := newTestChain(t, 20, 2)
	m := metrics.New()
	m.BlockMined("00ab", 1500*time.Millisecond)
	s, err := New(Config{
		User: testUser, Pass: testPass, Version: "1.2.3",
		Chain: chain.dag, Submitter: dagSubmitter{chain.dag}, Miner: &fakeMiner{workers: 2},
		Metrics: m, Peers: newFakePeers(), Net: fakeNet{},
		Sync:   fakeSync{SyncInfo{Syncing: true, SyncPeer: "12D3KooWPeerA", Blocks: 25, Target: 100}},
		Stop:   func() {},
		Logger: slog.New(log),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, chain
}

// FuzzDispatch calls every method of the table with fuzzed params through
// the whole HTTP handler (auth, envelope, param checks, handler). which
// picks the method (and, by its high bit, the 1.0 or 2.0 envelope); params
// that are not JSON are sent as the whole request body instead, batches and
// all. The answer must be a JSON-RPC result or error with HTTP 200 (204 for
// notifications only), never another status, and no handler may panic (the
// server recovers, logs and answers "internal error": the log is watched).
func FuzzDispatch(f *testing.F) {
	log := &errorRecorder{}
	s, chain := newDispatchServer(f, log)
	st := chain.dag.Status()
	tip := st.Tips[0].String()
	newBlock := hex.EncodeToString(chain.rest[0].Encode())
	valid := map[string][]string{
		"getblockhash":   {`[1]`, `{"height":0}`, `[9223372036854775807]`, `[-1]`},
		"getblock":       {`["` + tip + `"]`, `["` + tip + `",false]`, `{"hash":"` + tip + `","verbose":true}`},
		"getblockheader": {`["` + tip + `",false]`, `["` + strings.Repeat("0", 64) + `"]`},
		"renderdag":      {`[]`, `[2]`, `[0]`},
		"submitblock":    {`["` + newBlock + `"]`, `["00"]`, `["` + hex.EncodeToString(chain.rest[1].Encode()) + `"]`},
		"generate":       {`[1]`, `[0]`},
		"setgenerate":    {`[true,2]`, `[false]`, `[true,-1]`},
		"addnode":        {`["/ip4/10.0.0.3/tcp/9700/p2p/12D3KooWPeerC","add"]`, `["not-a-multiaddr","onetry"]`, `["x","remove"]`},
		"disconnectnode": {`["12D3KooWPeerA"]`},
		"ban":            {`["12D3KooWPeerB",60]`, `["garbage"]`},
		"unban":          {`["12D3KooWPeerB"]`},
		"help":           {`[]`, `["getblock"]`, `["nosuch"]`},
	}
	for i, m := range methodsSorted {
		f.Add(uint8(i), []byte(`[]`))
		f.Add(uint8(i)|0x80, []byte(`null`))
		for _, p := range valid[m.name] {
			f.Add(uint8(i), []byte(p))
		}
	}
	f.Add(uint8(0), []byte(`[{"method":"getblockcount","id":1},{"jsonrpc":"2.0","method":"getdagtips"}]`))
	f.Add(uint8(0), []byte(`{"jsonrpc":"2.0","method":"getblockhash","params":[0]}`))
	f.Fuzz(func(t *testing.T, which uint8, params []byte) {
		m := methodsSorted[int(which&0x7f)%len(methodsSorted)]
		var body []byte
		if json.Valid(params) {
			name, _ := json.Marshal(m.name)
			if which&0x80 != 0 {
				body = fmt.Appendf(nil, `{"method":%s,"params":%s,"id":7}`, name, params)
			} else {
				body = fmt.Appendf(nil, `{"jsonrpc":"2.0","method":%s,"params":%s,"id":7}`, name, params)
			}
		} else {
			body = params
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.SetBasicAuth(testUser, testPass)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if logged := log.take(); len(logged) > 0 {
			t.Fatalf("body %s: the server logged errors:\n%s", body, strings.Join(logged, "\n"))
		}
		out := bytes.TrimSpace(rec.Body.Bytes())
		switch rec.Code {
		case http.StatusNoContent:
			if len(out) != 0 {
				t.Fatalf("204 with a body: %s", out)
			}
			return
		case http.StatusOK:
		default:
			t.Fatalf("body %s: HTTP %d: %s", body, rec.Code, out)
		}
		if !json.Valid(out) {
			t.Fatalf("body %s: invalid JSON answer %s", body, out)
		}
		var resps []map[string]json.RawMessage
		if len(out) > 0 && out[0] == '[' {
			if err := json.Unmarshal(out, &resps); err != nil {
				t.Fatal(err)
			}
		} else {
			var r map[string]json.RawMessage
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("body %s: answer is not an object: %s", body, out)
			}
			resps = append(resps, r)
		}
		for _, r := range resps {
			_, hasID := r["id"]
			res, hasRes := r["result"]
			e, hasErr := r["error"]
			ok := hasRes && (!hasErr || string(e) == "null")
			failed := hasErr && string(e) != "null" && (!hasRes || string(res) == "null")
			if !hasID || ok == failed {
				t.Fatalf("body %s: answer is neither a result nor an error: %s", body, out)
			}
			if failed {
				var rerr Error
				if err := json.Unmarshal(e, &rerr); err != nil || rerr.Message == "" {
					t.Fatalf("body %s: malformed error %s", body, e)
				}
			}
		}
	})
}
