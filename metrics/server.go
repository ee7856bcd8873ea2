package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/dagnode/dagnode/internal/connlimit"
)

// Path is the one path the Server answers: GET (and HEAD) /metrics.
const Path = "/metrics"

// Server limits. A scrape is one small GET answered within scrapeTimeout.
const (
	// readTimeout bounds reading a request, headers included, so a client
	// that sends slowly cannot hold a connection.
	readTimeout = 5 * time.Second
	// writeTimeout bounds a whole exchange: the read, a gathering cut at
	// scrapeTimeout, and writing the answer.
	writeTimeout = readTimeout + scrapeTimeout + 5*time.Second
	// idleTimeout closes kept-alive connections between scrapes (Prometheus
	// scrapes every 15 s to 1 min by default).
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes: a scraper sends a few short headers.
	maxHeaderBytes = 8 << 10
	// shutdownTimeout is how long Close lets running scrapes finish before it
	// closes their connections.
	shutdownTimeout = 5 * time.Second
	// maxConns and maxConnsPerIP bound the open connections: a scraper
	// needs one; a flood of idle ones is closed at once.
	maxConns      = 64
	maxConnsPerIP = 16
)

// ErrServerClosed is returned by Start after Close.
var ErrServerClosed = errors.New("metrics: server closed")

// Server serves a Manager's registry over HTTP at Path; every other path is
// 404. Create one with NewServer, then Start it; Close stops it.
type Server struct {
	addr string
	log  *slog.Logger
	srv  *http.Server
	wg   sync.WaitGroup

	mu      sync.Mutex
	ln      net.Listener
	started bool
	closed  bool
}

// NewServer returns a Server that will listen on addr ("host:port"; port 0
// lets the OS choose, see Addr) and serve m. The endpoint has no
// authentication: bind it to a loopback or private address. log nil means
// slog.Default(). It starts nothing.
func NewServer(addr string, m *Manager, log *slog.Logger) (*Server, error) {
	if m == nil {
		return nil, errors.New("metrics: server without a manager")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("metrics: listen address %q: %w", addr, err)
	}
	if log == nil {
		log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, m.handler(log)) // GET also matches HEAD
	return &Server{
		addr: addr,
		log:  log,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: readTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}, nil
}

// Start listens on the address and serves on a goroutine of its own. It
// returns the listen error, if any, and fails when called twice or after
// Close.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrServerClosed
	case s.started:
		return errors.New("metrics: server already started")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	s.ln, s.started = ln, true
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		s.log.Warn("metrics served on a non-loopback address without authentication: anyone who can reach it reads the node's state", "addr", ln.Addr().String())
	}
	limited := connlimit.NewBudget(maxConns, maxConnsPerIP, func(a net.Addr) {
		s.log.Debug("metrics connection refused: too many connections", "remote", a.String())
	}).Listener(ln)
	s.wg.Go(func() {
		if err := s.srv.Serve(limited); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics server stopped", "err", err)
		}
	})
	s.log.Info("serving metrics", "addr", "http://"+ln.Addr().String()+Path)
	return nil
}

// Addr returns the address the server listens on, or nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops the server: it stops listening, lets running scrapes finish
// for up to shutdownTimeout, closes every connection and waits for the serving
// goroutine. It is idempotent; only the first call can return an error.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("metrics: close: %w", err)
	}
	return nil
}
