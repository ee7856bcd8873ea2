package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDaemonRPCUnderAbuse: a daemon with default flags (its RPC server and
// --metrics on loopback) faces one address that opens 1,100 connections
// and trickles nothing after a partial header, guesses the password on 300
// connections at once, and asks for a batch of 400 renderdag calls. A
// client from another address is answered at once throughout, the guesses
// are checked about once per delay window, and the batch's reply stays
// under the cap with errors for the calls past it.
func TestDaemonRPCUnderAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dagnode process")
	}
	p := startProc(t, "A", "--metrics", "127.0.0.1:0")
	if err := p.generate(300); err != nil {
		t.Fatal(err)
	}
	url := p.client.URL()
	server := strings.TrimPrefix(url, "http://")
	other := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	user, pass := p.client.Credentials()
	served := func(what string) time.Duration {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"method":"getblockcount","params":[],"id":1}`))
		req.SetBasicAuth(user, pass)
		start := time.Now()
		resp, err := other.Do(req)
		if err != nil {
			t.Fatalf("%s: a client from another address: %v", what, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: a client from another address: HTTP %d", what, resp.StatusCode)
		}
		return time.Since(start)
	}

	// 1,100 slow connections from 127.0.0.1.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 1100 {
		c, err := net.Dial("tcp4", server)
		if err != nil {
			t.Fatalf("flood: %v", err)
		}
		c.Write([]byte("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"))
		conns = append(conns, c)
	}
	t.Logf("during a flood of 1,100 slow connections: another address answered in %v", served("flood").Round(time.Microsecond))
	for _, c := range conns {
		c.Close()
	}
	conns = nil

	// 300 parallel password guesses from 127.0.0.1 for 3 s (connections
	// beyond the per-address bound are closed: they count as refused).
	var checked, throttled, refused atomic.Int64
	stop := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for range 300 {
		wg.Go(func() {
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for time.Now().Before(stop) {
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
				req.SetBasicAuth(user, "guess")
				resp, err := hc.Do(req)
				if err != nil {
					refused.Add(1)
					time.Sleep(10 * time.Millisecond) // a refused connection: try again shortly
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusUnauthorized:
					checked.Add(1)
				case http.StatusTooManyRequests:
					throttled.Add(1)
				}
			}
		})
	}
	during := served("guessing")
	wg.Wait()
	t.Logf("300 parallel guessers for 3 s: %d guesses checked (%.1f/s), %d answered 429, %d connections refused; another address answered in %v",
		checked.Load(), float64(checked.Load())/3, throttled.Load(), refused.Load(), during.Round(time.Microsecond))
	if checked.Load() > 10 {
		t.Fatalf("%d guesses checked in 3 s", checked.Load())
	}
	// The guessing address gets its turn back once the window has passed.
	pollUntil(t, 10*time.Second, "the guessing address served again", func() bool { return p.call(nil, "getblockcount") == nil })

	// A batch of 400 renderdag calls.
	var batch []string
	for i := range 400 {
		batch = append(batch, fmt.Sprintf(`{"jsonrpc":"2.0","method":"renderdag","params":[],"id":%d}`, i))
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("["+strings.Join(batch, ",")+"]"))
	req.SetBasicAuth(user, pass)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tooLarge := bytes.Count(body, []byte("reply too large"))
	t.Logf("400 renderdag calls in one batch: a reply of %d bytes, %d calls refused as too large", len(body), tooLarge)
	if len(body) > 33<<20 || tooLarge == 0 {
		t.Fatalf("reply of %d bytes with %d refusals", len(body), tooLarge)
	}
	served("after the batch")
}
