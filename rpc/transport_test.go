package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// tlsEnv starts a server with the TLS mode and listen address given, its
// key pair in a fresh directory, and returns it with the port it bound.
func tlsEnv(t *testing.T, mode TLSMode, listen string, log *slog.Logger) (*testEnv, string, string) {
	t.Helper()
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "rpc.cert"), filepath.Join(dir, "rpc.key")
	e := startServer(t, func(c *Config) {
		c.Listen, c.TLS, c.CertPath, c.KeyPath = []string{listen}, mode, cert, key
		if log != nil {
			c.Logger = log
		}
	})
	_, port, _ := net.SplitHostPort(e.srv.Addrs()[0].String())
	return e, port, cert
}

func getBlockCount(t *testing.T, c *Client) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Call(ctx, "getblockcount")
	return err
}

// TestTLS: on loopback the server speaks plain HTTP unless TLS is asked
// for; on any other address TLS is the default, with a self-signed pair
// made on first use (mode 0600) and reused after; a client that trusts
// the certificate file works, a plain HTTP client does not.
func TestTLS(t *testing.T) {
	plain, _, cert := tlsEnv(t, TLSAuto, "127.0.0.1:0", nil)
	if err := getBlockCount(t, NewClient(plain.srv.Addrs()[0].String(), testUser, testPass)); err != nil {
		t.Fatalf("plain HTTP on loopback: %v", err)
	}
	if _, err := os.Stat(cert); !os.IsNotExist(err) {
		t.Fatalf("a loopback-only server made a certificate (%v)", err)
	}

	for _, tc := range []struct {
		name   string
		mode   TLSMode
		listen string
	}{{"forced on loopback", TLSOn, "127.0.0.1:0"}, {"default off loopback", TLSAuto, "0.0.0.0:0"}} {
		t.Run(tc.name, func(t *testing.T) {
			e, port, cert := tlsEnv(t, tc.mode, tc.listen, nil)
			addr := net.JoinHostPort("127.0.0.1", port)
			for _, f := range []string{cert, strings.TrimSuffix(cert, ".cert") + ".key"} {
				fi, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
				}
			}
			tc, err := TLSClientConfig(cert)
			if err != nil {
				t.Fatal(err)
			}
			if err := getBlockCount(t, NewTLSClient(addr, testUser, testPass, tc)); err != nil {
				t.Fatalf("TLS client trusting the node's certificate: %v", err)
			}
			if err := getBlockCount(t, NewClient(addr, testUser, testPass)); err == nil {
				t.Fatal("a plain HTTP client was answered by a TLS server")
			}
			// A client trusting another certificate refuses the server.
			other := filepath.Join(t.TempDir(), "other.cert")
			if _, _, err := LoadOrCreateCert(other, other+".key", nil); err != nil {
				t.Fatal(err)
			}
			oc, _ := TLSClientConfig(other)
			if err := getBlockCount(t, NewTLSClient(addr, testUser, testPass, oc)); err == nil {
				t.Fatal("a client trusting another certificate was answered")
			}
			// The pair is reused: a restart serves the same certificate.
			before, _ := os.ReadFile(cert)
			e.srv.Close()
			if _, created, err := LoadOrCreateCert(cert, strings.TrimSuffix(cert, ".cert")+".key", nil); err != nil || created {
				t.Fatalf("reloading the pair: created %v, %v", created, err)
			}
			after, _ := os.ReadFile(cert)
			if !bytes.Equal(before, after) {
				t.Fatal("the certificate changed on reload")
			}
		})
	}
}

// TestCertPairErrors: one file of the pair without the other, or a pair
// that does not match, is a clear error, and nothing is overwritten.
func TestCertPairErrors(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "rpc.cert"), filepath.Join(dir, "rpc.key")
	if _, _, err := LoadOrCreateCert(cert, key, nil); err != nil {
		t.Fatal(err)
	}
	os.Remove(key)
	if _, _, err := LoadOrCreateCert(cert, key, nil); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Fatalf("certificate without its key: %v", err)
	}
	other := filepath.Join(dir, "other")
	if _, _, err := LoadOrCreateCert(other+".cert", key, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateCert(cert, key, nil); err == nil || !strings.Contains(err.Error(), "remove both") {
		t.Fatalf("mismatched pair: %v", err)
	}
	os.WriteFile(cert, []byte("garbage"), 0o600)
	if _, _, err := LoadOrCreateCert(cert, key, nil); err == nil {
		t.Fatal("a garbage certificate was loaded")
	}
	if b, _ := os.ReadFile(cert); string(b) != "garbage" {
		t.Fatal("the damaged certificate was overwritten")
	}
}

// TestPlainHTTPOffLoopbackWarns: TLSOff on a non-loopback address serves
// plain HTTP and says so at Warn.
func TestPlainHTTPOffLoopbackWarns(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	_, port, _ := tlsEnv(t, TLSOff, "0.0.0.0:0", log)
	if err := getBlockCount(t, NewClient(net.JoinHostPort("127.0.0.1", port), testUser, testPass)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "plain HTTP on a non-loopback address") {
		t.Fatalf("no warning; logs: %s", logs.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConnectionFloodLeavesOthersServed: an address holding its share of
// idle connections (a slow-header flood) gets no more, and a client from
// another address is served at once.
func TestConnectionFloodLeavesOthersServed(t *testing.T) {
	e := startServer(t, func(c *Config) { c.MaxClients, c.MaxClientsPerIP = 8, 4 })
	addr := e.srv.Addrs()[0].String()
	var flood []net.Conn
	t.Cleanup(func() {
		for _, c := range flood {
			c.Close()
		}
	})
	for range 4 {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")) // and never the rest
		flood = append(flood, c)
	}
	extra, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil || isNetTimeout(err) {
		t.Fatalf("a fifth connection from the flooding address was kept (%v)", err)
	}
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	start := time.Now()
	if status, body := postWith(t, other, e.url, `{"method":"getblockcount","params":[],"id":1}`, testUser, testPass); status != http.StatusOK {
		t.Fatalf("a client from another address during the flood: HTTP %d %s", status, body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a client from another address waited %v", d)
	}
}

func isNetTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestReplyCap: a batch whose replies would pass MaxReplyBytes gets the
// calls that fit, then a clear error for each of the others.
func TestReplyCap(t *testing.T) {
	probe := startServer(t, nil)
	_, one := post(t, probe.url, `{"jsonrpc":"2.0","method":"help","params":[],"id":0}`, true)
	limit := 3*len(one) + len(one)/2
	e := startServer(t, func(c *Config) { c.MaxReplyBytes = limit })
	var calls []string
	for i := range 10 {
		calls = append(calls, fmt.Sprintf(`{"jsonrpc":"2.0","method":"help","params":[],"id":%d}`, i))
	}
	status, body := post(t, e.url, "["+strings.Join(calls, ",")+"]", true)
	if status != http.StatusOK {
		t.Fatalf("HTTP %d", status)
	}
	if len(body) > limit+10*300 {
		t.Fatalf("reply of %d bytes with a limit of %d", len(body), limit)
	}
	var resps []struct {
		Result json.RawMessage `json:"result"`
		Error  *Error          `json:"error"`
	}
	if err := json.Unmarshal(body, &resps); err != nil {
		t.Fatal(err)
	}
	if len(resps) != 10 {
		t.Fatalf("%d responses, want 10", len(resps))
	}
	for i, r := range resps {
		if fits := i < 3; fits != (r.Error == nil) {
			t.Fatalf("call %d: error %v (the first 3 fit)", i, r.Error)
		}
		if r.Error != nil && !strings.Contains(r.Error.Message, "reply too large") {
			t.Fatalf("call %d: %s", i, r.Error.Message)
		}
	}
}

// TestBatchStopsWhenClientLeaves: the calls of a batch after the client
// went away are not run.
func TestBatchStopsWhenClientLeaves(t *testing.T) {
	e := startServer(t, nil)
	e.miner.entered = make(chan struct{}, 4)
	e.miner.release = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url,
			strings.NewReader(`[{"method":"generate","params":[1],"id":1},{"method":"generate","params":[1],"id":2}]`))
		req.SetBasicAuth(testUser, testPass)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-e.miner.entered
	cancel() // the client leaves while the first generate runs
	<-done
	waitFor(t, "the first generate to see the client leave", func() bool { return e.miner.genCtxErr.Load() != nil })
	select {
	case <-e.miner.entered:
		t.Fatal("the second call of the batch ran after the client left")
	case <-time.After(300 * time.Millisecond): // a call would start at once
	}
}

// TestBrowserRequestsRefused: a request with an Origin header is refused
// unless the origin is allowed; on a loopback listener a Host that is not
// a loopback name (DNS rebinding) is refused.
func TestBrowserRequestsRefused(t *testing.T) {
	const allowed = "https://dash.example:8443"
	e := startServer(t, func(c *Config) { c.AllowedOrigins = []string{allowed} })
	_, port, _ := net.SplitHostPort(e.srv.Addrs()[0].String())
	send := func(origin, host string) int {
		req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(`{"method":"getblockcount","params":[],"id":1}`))
		req.SetBasicAuth(testUser, testPass)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		origin, host string
		want         int
	}{
		{"", "", http.StatusOK},
		{"http://evil.example", "", http.StatusForbidden},
		{"null", "", http.StatusForbidden},
		{allowed, "", http.StatusOK},
		{"", "evil.example:" + port, http.StatusForbidden},
		{"", "localhost:" + port, http.StatusOK},
		{"", "[::1]:" + port, http.StatusOK},
		{"", "127.0.0.1", http.StatusOK},
	} {
		if got := send(c.origin, c.host); got != c.want {
			t.Errorf("origin %q host %q: HTTP %d, want %d", c.origin, c.host, got, c.want)
		}
	}
}
