package rpc

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dagnode/dagnode/internal/securefile"
)

// CookieUser is the user name of cookie auth, as in bitcoind's .cookie file.
const CookieUser = "__cookie__"

const (
	// cookieSecretBytes is the entropy of a cookie password (hex-encoded).
	cookieSecretBytes = 32
	// maxAuthFailEntries bounds the per-address failure records.
	maxAuthFailEntries = 4096
	// authFailForget is how long a failure streak is remembered.
	authFailForget = 10 * time.Minute
)

// authenticator checks basic-auth credentials in constant time and delays
// answers to addresses that keep failing.
type authenticator struct {
	creds atomic.Pointer[[2][sha256.Size]byte] // SHA-256 of user and pass

	base, max time.Duration
	mu        sync.Mutex // guards fails
	fails     map[string]*failRecord
	nfails    atomic.Int64 // len(fails), read without the lock
	now       func() time.Time
}

type failRecord struct {
	n    int
	last time.Time
	// until ends the window in which the address gets no credential check
	// at all (HTTP 429): one guess per delay, however many connections.
	until time.Time
}

func newAuthenticator(base, max time.Duration) *authenticator {
	return &authenticator{base: base, max: max, fails: make(map[string]*failRecord), now: time.Now}
}

func (a *authenticator) setCredentials(user, pass string) {
	c := [2][sha256.Size]byte{sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))}
	a.creds.Store(&c)
}

// check reports whether r carries the right credentials. Both user and pass
// are hashed and compared in constant time, whatever their lengths.
func (a *authenticator) check(r *http.Request) bool {
	c := a.creds.Load()
	user, pass, ok := r.BasicAuth()
	if c == nil {
		return false
	}
	uh, ph := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	match := subtle.ConstantTimeCompare(uh[:], c[0][:]) & subtle.ConstantTimeCompare(ph[:], c[1][:])
	return ok && match == 1
}

// failed records a failure from ip and returns the streak length and the
// delay to apply: base doubled for each failure after the first, at most max.
func (a *authenticator) failed(ip string) (int, time.Duration) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	rec := a.fails[ip]
	if rec != nil && now.Sub(rec.last) > authFailForget {
		rec.n = 0
	}
	if rec == nil {
		if len(a.fails) >= maxAuthFailEntries {
			a.evictLocked(now)
		}
		rec = &failRecord{}
		a.fails[ip] = rec
		a.nfails.Store(int64(len(a.fails)))
	}
	rec.n++
	rec.last = now
	d := a.delay(rec.n)
	rec.until = now.Add(d)
	return rec.n, d
}

// delay is the wait after the nth failure in a row: base doubled for each
// failure after the first, at most max.
func (a *authenticator) delay(n int) time.Duration {
	d := a.base
	for i := 1; i < n && d < a.max; i++ {
		d *= 2
	}
	return min(d, a.max)
}

// admit decides whether a request from ip gets its credentials checked. An
// address with a failure streak gets one check per delay window: admit
// reserves the window, and refuses (returning how long to wait) requests
// that arrive inside it. So parallel connections guess no faster than one
// sequential client.
func (a *authenticator) admit(ip string) time.Duration {
	if a.nfails.Load() == 0 {
		return 0
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	rec := a.fails[ip]
	if rec == nil || now.Sub(rec.last) > authFailForget {
		return 0
	}
	if now.Before(rec.until) {
		return rec.until.Sub(now)
	}
	rec.until = now.Add(a.delay(rec.n))
	return 0
}

// evictLocked drops expired records, or if none, one arbitrary record.
func (a *authenticator) evictLocked(now time.Time) {
	for ip, rec := range a.fails {
		if now.Sub(rec.last) > authFailForget {
			delete(a.fails, ip)
		}
	}
	if len(a.fails) >= maxAuthFailEntries {
		for ip := range a.fails {
			delete(a.fails, ip)
			break
		}
	}
}

// succeeded ends ip's failure streak.
func (a *authenticator) succeeded(ip string) {
	if a.nfails.Load() == 0 {
		return
	}
	a.mu.Lock()
	delete(a.fails, ip)
	a.nfails.Store(int64(len(a.fails)))
	a.mu.Unlock()
}

// authThrottled answers 429: ip failed to log in and its delay window is
// still open.
func (s *Server) authThrottled(w http.ResponseWriter, ip string, wait time.Duration) {
	s.log.Debug("rpc login attempt refused: too many failures", "remote", ip, "wait", wait)
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	http.Error(w, "429 too many requests: failed logins from this address; retry later", http.StatusTooManyRequests)
}

// authFailed answers 401 after the failure delay. The delay is slept without
// any lock held and ends early if the client leaves or the server closes, so
// it never holds up other clients.
func (s *Server) authFailed(w http.ResponseWriter, r *http.Request, ip string) {
	n, d := s.auth.failed(ip)
	if n == 1 {
		s.log.Warn("rpc authentication failed", "remote", ip)
	} else {
		s.log.Debug("rpc authentication failed again", "remote", ip, "failures", n, "delay", d)
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-r.Context().Done():
		t.Stop()
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="dagnode RPC"`)
	http.Error(w, "401 Unauthorized: wrong or missing RPC credentials", http.StatusUnauthorized)
}

// writeCookie writes "__cookie__:<random hex>" to path with mode 0600 through
// a temporary file and a rename, so a reader never sees a partial cookie, and
// returns the password.
func writeCookie(path string) (string, error) {
	secret := make([]byte, cookieSecretBytes)
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("cookie: %w", err)
	}
	pass := hex.EncodeToString(secret)
	if err := securefile.Write(path, []byte(CookieUser+":"+pass)); err != nil {
		return "", fmt.Errorf("cookie: %w", err)
	}
	return pass, nil
}
