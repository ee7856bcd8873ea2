package ui

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"

	"github.com/dagnode/dagnode/internal/loopback"
)

// Failed logins (a wrong token or wrong basic-auth credentials) are
// limited per IP: the basic-auth password is the RPC's, and the RPC
// server slows guessing down, so the dashboard must not be a faster
// oracle. A wrong session cookie is not a guess worth limiting (it is 32
// random bytes) and is not counted.
const (
	failRate       = rate.Limit(4) // failed logins a second, per IP
	failBurst      = 8
	maxFailEntries = 1024
	// maxSecretLen bounds a token or password before it is hashed.
	maxSecretLen = 1024
)

// cookiePrefix starts the session cookie's name; the port follows, since
// browsers share cookies between the ports of one host and two nodes'
// dashboards must not overwrite each other's.
const cookiePrefix = "dagnode_ui_"

type authResult int

const (
	authNone authResult = iota
	authOK
	authThrottled
)

// authenticator holds the basic-auth credentials and the failure limits.
type authenticator struct {
	creds atomic.Pointer[[2][sha256.Size]byte] // SHA-256 of user and pass

	mu    sync.Mutex // guards fails
	fails map[string]*rate.Limiter
}

func (a *authenticator) init() { a.fails = make(map[string]*rate.Limiter) }

func (a *authenticator) setCredentials(user, pass string) {
	c := [2][sha256.Size]byte{sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))}
	a.creds.Store(&c)
}

// checkBasic compares the request's basic-auth credentials in constant
// time, whatever their lengths.
func (a *authenticator) checkBasic(user, pass string) bool {
	c := a.creds.Load()
	if c == nil {
		return false
	}
	uh, ph := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	return subtle.ConstantTimeCompare(uh[:], c[0][:])&subtle.ConstantTimeCompare(ph[:], c[1][:]) == 1
}

// throttled reports whether ip has used up its failed logins for now.
func (a *authenticator) throttled(ip string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.fails[ip]
	return l != nil && l.Tokens() < 1
}

// failed counts a failed login from ip.
func (a *authenticator) failed(ip string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.fails[ip]
	if l == nil {
		if len(a.fails) >= maxFailEntries {
			for k, v := range a.fails {
				if v.Tokens() >= failBurst {
					delete(a.fails, k)
				}
			}
			if len(a.fails) >= maxFailEntries {
				clear(a.fails)
			}
		}
		l = rate.NewLimiter(failRate, failBurst)
		a.fails[ip] = l
	}
	l.Allow()
}

// equalSecret compares two secrets in constant time.
func equalSecret(got, want string) bool {
	if len(got) > maxSecretLen {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// authenticate accepts the session cookie, the token (in the URL, once:
// the answer sets the cookie) or basic auth.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, ip string) authResult {
	if c, err := r.Cookie(s.cookie); err == nil && equalSecret(c.Value, s.session) {
		return authOK
	}
	token := r.URL.Query().Get("token")
	user, pass, basic := r.BasicAuth()
	if token == "" && !basic {
		return authNone
	}
	if s.auth.throttled(ip) {
		s.log.Debug("ui login refused: too many failures", "remote", ip)
		return authThrottled
	}
	switch {
	case token != "" && equalSecret(token, s.token):
		http.SetCookie(w, &http.Cookie{
			Name: s.cookie, Value: s.session, Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
		})
		return authOK
	case token == "" && basic && len(user) <= maxSecretLen && len(pass) <= maxSecretLen && s.auth.checkBasic(user, pass):
		return authOK
	}
	s.auth.failed(ip)
	s.log.Debug("ui authentication failed", "remote", ip, "token", token != "", "basic", basic)
	return authNone
}

// browserCheck refuses what another web page could make a browser send:
// a request from another origin (an Origin header other than this
// server's own, or a Sec-Fetch-Site other than same-origin or none, but
// for a plain navigation to the page), and, on a loopback listener, a
// Host that is not a loopback name (a page whose DNS name was rebound to
// 127.0.0.1). Another port of the same host is another origin but the same
// "site", so the SameSite cookie alone would not stop it. It returns why,
// or "".
func (s *Server) browserCheck(r *http.Request) string {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local != nil && loopback.Addr(local) && !loopback.Host(r.Host) {
		return "host " + truncate(r.Host, 80) + " is not a loopback name on a loopback listener"
	}
	if o := r.Header.Get("Origin"); o != "" {
		scheme := "http://"
		if r.TLS != nil {
			scheme = "https://"
		}
		if !strings.EqualFold(o, scheme+r.Host) {
			return "cross-origin request from " + truncate(o, 80)
		}
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		if r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Method == http.MethodGet && r.URL.Path == "/" {
			break // a link to the dashboard: the page, not data
		}
		return "request from another site or origin (" + truncate(site, 20) + ")"
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
