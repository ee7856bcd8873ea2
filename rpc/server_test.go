package rpc

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
)

func TestDefaultPort(t *testing.T) {
	for net, want := range map[string]int{"mainnet": 9710, "testnet": 9711, "simnet": 9712, "regtest": 9713, "other": 0} {
		if got := DefaultPort(net); got != want {
			t.Errorf("DefaultPort(%s) = %d, want %d", net, got, want)
		}
	}
}

func TestNewConfigErrors(t *testing.T) {
	c := newTestChain(t, 1, 0)
	for name, cfg := range map[string]Config{
		"no chain":        {User: "u", Pass: "p"},
		"no credentials":  {Chain: c.dag},
		"user no pass":    {Chain: c.dag, User: "u", CookiePath: "x"},
		"reserved user":   {Chain: c.dag, User: CookieUser, Pass: "p"},
		"bad listen":      {Chain: c.dag, User: "u", Pass: "p", Listen: []string{"127.0.0.1"}},
		"negative limit":  {Chain: c.dag, User: "u", Pass: "p", MaxConcurrent: -1},
		"negative body":   {Chain: c.dag, User: "u", Pass: "p", MaxBodyBytes: -1},
		"negative timout": {Chain: c.dag, User: "u", Pass: "p", RequestTimeout: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	s, err := New(Config{Chain: c.dag, User: "u", Pass: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.cfg.Listen; len(got) != 1 || got[0] != "127.0.0.1:9713" {
		t.Errorf("default listen = %v, want 127.0.0.1:9713", got)
	}
	if s.cfg.MaxBodyBytes != DefaultMaxBodyBytes || s.cfg.RequestTimeout != DefaultRequestTimeout || s.cfg.MaxConcurrent != DefaultMaxConcurrent {
		t.Errorf("defaults not applied: %+v", s.cfg)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	if err := s.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestEnvelopeV1(t *testing.T) {
	e := startServer(t, nil)
	count := e.chain.dag.Status().Count
	for _, tc := range []struct{ req, want string }{
		// btcd / btcctl style: "jsonrpc":"1.0", numeric id.
		{`{"jsonrpc":"1.0","method":"getblockcount","params":[],"id":7}`, fmt.Sprintf(`{"result":%d,"error":null,"id":7}`, count)},
		// No jsonrpc member at all, string id, no params.
		{`{"method":"getblockcount","id":"abc"}`, fmt.Sprintf(`{"result":%d,"error":null,"id":"abc"}`, count)},
		// The id is echoed byte for byte.
		{`{"method":"getblockcount","params":null,"id":1.50}`, fmt.Sprintf(`{"result":%d,"error":null,"id":1.50}`, count)},
		// No id: answered with id null (Bitcoin Core).
		{`{"method":"getblockcount","params":[]}`, fmt.Sprintf(`{"result":%d,"error":null,"id":null}`, count)},
		// An error: result null, error object.
		{`{"method":"nosuch","params":[],"id":2}`, `{"result":null,"error":{"code":-32601,"message":"method not found: \"nosuch\" (see help)"},"id":2}`},
	} {
		status, body := post(t, e.url, tc.req, true)
		if status != http.StatusOK || strings.TrimSpace(string(body)) != tc.want {
			t.Errorf("%s:\n got HTTP %d %s\nwant %s", tc.req, status, body, tc.want)
		}
		if !strings.HasSuffix(string(body), "\n") {
			t.Errorf("%s: response not newline-terminated", tc.req)
		}
	}
}

func TestEnvelopeV2(t *testing.T) {
	e := startServer(t, nil)
	count := e.chain.dag.Status().Count
	for _, tc := range []struct{ req, want string }{
		{`{"jsonrpc":"2.0","method":"getblockcount","id":"x"}`, fmt.Sprintf(`{"jsonrpc":"2.0","result":%d,"id":"x"}`, count)},
		{`{"jsonrpc":"2.0","method":"getblockhash","params":{"height":0},"id":3}`,
			fmt.Sprintf(`{"jsonrpc":"2.0","result":["%s"],"id":3}`, dag.RegTestParams.GenesisHash)},
		{`{"jsonrpc":"2.0","method":"getblockhash","params":{"hieght":0},"id":4}`,
			`{"jsonrpc":"2.0","error":{"code":-32602,"message":"getblockhash has no param \"hieght\" (usage: getblockhash height)"},"id":4}`},
		{`{"jsonrpc":"2.0","method":"getblockcount","id":null}`, fmt.Sprintf(`{"jsonrpc":"2.0","result":%d,"id":null}`, count)},
		{`{"jsonrpc":"3.0","method":"getblockcount","id":1}`,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: unsupported jsonrpc version \"3.0\" (use \"2.0\", or omit it for 1.0)"},"id":null}`},
		{`{"jsonrpc":"2.0","method":"getblockcount","id":{"a":1}}`,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: id must be a string, a number or null"},"id":null}`},
		{`{"jsonrpc":"2.0","method":5,"id":1}`, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: method must be a string"},"id":1}`},
		{`{"jsonrpc":"2.0","id":1}`, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: missing method"},"id":1}`},
		{`{"jsonrpc":"2.0","method":"getblockcount","params":"x","id":1}`,
			`{"jsonrpc":"2.0","error":{"code":-32602,"message":"getblockcount: params must be an array or an object"},"id":1}`},
	} {
		status, body := post(t, e.url, tc.req, true)
		if status != http.StatusOK || strings.TrimSpace(string(body)) != tc.want {
			t.Errorf("%s:\n got HTTP %d %s\nwant %s", tc.req, status, body, tc.want)
		}
	}
}

func TestNotification(t *testing.T) {
	e := startServer(t, nil)
	status, body := post(t, e.url, `{"jsonrpc":"2.0","method":"setgenerate","params":[true,3]}`, true)
	if status != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("notification: HTTP %d %q, want 204 and no body", status, body)
	}
	if !e.miner.Generating() || e.miner.Workers() != 3 {
		t.Error("notification did not run")
	}
	// A notification to an unknown method is not answered either.
	status, body = post(t, e.url, `{"jsonrpc":"2.0","method":"nosuch"}`, true)
	if status != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("notification error: HTTP %d %q, want 204", status, body)
	}
}

func TestBatch(t *testing.T) {
	e := startServer(t, nil)
	count := e.chain.dag.Status().Count
	req := `[
		{"method":"getblockcount","params":[],"id":1},
		{"jsonrpc":"2.0","method":"nosuch","id":2},
		{"jsonrpc":"2.0","method":"getblockcount"},
		5,
		{"jsonrpc":"2.0","method":"getblockhash","params":[-1],"id":"neg"},
		{"jsonrpc":"2.0","method":"getblockhash","params":[1,2],"id":"two"}
	]`
	status, body := post(t, e.url, req, true)
	if status != http.StatusOK {
		t.Fatalf("HTTP %d", status)
	}
	var out []map[string]json.RawMessage
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(out) != 5 {
		t.Fatalf("got %d responses, want 5 (the notification gets none): %s", len(out), body)
	}
	wantIDs := []string{`1`, `2`, `null`, `"neg"`, `"two"`}
	wantCodes := []ErrorCode{0, CodeMethodNotFound, CodeInvalidRequest, CodeOutOfRange, CodeInvalidParams}
	for i, r := range out {
		if string(r["id"]) != wantIDs[i] {
			t.Errorf("response %d: id %s, want %s", i, r["id"], wantIDs[i])
		}
		var code ErrorCode
		if raw, ok := r["error"]; ok && string(raw) != "null" {
			var e Error
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			code = e.Code
			if _, has := r["result"]; has && i != 0 {
				if _, v1 := r["jsonrpc"]; v1 {
					t.Errorf("response %d: 2.0 error response has a result", i)
				}
			}
		}
		if code != wantCodes[i] {
			t.Errorf("response %d: code %d, want %d: %s", i, code, wantCodes[i], body)
		}
	}
	if string(out[0]["result"]) != strconv.Itoa(count) || string(out[0]["error"]) != "null" {
		t.Errorf("1.0 element: %s", body)
	}
	if _, ok := out[0]["jsonrpc"]; ok {
		t.Error("1.0 element answered with a jsonrpc member")
	}

	// Only notifications: 204.
	status, body = post(t, e.url, `[{"jsonrpc":"2.0","method":"getblockcount"}]`, true)
	if status != http.StatusNoContent || len(body) != 0 {
		t.Errorf("batch of notifications: HTTP %d %q", status, body)
	}
	// Empty batch and oversize batch: one -32600.
	for _, req := range []string{`[]`, "[" + strings.Repeat(`{"method":"uptime","id":1},`, MaxBatchLength) + `{"method":"uptime","id":1}]`} {
		status, body = post(t, e.url, req, true)
		var r v1Resp
		if err := json.Unmarshal(body, &r); err != nil || status != http.StatusOK || r.Error == nil || r.Error.Code != CodeInvalidRequest || string(r.ID) != "null" {
			t.Errorf("batch %.30s...: HTTP %d %s", req, status, body)
		}
	}
}

func TestParseError(t *testing.T) {
	e := startServer(t, nil)
	for _, req := range []string{`{"method":`, `not json`, ``, `[{"method":"getblockcount","id":1},]`} {
		status, body := post(t, e.url, req, true)
		var r v1Resp
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("%q: %v: %s", req, err, body)
		}
		if status != http.StatusOK || r.Error == nil || r.Error.Code != CodeParseError || string(r.ID) != "null" {
			t.Errorf("%q: HTTP %d %s, want -32700 with id null", req, status, body)
		}
	}
}

func TestOversizeBody(t *testing.T) {
	e := startServer(t, func(c *Config) { c.MaxBodyBytes = 1024 })
	big := `{"method":"help","params":["` + strings.Repeat("a", 2000) + `"],"id":1}`
	check := func(name string, status int, body []byte) {
		t.Helper()
		var r v1Resp
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("%s: %v: %s", name, err, body)
		}
		if status != http.StatusRequestEntityTooLarge || r.Error == nil || r.Error.Code != CodeInvalidRequest ||
			!strings.Contains(r.Error.Message, "limit is 1024 bytes") {
			t.Errorf("%s: HTTP %d %s, want 413 with -32600", name, status, body)
		}
	}
	status, body := post(t, e.url, big, true)
	check("with Content-Length", status, body)

	// Chunked: no Content-Length, caught while reading.
	req, _ := http.NewRequest(http.MethodPost, e.url, io.MultiReader(strings.NewReader(big)))
	req.SetBasicAuth(testUser, testPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.ContentLength != 0 && resp.Request.ContentLength != -1 {
		t.Fatalf("request was not chunked (ContentLength %d)", resp.Request.ContentLength)
	}
	check("chunked", resp.StatusCode, body)

	// Just under the limit still works.
	status, body = post(t, e.url, `{"method":"uptime","params":[],"id":1}`, true)
	if status != http.StatusOK || !strings.Contains(string(body), `"error":null`) {
		t.Errorf("small request: HTTP %d %s", status, body)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := startServer(t, nil)
	req, _ := http.NewRequest(http.MethodGet, e.url, nil)
	req.SetBasicAuth(testUser, testPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: HTTP %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestParamErrors(t *testing.T) {
	e := startServer(t, nil)
	for _, tc := range []struct {
		method string
		params []any
		code   ErrorCode
		msg    string
	}{
		{"getblockhash", nil, CodeInvalidParams, "wrong number of params for getblockhash: got 0, want 1 (usage: getblockhash height)"},
		{"getblockhash", []any{1, 2}, CodeInvalidParams, "wrong number of params for getblockhash: got 2, want 1"},
		{"getblock", []any{"x", true, 3}, CodeInvalidParams, "got 3, want 1 to 2 (usage: getblock \"hash\" (verbose=true))"},
		{"getblockhash", []any{"1"}, CodeInvalidParams, "getblockhash: param 1 (height) must be an integer, got string"},
		{"getblockhash", []any{1.5}, CodeInvalidParams, "must be an integer, got 1.5"},
		{"getblockhash", []any{nil}, CodeInvalidParams, "param 1 (height) is required"},
		{"getblockhash", []any{-1}, CodeOutOfRange, "getblockhash: param 1 (height) out of range: -1 (must be 0 to"},
		{"getblockhash", []any{json.Number("99999999999999999999")}, CodeOutOfRange, "out of range: 99999999999999999999"},
		{"getblockhash", []any{1000}, CodeOutOfRange, "block height out of range: 1000 (the DAG's max height is"},
		{"getblock", []any{true}, CodeInvalidParams, "param 1 (hash) must be a string, got boolean"},
		{"getblock", []any{"abc"}, CodeInvalidParameter, `param 1 (hash) is not a block hash (want 64 hex digits): "abc"`},
		{"getblock", []any{strings.Repeat("0", 64), "yes"}, CodeInvalidParams, "param 2 (verbose) must be a boolean, got string"},
		{"getblock", []any{strings.Repeat("0", 64)}, CodeBlockNotFound, "block not found: 0000"},
		{"generate", []any{0}, CodeOutOfRange, "generate: param 1 (numblocks) out of range: 0 (must be 1 to 10000)"},
		{"generate", []any{10001}, CodeOutOfRange, "out of range: 10001"},
		{"setgenerate", []any{true, -2}, CodeOutOfRange, "param 2 (genproclimit) out of range: -2 (must be -1 to 1024)"},
		{"addnode", []any{"/ip4/1.2.3.4/tcp/1/p2p/x", "sometimes"}, CodeInvalidParameter, `must be one of add, remove, onetry, got "sometimes"`},
		{"ban", []any{"12D3KooWX", 0}, CodeOutOfRange, "param 2 (seconds) out of range: 0"},
		{"help", []any{[]int{1}}, CodeInvalidParams, "param 1 (command) must be a string, got array"},
		{"getblockcount", []any{1}, CodeInvalidParams, "wrong number of params for getblockcount: got 1, want 0"},
	} {
		err := e.fail(t, tc.code, tc.method, tc.params...)
		if !strings.Contains(err.Message, tc.msg) {
			t.Errorf("%s %v: message %q does not contain %q", tc.method, tc.params, err.Message, tc.msg)
		}
	}
}

func TestHandlerPanic(t *testing.T) {
	e := startServer(t, nil)
	e.miner.panicRate = true
	err := e.fail(t, CodeInternal, "gethashespersec")
	if err.Message != "internal error in gethashespersec" {
		t.Errorf("panic message %q leaks details or is unclear", err.Message)
	}
	// The server still serves.
	e.ok(t, nil, "getblockcount")
}

func TestConcurrencyLimit(t *testing.T) {
	e := startServer(t, func(c *Config) {
		c.MaxConcurrent = 2
		c.MaxQueued = 1
	})
	e.miner.entered = make(chan struct{}, 8)
	e.miner.release = make(chan struct{})
	e.miner.hashes = []dag.Hash{dag.RegTestParams.GenesisHash}
	type res struct {
		status int
		body   []byte
	}
	results := make(chan res, 3)
	send := func() {
		status, body := post(t, e.url, `{"method":"generate","params":[1],"id":1}`, true)
		results <- res{status, body}
	}
	go send()
	go send()
	<-e.miner.entered
	<-e.miner.entered
	go send() // waits in the queue
	waitFor(t, "a queued request", func() bool { return e.srv.queued.Load() == 1 })

	// The queue is full: 503 at once.
	status, body := post(t, e.url, `{"method":"getblockcount","params":[],"id":1}`, true)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("over the limit: HTTP %d %s, want 503", status, body)
	}
	close(e.miner.release)
	for range 3 {
		r := <-results
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `"error":null`) {
			t.Errorf("limited request: HTTP %d %s", r.status, r.body)
		}
	}
	e.ok(t, nil, "getblockcount")
}

func TestRequestTimeout(t *testing.T) {
	e := startServer(t, func(c *Config) {
		c.RequestTimeout = 50 * time.Millisecond
		c.GenerateTimeout = 10 * time.Second
	})
	e.peers.blockConnect = true
	err := e.fail(t, CodeMisc, "addnode", "/ip4/10.0.0.9/tcp/1/p2p/12D3KooWZ", "onetry")
	if !strings.Contains(err.Message, "timed out") {
		t.Errorf("timeout message: %q", err.Message)
	}
	// generate runs under its own, longer bound.
	e.miner.genLatency = 200 * time.Millisecond
	e.miner.hashes = []dag.Hash{dag.RegTestParams.GenesisHash}
	var hashes []string
	e.ok(t, &hashes, "generate", 1)
	if len(hashes) != 1 {
		t.Errorf("generate: %v", hashes)
	}
}

func TestCloseCancelsInFlight(t *testing.T) {
	e := startServer(t, nil)
	e.miner.entered = make(chan struct{}, 1)
	e.miner.release = make(chan struct{})
	e.miner.hashes = []dag.Hash{dag.RegTestParams.GenesisHash}
	done := make(chan []byte, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(`{"method":"generate","params":[5],"id":1}`))
		req.SetBasicAuth(testUser, testPass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- nil
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- b
	}()
	<-e.miner.entered
	t0 := time.Now()
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d >= shutdownTimeout {
		t.Errorf("Close took %v: the in-flight generate was not cancelled", d)
	}
	if err, _ := e.miner.genCtxErr.Load().(error); err == nil {
		t.Error("generate's context was not cancelled by Close")
	}
	if b := <-done; b != nil && !strings.Contains(string(b), "generate stopped after 1 of 5 blocks") {
		t.Errorf("interrupted generate answered %s", b)
	}
	if err := e.srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := http.Post(e.url, "application/json", strings.NewReader("{}")); err == nil {
		t.Error("server still answers after Close")
	}
}
