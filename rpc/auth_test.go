package rpc

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAuthRequired(t *testing.T) {
	e := startServer(t, func(c *Config) { c.AuthFailDelay, c.AuthFailMaxDelay = time.Millisecond, time.Millisecond })
	body := `{"method":"getblockcount","params":[],"id":1}`
	for name, tc := range map[string]struct {
		user, pass string
		auth       bool
	}{
		"missing":    {auth: false},
		"wrong pass": {testUser, "nope", true},
		"wrong user": {"bob", testPass, true},
		"empty":      {"", "", true},
		"prefix":     {testUser, testPass[:3], true},
		"longer":     {testUser, testPass + "x", true},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
		if tc.auth {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: HTTP %d, want 401", name, resp.StatusCode)
		}
		if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s: no WWW-Authenticate: Basic header", name)
		}
	}
	if status, _ := post(t, e.url, body, true); status != http.StatusOK {
		t.Errorf("right credentials: HTTP %d", status)
	}
	// Even a GET is refused before anything else.
	resp, err := http.Get(e.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated GET: HTTP %d, want 401", resp.StatusCode)
	}
}

func TestAuthFailDelaySchedule(t *testing.T) {
	a := newAuthenticator(40*time.Millisecond, 160*time.Millisecond)
	now := time.Unix(1_000_000, 0)
	a.now = func() time.Time { return now }
	want := []time.Duration{40, 80, 160, 160, 160}
	for i, w := range want {
		n, d := a.failed("10.0.0.1")
		if n != i+1 || d != w*time.Millisecond {
			t.Errorf("failure %d: n=%d delay=%v, want n=%d delay=%v", i+1, n, d, i+1, w*time.Millisecond)
		}
	}
	// Another address has its own streak.
	if _, d := a.failed("10.0.0.2"); d != 40*time.Millisecond {
		t.Errorf("other address: delay %v, want 40ms", d)
	}
	// A success resets the streak.
	a.succeeded("10.0.0.1")
	if n, d := a.failed("10.0.0.1"); n != 1 || d != 40*time.Millisecond {
		t.Errorf("after success: n=%d delay=%v, want 1, 40ms", n, d)
	}
	// So do ten quiet minutes.
	a.failed("10.0.0.1")
	now = now.Add(authFailForget + time.Second)
	if n, _ := a.failed("10.0.0.1"); n != 1 {
		t.Errorf("after %v: streak %d, want 1", authFailForget, n)
	}
	// The table is bounded.
	for i := range maxAuthFailEntries + 10 {
		a.failed("ip" + string(rune(i)))
	}
	if len(a.fails) > maxAuthFailEntries {
		t.Errorf("%d failure records, bound %d", len(a.fails), maxAuthFailEntries)
	}
}

func TestAuthFailDelayGrows(t *testing.T) {
	base := 40 * time.Millisecond
	e := startServer(t, func(c *Config) { c.AuthFailDelay, c.AuthFailMaxDelay = base, 4*base })
	body := `{"method":"getblockcount","params":[],"id":1}`
	for i, want := range []time.Duration{base, 2 * base, 4 * base, 4 * base} {
		t0 := time.Now()
		status, _ := postAs(t, e.url, body, testUser, "wrong", true)
		took := time.Since(t0)
		if status != http.StatusUnauthorized {
			t.Fatalf("HTTP %d", status)
		}
		if took < want {
			t.Errorf("failure %d answered after %v, want at least %v", i+1, took, want)
		}
	}
}

// TestAuthFailDelayDoesNotBlockOthers: while a failed login from one
// address waits out its delay, a client from another address is served at
// once; the failing address itself gets 429 (no credential check) until
// its window ends.
func TestAuthFailDelayDoesNotBlockOthers(t *testing.T) {
	e := startServer(t, func(c *Config) { c.AuthFailDelay, c.AuthFailMaxDelay = 1500*time.Millisecond, 1500*time.Millisecond })
	bad := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(`{}`))
		req.SetBasicAuth(testUser, "wrong")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			bad <- 0
			return
		}
		resp.Body.Close()
		bad <- resp.StatusCode
	}()
	waitFor(t, "the failure to be recorded", func() bool { return e.srv.auth.nfails.Load() == 1 })
	// Another address (127.0.0.2 reaches a 127.0.0.1 listener on Linux).
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	if status, body := postWith(t, other, e.url, `{"method":"getblockcount","params":[],"id":1}`, testUser, testPass); status != http.StatusOK {
		t.Fatalf("a client from another address: HTTP %d %s", status, body)
	}
	// The failing address, even with the right credentials, waits.
	status, _ := postAs(t, e.url, `{"method":"getblockcount","params":[],"id":1}`, testUser, testPass, true)
	if status != http.StatusTooManyRequests {
		t.Fatalf("the failing address inside its window: HTTP %d, want 429", status)
	}
	select {
	case s := <-bad:
		t.Fatalf("the failed request was answered (%d) before its delay", s)
	default:
	}
	if s := <-bad; s != http.StatusUnauthorized {
		t.Errorf("failed request: HTTP %d", s)
	}
	waitFor(t, "the window to end", func() bool {
		status, _ := postAs(t, e.url, `{"method":"getblockcount","params":[],"id":1}`, testUser, testPass, true)
		return status == http.StatusOK
	})
}

// TestParallelGuessesThrottled: many connections guessing at once from one
// address get one credential check per delay window, the rest 429.
func TestParallelGuessesThrottled(t *testing.T) {
	e := startServer(t, func(c *Config) { c.AuthFailDelay, c.AuthFailMaxDelay = time.Second, time.Second })
	const guesses = DefaultMaxClientsPerIP - 2 // within the connection bound
	statuses := make(chan int, guesses)
	var wg sync.WaitGroup
	for range guesses {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(`{}`))
			req.SetBasicAuth(testUser, "guess")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	checked := 0
	for s := range statuses {
		switch s {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("a guess got HTTP %d", s)
		}
	}
	t.Logf("%d of %d parallel guesses were checked", checked, guesses)
	if checked > 3 {
		t.Fatalf("%d of %d parallel guesses were checked, want about one per window", checked, guesses)
	}
}

func TestCookieAuth(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", ".cookie")
	e := startServer(t, func(c *Config) {
		c.User, c.Pass, c.CookiePath = "", "", path
	})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("cookie mode %v, want 0600", fi.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^__cookie__:[0-9a-f]{64}$`).Match(raw) {
		t.Errorf("cookie content %q", raw)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "sub", ".cookie-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	user, pass, err := ReadCookie(path)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(e.url, user, pass)
	if _, err := c.Call(context.Background(), "getblockcount"); err != nil {
		t.Errorf("cookie credentials refused: %v", err)
	}
	if _, err := NewClient(e.url, user, "00"+pass[2:]).Call(context.Background(), "getblockcount"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong cookie: %v, want ErrUnauthorized", err)
	}
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cookie not removed on Close: %v", err)
	}
}

func TestReadCookieErrors(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"no colon": "abc", "empty pass": "__cookie__:", "too long": strings.Repeat("a", 2000) + ":b"} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ReadCookie(p); err == nil {
			t.Errorf("%s: ReadCookie accepted %q", name, content)
		}
	}
	if _, _, err := ReadCookie(filepath.Join(dir, "absent")); err == nil {
		t.Error("ReadCookie of a missing file succeeded")
	}
	p := filepath.Join(dir, "ok")
	os.WriteFile(p, []byte("__cookie__:abcd\n"), 0o600)
	if u, pw, err := ReadCookie(p); err != nil || u != CookieUser || pw != "abcd" {
		t.Errorf("ReadCookie = %q, %q, %v", u, pw, err)
	}
}
