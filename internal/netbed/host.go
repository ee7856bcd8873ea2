package netbed

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"sync"
	"time"
)

// Host is one network namespace of a bed: a public host, a home host or a home router.
type Host struct {
	bed *Bed
	ns  string

	mu sync.Mutex
	ip net.IP // changes for a router on ChangePublicIP
}

func newHost(b *Bed, ns string, ip net.IP) *Host {
	return &Host{bed: b, ns: ns, ip: ip}
}

// Name returns the host's namespace name, as used by `ip netns exec NAME` and `ip -n NAME`.
func (h *Host) Name() string { return h.ns }

// IP returns the host's own address: public for AddPublic hosts, 192.168.N.2 for a home host, the WAN
// (public) address for a home router.
func (h *Host) IP() net.IP {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append(net.IP(nil), h.ip...)
}

func (h *Host) setIP(ip net.IP) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ip = ip
}

// Command returns an exec.Cmd that runs prog inside the namespace (ip netns exec NAME prog args...; ip
// execs prog, so the process id is prog's). The caller starts it and should pass it to Bed.Track so
// that cleanup stops it if it is still running.
func (h *Host) Command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, h.bed.tools.ip, append([]string{"netns", "exec", h.ns, prog}, args...)...)
}

// do runs fn with the calling goroutine's thread inside the host's namespace; see inNetns.
func (h *Host) do(fn func() error) error { return inNetns(nsPath(h.ns), fn) }

// literalAddr rejects host names: resolving one would run on other threads, outside the namespace,
// and could send DNS queries out of the bed.
func literalAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("netbed: address %q: host must be a literal IP", addr)
	}
	return nil
}

// DialContext opens a connection from inside the namespace: it locks the OS thread, enters the
// namespace, dials, and returns to the original namespace (if that fails the thread stays locked and
// dies with the goroutine). addr's host must be a literal IP. Usable as http.Transport.DialContext.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return h.Dialer(net.Dialer{}).DialContext(ctx, network, addr)
}

// Dialer returns a dialer that dials from inside the namespace with the given settings (LocalAddr,
// Control for SO_REUSEPORT, Timeout, ...).
func (h *Host) Dialer(d net.Dialer) *Dialer { return &Dialer{host: h, d: d} }

// Dialer dials from inside a host's namespace. Make one with Host.Dialer.
type Dialer struct {
	host *Host
	d    net.Dialer
}

// DialContext is like net.Dialer.DialContext, from inside the namespace; addr's host must be a literal
// IP.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := literalAddr(addr); err != nil {
		return nil, err
	}
	var c net.Conn
	err := d.host.do(func() error {
		var err error
		c, err = d.d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen opens a stream listener inside the namespace (like net.ListenConfig.Listen); its sockets
// stay in the namespace, so Accept works from any goroutine.
func (h *Host) Listen(ctx context.Context, lc net.ListenConfig, network, addr string) (net.Listener, error) {
	if err := literalAddr(addr); err != nil {
		return nil, err
	}
	var l net.Listener
	err := h.do(func() error {
		var err error
		l, err = lc.Listen(ctx, network, addr)
		return err
	})
	return l, err
}

// ListenPacket opens a packet socket inside the namespace (like net.ListenConfig.ListenPacket); it
// stays in the namespace, so reads and writes work from any goroutine.
func (h *Host) ListenPacket(ctx context.Context, lc net.ListenConfig, network, addr string) (net.PacketConn, error) {
	if err := literalAddr(addr); err != nil {
		return nil, err
	}
	var c net.PacketConn
	err := h.do(func() error {
		var err error
		c, err = lc.ListenPacket(ctx, network, addr)
		return err
	})
	return c, err
}

// HTTPClient returns an HTTP client whose connections are dialed from inside the namespace. It never
// uses a proxy (environment settings are ignored); URLs must name literal IPs. The bed closes its idle
// connections at cleanup.
func (h *Host) HTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         h.DialContext,
		ForceAttemptHTTP2:   false,
		MaxIdleConns:        10,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	h.bed.mu.Lock()
	h.bed.transports = append(h.bed.transports, tr)
	h.bed.mu.Unlock()
	return &http.Client{Transport: tr}
}
