package ui

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dagnode/dagnode/internal/connlimit"
	"github.com/dagnode/dagnode/internal/loopback"
)

// Defaults of the Config limits.
const (
	// DefaultMaxClients bounds the event streams open at once: each holds a
	// queue and a goroutine, and a dashboard needs one per browser tab.
	DefaultMaxClients = 16
	// DefaultQueueLen is each stream's queue of events not yet written. A
	// browser that falls this far behind gets a resync instead.
	DefaultQueueLen = 256
	// DefaultMaxBlocks is how many recent blocks the DAG panel draws.
	DefaultMaxBlocks = 300
	// DefaultInterval is the period of the panels' snapshots.
	DefaultInterval = time.Second
)

// Fixed limits.
const (
	// inQueue bounds blocks published but not yet taken by the hub; a full
	// queue drops the block and every stream resyncs.
	inQueue = 4096
	// maxConns and maxConnsPerIP bound open connections (a browser opens
	// about six per host, and one of them stays open for the stream).
	maxConns      = 64
	maxConnsPerIP = 32
	// maxHeaderBytes bounds a request's header: requests are GETs without a
	// body, and the token travels in the URL.
	maxHeaderBytes = 8 << 10
	// Deadlines: reading a request, writing an answer (for the stream: each
	// event), idle keep-alive connections, and shutdown.
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 60 * time.Second
	shutdownTimeout   = 5 * time.Second
)

//go:embed assets
var assets embed.FS

// Config is the server's configuration.
type Config struct {
	// Listen is host:port; port 0 lets the OS choose (Addr and URL tell).
	Listen string
	// TLS gives the TLS configuration; Start calls it (with the listen
	// host) only when the bound address is not a loopback one. Nil refuses
	// a non-loopback address: plain HTTP is served on loopback only.
	TLS func(host string) (*tls.Config, error)
	// Credentials, if set, gives basic-auth credentials accepted besides
	// the token (the node's RPC user and password, or its cookie); Start
	// calls it once. ok false: none.
	Credentials func() (user, pass string, ok bool)
	// Source is what the panels show (required).
	Source Source
	// Network names the network in the page's title.
	Network string
	// MaxClients, QueueLen, MaxBlocks and Interval: zero means
	// DefaultMaxClients, DefaultQueueLen, DefaultMaxBlocks and
	// DefaultInterval.
	MaxClients int
	QueueLen   int
	MaxBlocks  int
	Interval   time.Duration
	// Logger receives the server's logs; slog.Default() if nil.
	Logger *slog.Logger
}

// Server serves the dashboard. New builds it, Start listens, Close stops
// it. Publish may be called from any goroutine at any time, also before
// Start and after Close, and on a nil *Server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	token   string
	session string // the cookie's value
	cookie  string // the cookie's name, set by Start
	auth    authenticator

	in     chan func() Block
	inLost atomic.Bool // a published block was dropped: every stream resyncs

	dropped atomic.Uint64 // events not queued for a slow stream, all streams
	lost    atomic.Uint64 // blocks dropped before the hub took them
	resyncs atomic.Uint64

	mu      sync.Mutex // guards the hub state below
	ring    ring
	clients map[*client]struct{}
	sources map[string]uint64 // blocks published, by source

	quit      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once

	lmu     sync.Mutex // guards the listener state below
	srv     *http.Server
	addr    net.Addr
	url     string
	started bool
	closed  bool
}

// New checks cfg and builds a server; it starts nothing.
func New(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("ui: Config.Source is required")
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("ui: listen address %q: %w", cfg.Listen, err)
	}
	if cfg.MaxClients < 0 || cfg.QueueLen < 0 || cfg.MaxBlocks < 0 || cfg.Interval < 0 {
		return nil, errors.New("ui: negative limit in Config")
	}
	cfg.MaxClients = orInt(cfg.MaxClients, DefaultMaxClients)
	cfg.QueueLen = orInt(cfg.QueueLen, DefaultQueueLen)
	cfg.MaxBlocks = orInt(cfg.MaxBlocks, DefaultMaxBlocks)
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		token:   randomHex(24),
		session: randomHex(32),
		in:      make(chan func() Block, inQueue),
		ring:    newRing(cfg.MaxBlocks),
		clients: make(map[*client]struct{}),
		sources: make(map[string]uint64),
		quit:    make(chan struct{}),
	}
	s.auth.init()
	return s, nil
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it panics instead)
	return hex.EncodeToString(b)
}

// Start seeds the DAG picture from the Source, listens and serves. It
// logs the address and the URL with the token ("ui server listening").
func (s *Server) Start() error {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	switch {
	case s.closed:
		return errors.New("ui: server closed")
	case s.started:
		return errors.New("ui: server already started")
	}
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("ui: listen on %s: %w", s.cfg.Listen, err)
	}
	loopback := loopback.Addr(l.Addr())
	var tlsConf *tls.Config
	if !loopback {
		if s.cfg.TLS == nil {
			l.Close()
			return fmt.Errorf("ui: %s is not a loopback address: the dashboard is served off loopback only with TLS", l.Addr())
		}
		host, _, _ := net.SplitHostPort(s.cfg.Listen)
		if tlsConf, err = s.cfg.TLS(host); err != nil {
			l.Close()
			return fmt.Errorf("ui: TLS: %w", err)
		}
	}
	if s.cfg.Credentials != nil {
		if user, pass, ok := s.cfg.Credentials(); ok {
			s.auth.setCredentials(user, pass)
		}
	}
	s.seed()

	s.addr = l.Addr()
	s.cookie = cookiePrefix + strconv.Itoa(s.addr.(*net.TCPAddr).Port)
	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
	}
	host := s.addr.(*net.TCPAddr)
	urlHost := host.String()
	if host.IP.IsUnspecified() {
		urlHost = net.JoinHostPort("127.0.0.1", strconv.Itoa(host.Port))
	}
	s.url = (&url.URL{Scheme: scheme, Host: urlHost, Path: "/", RawQuery: "token=" + s.token}).String()
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	budget := connlimit.NewBudget(maxConns, maxConnsPerIP, func(a net.Addr) {
		s.log.Debug("ui connection refused: too many connections", "remote", a.String())
	})
	l = budget.Listener(l)
	if tlsConf != nil {
		l = tls.NewListener(l, tlsConf)
	}
	s.wg.Go(func() {
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("ui server stopped", "addr", s.addr.String(), "err", err)
		}
	})
	s.wg.Go(s.hub)
	s.started = true
	if !loopback {
		s.log.Warn("ui server listens on a non-loopback address: anyone who can reach it can try the credentials", "addr", s.addr.String())
	}
	s.log.Info("ui server listening", "addr", s.addr.String(), "url", s.url, "tls", tlsConf != nil)
	return nil
}

// Addr is the bound address (with the port the OS chose), nil before
// Start.
func (s *Server) Addr() net.Addr {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return s.addr
}

// URL is the dashboard's address with the token, empty before Start.
func (s *Server) URL() string {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return s.url
}

// Close stops serving: the event streams end, the HTTP server shuts down
// (waiting up to shutdownTimeout) and the goroutines are waited for. It is
// idempotent and safe before Start.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.quit)
		s.lmu.Lock()
		s.closed = true
		srv := s.srv
		s.lmu.Unlock()
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			if serr := srv.Shutdown(ctx); serr != nil {
				err = srv.Close()
			}
			cancel()
		}
		s.wg.Wait()
	})
	return err
}

// Stats are the event stream's counters.
type Stats struct {
	// Clients is the number of streams open.
	Clients int `json:"clients"`
	// Dropped counts events not queued for a stream whose queue was full
	// or that was waiting for a resync; Resyncs the snapshots sent to
	// streams that had fallen behind.
	Dropped uint64 `json:"dropped"`
	Resyncs uint64 `json:"resyncs"`
	// Lost counts published blocks dropped before the hub took them (the
	// hub itself fell behind); every stream then resyncs.
	Lost uint64 `json:"lost"`
}

// Stats returns the event stream's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.clients)
	s.mu.Unlock()
	return Stats{Clients: n, Dropped: s.dropped.Load(), Resyncs: s.resyncs.Load(), Lost: s.lost.Load()}
}

// ServeHTTP checks where a request comes from and who sends it, then
// answers it. Every request needs authentication, even for the page's
// static files; only GET and HEAD are served.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	ip := remoteIP(r)
	if msg := s.browserCheck(r); msg != "" {
		s.log.Debug("ui request refused", "remote", ip, "reason", msg)
		http.Error(w, "403 forbidden: "+msg, http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch s.authenticate(w, r, ip) {
	case authThrottled:
		h.Set("Retry-After", "1")
		http.Error(w, "429 too many failed logins: retry later", http.StatusTooManyRequests)
		return
	case authNone:
		if r.URL.Path == "/" {
			h.Set("WWW-Authenticate", `Basic realm="dagnode dashboard", charset="UTF-8"`)
		}
		http.Error(w, "401 unauthorized: open the URL with ?token= that the node logged (\"ui server listening\"), "+
			"or log in with the node's RPC credentials", http.StatusUnauthorized)
		return
	}
	if r.URL.Path != "/events" {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
	}
	switch r.URL.Path {
	case "/", "/index.html":
		s.serveAsset(w, r, "assets/index.html", "text/html; charset=utf-8")
	case "/app.js":
		s.serveAsset(w, r, "assets/app.js", "text/javascript; charset=utf-8")
	case "/style.css":
		s.serveAsset(w, r, "assets/style.css", "text/css; charset=utf-8")
	case "/events":
		s.serveEvents(w, r, ip)
	case "/api/snapshot":
		s.serveSnapshot(w)
	case "/api/block":
		s.serveBlock(w, r)
	default:
		http.NotFound(w, r)
	}
}

// contentSecurityPolicy allows the page its own files and its own origin's
// event stream, nothing else: no inline script, no other site.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request, name, ctype string) {
	b, err := assets.ReadFile(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if strings.HasPrefix(ctype, "text/html") {
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// serveSnapshot answers what a stream starts with, as one JSON document.
func (s *Server) serveSnapshot(w http.ResponseWriter) {
	panels := s.panels()
	s.mu.Lock()
	snap := s.snapshotLocked(panels)
	s.mu.Unlock()
	writeJSON(w, snap)
}

// serveBlock answers /api/block?hash=H: the block's details.
func (s *Server) serveBlock(w http.ResponseWriter, r *http.Request) {
	hash := r.URL.Query().Get("hash")
	if len(hash) != 64 {
		http.Error(w, "400 bad request: want ?hash= and 64 hex digits", http.StatusBadRequest)
		return
	}
	if _, err := hex.DecodeString(hash); err != nil {
		http.Error(w, "400 bad request: want ?hash= and 64 hex digits", http.StatusBadRequest)
		return
	}
	d, ok := s.cfg.Source.BlockDetails(hash)
	if !ok {
		http.Error(w, "404 unknown block", http.StatusNotFound)
		return
	}
	s.mu.Lock()
	if b, ok := s.ring.get(hash); ok {
		d.Source, d.Peer, d.Arrived = b.Source, b.Peer, b.Arrived
	}
	s.mu.Unlock()
	writeJSON(w, d)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "500 internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// remoteIP is the client's IP (the connection's, never a forwarded header).
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
