package rpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchClients is the number of concurrent clients.
const benchClients = 16

// BenchmarkRPC measures requests per second over loopback with benchClients
// concurrent keep-alive clients, against a minimal net/http JSON handler
// answering the same result in the same run (reported as baseline-req/s and
// ratio = rpc / baseline). Figures are measured, never asserted.
//
//	go test -run '^$' -bench RPC -benchtime 20000x ./rpc/
func BenchmarkRPC(b *testing.B) {
	e := startServer(b, nil)
	for i := range 1000 {
		e.metrics.BlockMined(fmt.Sprintf("%064x", i), time.Duration(i)*time.Millisecond)
	}
	results := map[string]func() any{
		"getblockcount":   func() any { return e.chain.dag.Status().Count },
		"getblockmetrics": func() any { return e.metrics.BlockMetrics() },
	}
	for _, method := range []string{"getblockcount", "getblockmetrics"} {
		b.Run(method, func(b *testing.B) {
			result := results[method]
			baseline := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var req struct {
					Method string          `json:"method"`
					ID     json.RawMessage `json:"id"`
				}
				if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(map[string]any{"result": result(), "error": nil, "id": req.ID})
			}))
			defer baseline.Close()

			body := fmt.Sprintf(`{"jsonrpc":"1.0","method":%q,"params":[],"id":1}`, method)
			b.ReportAllocs()
			b.ResetTimer()
			rpc := load(b, e.url, body, b.N, true)
			b.StopTimer()
			base := load(b, baseline.URL, body, b.N, false)
			rps := float64(b.N) / rpc.Seconds()
			brps := float64(b.N) / base.Seconds()
			b.ReportMetric(rps, "req/s")
			b.ReportMetric(brps, "baseline-req/s")
			b.ReportMetric(rps/brps, "ratio")
		})
	}
}

// load sends n requests from benchClients goroutines and returns the time.
func load(b *testing.B, url, body string, n int, auth bool) time.Duration {
	tr := &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
				if auth {
					req.SetBasicAuth(testUser, testPass)
				}
				resp, err := client.Do(req)
				if err != nil {
					failed.Store(err)
					return
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`"error":null`)) {
					failed.Store(fmt.Errorf("HTTP %d: %.100s", resp.StatusCode, out))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}
