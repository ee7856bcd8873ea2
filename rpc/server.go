package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/internal/connlimit"
	"github.com/dagnode/dagnode/internal/loopback"
)

// Default RPC ports, one per network (the P2P ports are 9700-9703).
const (
	MainnetPort = 9710
	TestnetPort = 9711
	SimnetPort  = 9712
	RegtestPort = 9713
)

// DefaultPort returns the RPC port of a network ("mainnet", "testnet",
// "simnet", "regtest"), or 0 for an unknown name.
func DefaultPort(network string) int {
	switch network {
	case "mainnet":
		return MainnetPort
	case "testnet":
		return TestnetPort
	case "simnet":
		return SimnetPort
	case "regtest":
		return RegtestPort
	}
	return 0
}

// Defaults of the Config limits.
const (
	// DefaultMaxBodyBytes bounds a request body: a submitblock is under
	// 3 KB of hex, so 1 MiB leaves room for batches of thousands of calls.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultRequestTimeout bounds the calls of one HTTP request.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultGenerateTimeout bounds a request that calls generate, which
	// mines and may take minutes on simnet.
	DefaultGenerateTimeout = 10 * time.Minute
	// DefaultMaxConcurrent is how many HTTP requests run at once.
	DefaultMaxConcurrent = 16
	// DefaultMaxQueued is how many more may wait for a slot (until their
	// deadline); beyond that the server answers 503.
	DefaultMaxQueued = 64
	// DefaultAuthFailDelay is the delay after a first failed login from an
	// address; it doubles with each further failure up to
	// DefaultAuthFailMaxDelay.
	DefaultAuthFailDelay    = 250 * time.Millisecond
	DefaultAuthFailMaxDelay = 2 * time.Second
	// DefaultMaxClients bounds the open connections (soterd's
	// rpcmaxclients), DefaultMaxClientsPerIP those from one IP; a
	// connection beyond either is closed at once.
	DefaultMaxClients      = 128
	DefaultMaxClientsPerIP = 32
	// DefaultMaxReplyBytes bounds the reply to one HTTP request: the calls
	// of a batch that would take it past the bound are not run and get a
	// CodeMisc error saying so instead.
	DefaultMaxReplyBytes = 32 << 20
)

// Fixed limits of the HTTP server.
const (
	// MaxBatchLength bounds the calls in one batch, so one request cannot
	// hold a slot (or build a response) without bound.
	MaxBatchLength = 1000
	// readHeaderTimeout and readTimeout drop clients that send slowly.
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	// idleTimeout closes idle keep-alive connections.
	idleTimeout = 2 * time.Minute
	// writeTimeout bounds writing a reply, after the request's own
	// timeout: a client that does not read its reply is dropped.
	writeTimeout = 30 * time.Second
	// maxHeaderBytes is plenty for a basic-auth header.
	maxHeaderBytes = 16 << 10
	// shutdownTimeout bounds how long Close waits for requests in flight
	// (their contexts are already cancelled) before closing connections.
	shutdownTimeout = 5 * time.Second
	// defaultVersion is reported when Config.Version is empty.
	defaultVersion = "dev"
)

// Config is the server's configuration. Chain is required; every other part
// may be nil, and the methods that need it then answer "not available". The
// zero value of every limit is its default.
type Config struct {
	// Listen are host:port addresses. Empty means 127.0.0.1 on
	// DefaultPort(network). A host that is not loopback is logged at Warn.
	Listen []string
	// TLS says when to serve TLS (TLSAuto: whenever a listen address is not
	// loopback). CertPath and KeyPath hold the key pair, created
	// self-signed on first use (LoadOrCreateCert); required when TLS is
	// served.
	TLS               TLSMode
	CertPath, KeyPath string
	// AllowedOrigins are the browser origins ("https://host:port") whose
	// requests are served; a request with any other Origin header gets 403.
	AllowedOrigins []string
	// User and Pass are the basic-auth credentials. If both are empty, a
	// random cookie "__cookie__:<hex>" is written to CookiePath (mode 0600)
	// at Start and removed at Close; the local client reads it (ReadCookie).
	User, Pass string
	CookiePath string
	// MaxBodyBytes bounds a request body (DefaultMaxBodyBytes); a bigger one
	// gets HTTP 413 with a -32600 error.
	MaxBodyBytes int64
	// RequestTimeout bounds the calls of one HTTP request
	// (DefaultRequestTimeout); GenerateTimeout replaces it for a request
	// that calls generate (DefaultGenerateTimeout).
	RequestTimeout  time.Duration
	GenerateTimeout time.Duration
	// MaxConcurrent requests run at once (DefaultMaxConcurrent), up to
	// MaxQueued more wait (DefaultMaxQueued), beyond that: HTTP 503.
	MaxConcurrent int
	MaxQueued     int
	// MaxClients and MaxClientsPerIP bound the open connections
	// (DefaultMaxClients, DefaultMaxClientsPerIP).
	MaxClients      int
	MaxClientsPerIP int
	// MaxReplyBytes bounds one HTTP reply (DefaultMaxReplyBytes).
	MaxReplyBytes int
	// AuthFailDelay and AuthFailMaxDelay tune the delay after failed logins
	// (DefaultAuthFailDelay, DefaultAuthFailMaxDelay).
	AuthFailDelay    time.Duration
	AuthFailMaxDelay time.Duration
	// Version is the node's version ("dev" if empty).
	Version string
	// StartTime is when the node started, for uptime (New's time if zero).
	StartTime time.Time

	// Chain reads the DAG (required; *dag.DAG implements it).
	Chain Chain
	// Submitter takes submitted blocks (submitblock).
	Submitter Submitter
	// Miner mines (generate, setgenerate, getgenerate, gethashespersec).
	Miner Miner
	// Metrics gives getblockmetrics (*metrics.Manager implements it).
	Metrics BlockMetrics
	// Peers is the peer tracker and connector (getpeerinfo, addnode, ban...).
	Peers PeerSource
	// Net describes this node on the network (getnetworkinfo, getnettotals).
	Net NetInfo
	// Sync reports the sync manager's state (getsyncinfo).
	Sync SyncStatus
	// Stop asks the node to shut down (the stop method). It must return
	// promptly and must not wait for Close: the stop call is still in flight.
	Stop func()
	// AddrString prints a miner address (getblock's mineraddr); hex if nil.
	AddrString func([dag.AddrLen]byte) string

	// Logger receives the server's logs; slog.Default() if nil.
	Logger *slog.Logger
}

// Server is the JSON-RPC server. New builds it, Start listens, Close stops it.
type Server struct {
	cfg     Config
	log     *slog.Logger
	auth    *authenticator
	started time.Time

	sem    chan struct{}
	queued atomic.Int64

	// baseCtx is the parent of every request context; Close cancels it.
	baseCtx context.Context
	cancel  context.CancelFunc

	// fresh holds connections that have not sent a request yet (guarded by
	// freshMu): Close drops them, since http.Server.Shutdown would wait up
	// to 5 s for each.
	freshMu sync.Mutex
	fresh   map[net.Conn]struct{}

	wg         sync.WaitGroup // the Serve goroutines
	closeOnce  sync.Once
	closeErr   error
	stopCalled atomic.Bool

	mu      sync.Mutex // guards the fields below
	srv     *http.Server
	addrs   []net.Addr
	cookie  string // path of the cookie file we wrote, if any
	running bool
	closed  bool
}

// New checks cfg and builds a server; it starts nothing.
func New(cfg Config) (*Server, error) {
	if cfg.Chain == nil {
		return nil, errors.New("rpc: Config.Chain is required")
	}
	if (cfg.User == "") != (cfg.Pass == "") {
		return nil, errors.New("rpc: set both User and Pass, or neither (cookie auth)")
	}
	if cfg.User == "" && cfg.CookiePath == "" {
		return nil, errors.New("rpc: no credentials: set User and Pass, or CookiePath for cookie auth")
	}
	if cfg.User == CookieUser {
		return nil, fmt.Errorf("rpc: user name %q is reserved for cookie auth", CookieUser)
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(DefaultPort(cfg.Chain.Params().Name)))}
	}
	for _, l := range cfg.Listen {
		if _, _, err := net.SplitHostPort(l); err != nil {
			return nil, fmt.Errorf("rpc: listen address %q: %w", l, err)
		}
	}
	switch {
	case cfg.MaxBodyBytes < 0:
		return nil, errors.New("rpc: negative MaxBodyBytes")
	case cfg.MaxBodyBytes == 0:
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&cfg.RequestTimeout, DefaultRequestTimeout},
		{&cfg.GenerateTimeout, DefaultGenerateTimeout},
		{&cfg.AuthFailDelay, DefaultAuthFailDelay},
		{&cfg.AuthFailMaxDelay, DefaultAuthFailMaxDelay},
	} {
		if *d.v < 0 {
			return nil, errors.New("rpc: negative duration in Config")
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	for _, d := range []struct {
		v   *int
		def int
	}{
		{&cfg.MaxConcurrent, DefaultMaxConcurrent}, {&cfg.MaxQueued, DefaultMaxQueued},
		{&cfg.MaxClients, DefaultMaxClients}, {&cfg.MaxClientsPerIP, DefaultMaxClientsPerIP},
		{&cfg.MaxReplyBytes, DefaultMaxReplyBytes},
	} {
		if *d.v < 0 {
			return nil, errors.New("rpc: negative limit in Config")
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.TLS == TLSOn && (cfg.CertPath == "" || cfg.KeyPath == "") {
		return nil, errors.New("rpc: TLS needs CertPath and KeyPath")
	}
	if cfg.Version == "" {
		cfg.Version = defaultVersion
	}
	if cfg.StartTime.IsZero() {
		cfg.StartTime = time.Now()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		auth:    newAuthenticator(cfg.AuthFailDelay, cfg.AuthFailMaxDelay),
		started: cfg.StartTime,
		sem:     make(chan struct{}, cfg.MaxConcurrent),
		fresh:   make(map[net.Conn]struct{}),
	}
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	if cfg.User != "" {
		s.auth.setCredentials(cfg.User, cfg.Pass)
	}
	return s, nil
}

// Start listens on every Config.Listen address, writes the cookie file when
// cookie auth is used, and serves. It fails if any address cannot be bound.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("rpc: server closed")
	}
	if s.running {
		return errors.New("rpc: server already started")
	}
	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	useTLS := s.cfg.TLS == TLSOn
	var hosts []string
	for _, addr := range s.cfg.Listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("rpc: listen on %s: %w", addr, err)
		}
		lns = append(lns, l)
		if !loopback.Addr(l.Addr()) {
			useTLS = useTLS || s.cfg.TLS == TLSAuto
			if s.cfg.TLS == TLSOff {
				s.log.Warn("rpc server serves plain HTTP on a non-loopback address: the password crosses the network in clear", "addr", l.Addr().String())
			}
		}
		host, _, _ := net.SplitHostPort(addr)
		hosts = append(hosts, host)
	}
	var tlsConf *tls.Config
	if useTLS && (s.cfg.CertPath == "" || s.cfg.KeyPath == "") {
		closeAll()
		return errors.New("rpc: a non-loopback listen address needs TLS, and TLS needs CertPath and KeyPath (or TLSOff)")
	}
	if useTLS {
		cert, created, err := LoadOrCreateCert(s.cfg.CertPath, s.cfg.KeyPath, hosts)
		if err != nil {
			closeAll()
			return err
		}
		if created {
			s.log.Info("rpc TLS certificate created", "cert", s.cfg.CertPath, "key", s.cfg.KeyPath)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if s.cfg.User == "" {
		pass, err := writeCookie(s.cfg.CookiePath)
		if err != nil {
			closeAll()
			return fmt.Errorf("rpc: %w", err)
		}
		s.cookie = s.cfg.CookiePath
		s.auth.setCredentials(CookieUser, pass)
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		ConnState:         s.connState,
	}
	// One connection budget for every listener.
	budget := connlimit.NewBudget(s.cfg.MaxClients, s.cfg.MaxClientsPerIP, func(a net.Addr) {
		s.log.Debug("rpc connection refused: too many connections", "remote", a.String())
	})
	for _, l := range lns {
		s.addrs = append(s.addrs, l.Addr())
		if !loopback.Addr(l.Addr()) {
			s.log.Warn("rpc server listens on a non-loopback address: anyone who can reach it can try the credentials", "addr", l.Addr().String())
		}
		l = budget.Listener(l)
		if tlsConf != nil {
			l = tls.NewListener(l, tlsConf)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("rpc server stopped", "addr", l.Addr().String(), "err", err)
			}
		}()
	}
	s.running = true
	s.log.Info("rpc server listening", "addrs", fmt.Sprint(s.addrs), "tls", useTLS, "cookie", s.cookie != "")
	return nil
}

// Addrs returns the bound addresses (with the ports the OS chose for port
// 0), empty before Start.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.addrs...)
}

// Close cancels the requests in flight (a running generate stops), shuts the
// HTTP server down (waiting up to shutdownTimeout), waits for its goroutines
// and removes the cookie file. It is idempotent and safe before Start.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.mu.Lock()
		s.closed = true
		srv, cookie := s.srv, s.cookie
		s.mu.Unlock()
		if srv != nil {
			s.dropFreshConns()
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			if err := srv.Shutdown(ctx); err != nil {
				s.log.Warn("rpc server shutdown timed out; closing connections", "err", err)
				s.closeErr = srv.Close()
			}
			cancel()
		}
		s.wg.Wait()
		if cookie != "" {
			if err := os.Remove(cookie); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.closeErr = errors.Join(s.closeErr, fmt.Errorf("rpc: removing cookie: %w", err))
			}
		}
	})
	return s.closeErr
}

// connState tracks the connections that have not sent a request yet.
func (s *Server) connState(c net.Conn, st http.ConnState) {
	s.freshMu.Lock()
	defer s.freshMu.Unlock()
	if st == http.StateNew {
		s.fresh[c] = struct{}{}
	} else {
		delete(s.fresh, c)
	}
}

// dropFreshConns closes the connections that have not sent a request yet.
func (s *Server) dropFreshConns() {
	s.freshMu.Lock()
	defer s.freshMu.Unlock()
	for c := range s.fresh {
		c.Close()
		delete(s.fresh, c)
	}
}

// ServeHTTP authenticates, reads and answers one HTTP request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip := remoteIP(r)
	defer func() {
		// Handlers recover in invoke; this catches a bug in the envelope
		// layer itself, so the client still gets a JSON-RPC error, never a
		// stack trace.
		if p := recover(); p != nil {
			s.log.Error("rpc request panicked", "remote", ip, "panic", p, "stack", string(debug.Stack()))
			writeJSON(w, http.StatusOK, marshalResponse(v2, nullID, nil, errorf(CodeInternal, "internal error")))
		}
	}()
	// Bound the writing of any answer; raised below for long calls.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.RequestTimeout + writeTimeout))
	if msg := s.browserCheck(r); msg != "" {
		s.log.Debug("rpc request refused", "remote", ip, "reason", msg)
		http.Error(w, "403 forbidden: "+msg, http.StatusForbidden)
		return
	}
	if wait := s.auth.admit(ip); wait > 0 {
		s.authThrottled(w, ip, wait)
		return
	}
	if !s.auth.check(r) {
		s.authFailed(w, r, ip)
		return
	}
	s.auth.succeeded(ip)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "405 method not allowed: JSON-RPC requests are POSTed", http.StatusMethodNotAllowed)
		return
	}
	body, status, rerr := s.readBody(w, r)
	if rerr != nil {
		writeJSON(w, status, marshalResponse(v2, nullID, nil, rerr))
		return
	}
	calls, single, perr := parseBody(body)
	if perr != nil {
		writeJSON(w, http.StatusOK, marshalResponse(v2, nullID, nil, perr))
		return
	}
	timeout := s.cfg.RequestTimeout
	for _, c := range calls {
		if m := methods[c.method]; m != nil && m.long && c.err == nil {
			timeout = s.cfg.GenerateTimeout
		}
	}
	if timeout != s.cfg.RequestTimeout {
		_ = rc.SetWriteDeadline(time.Now().Add(timeout + writeTimeout))
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if err := s.acquire(ctx); err != nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "503 service unavailable: too many RPC requests in flight", http.StatusServiceUnavailable)
		return
	}
	out := s.run(ctx, calls, ip)
	<-s.sem
	if r.Context().Err() != nil && s.baseCtx.Err() == nil {
		return // the client left: nobody to answer
	}
	switch {
	case len(out) == 0:
		// Only notifications: nothing to answer.
		w.WriteHeader(http.StatusNoContent)
	case single:
		writeJSON(w, http.StatusOK, out[0])
	default:
		writeJSON(w, http.StatusOK, joinBatch(out))
	}
}

// acquire takes a slot for a request, waiting in the queue if there is room
// in it; errBusy when the queue is full.
func (s *Server) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	default:
	}
	if s.queued.Add(1) > int64(s.cfg.MaxQueued) {
		s.queued.Add(-1)
		return errBusy
	}
	defer s.queued.Add(-1)
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errBusy = errors.New("rpc: too many requests")

// run executes the calls of one request in order and returns the encoded
// responses of those that are not notifications.
func (s *Server) run(ctx context.Context, calls []*call, ip string) [][]byte {
	out := make([][]byte, 0, len(calls))
	size := 0
	for i, c := range calls {
		var res []byte
		var rerr *Error
		switch {
		case i > 0 && errors.Is(ctx.Err(), context.Canceled):
			// The client left (or the server is closing): the rest of a
			// batch is not run.
			s.log.Debug("rpc batch abandoned", "remote", ip, "calls", len(calls), "run", i)
			return out
		case size > s.cfg.MaxReplyBytes:
			rerr = errorf(CodeMisc, "reply too large: the calls before this one already exceed %d bytes; send smaller batches", s.cfg.MaxReplyBytes)
		case c.err != nil:
			rerr = c.err
		default:
			t0 := time.Now()
			res, rerr = s.invoke(ctx, c.method, c.params)
			if s.log.Enabled(ctx, slog.LevelDebug) {
				s.log.Debug("rpc call", "method", truncate(c.method, 40), "remote", ip, "dur", time.Since(t0), "ok", rerr == nil)
			}
		}
		if c.notification && c.err == nil {
			continue
		}
		resp := marshalResponse(c.version, c.id, res, rerr)
		if size+len(resp) > s.cfg.MaxReplyBytes && rerr == nil {
			resp = marshalResponse(c.version, c.id, nil, errorf(CodeMisc,
				"reply too large: %d bytes with the calls before it, over the limit of %d; ask for less", size+len(resp), s.cfg.MaxReplyBytes))
			size = s.cfg.MaxReplyBytes + 1 // the calls after it are not run
		}
		size += len(resp)
		out = append(out, resp)
	}
	return out
}

// browserCheck refuses what a web page could send: a request with an
// Origin header not in AllowedOrigins (a page posting to the port), and,
// on a loopback listener, a Host that is not a loopback name or address (a
// page whose DNS name was rebound to 127.0.0.1). It returns why, or "".
func (s *Server) browserCheck(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" && !slices.Contains(s.cfg.AllowedOrigins, o) {
		return "cross-origin request (origin " + truncate(o, 80) + " is not allowed; see --rpcallowedorigin)"
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local != nil && loopback.Addr(local) && !loopback.Host(r.Host) {
		return "host " + truncate(r.Host, 80) + " is not a loopback name on a loopback listener"
	}
	return ""
}

// readBody reads the body under MaxBodyBytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, *Error) {
	limit := s.cfg.MaxBodyBytes
	tooBig := func() ([]byte, int, *Error) {
		return nil, http.StatusRequestEntityTooLarge, errorf(CodeInvalidRequest, "request body too large: the limit is %d bytes", limit)
	}
	if r.ContentLength > limit {
		return tooBig()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooBig()
		}
		return nil, http.StatusBadRequest, errorf(CodeInvalidRequest, "reading the request body: %v", err)
	}
	return body, http.StatusOK, nil
}

var newline = []byte{'\n'}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
	// A trailing newline, as btcd and Bitcoin Core write.
	w.Write(newline)
}

// remoteIP is the client's IP (the connection's, never a forwarded header).
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
