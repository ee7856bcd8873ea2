package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/dagnode/dagnode/internal/netbed"
	"github.com/dagnode/dagnode/internal/netbed/wire"
)

// `dagnode devnet --latency`: the nodes run in network namespaces of a
// netbed bed, one each, whose eth0 is a TUN device (public addresses
// 11.0.0.10, .11, ...); a wire in the devnet process forwards their packets
// with the delay. Each node's RPC server and dashboard listen on the
// loopback of its namespace and are forwarded to the host's loopback.

const (
	// devnetMaxJitter caps the jitter of an access link; below it, the
	// jitter is devnetJitterShare of the link's delay.
	devnetMaxJitter   = 2 * time.Millisecond
	devnetJitterShare = 10
	// devnetProxyDialTimeout bounds a forwarded connection's dial into a
	// namespace (its own loopback: only a stuck node makes it slow).
	devnetProxyDialTimeout = 10 * time.Second
)

// latencyNet is the network of a devnet run with --latency.
type latencyNet struct {
	bed     *netbed.Bed
	hosts   []*netbed.Host // node i's namespace
	wire    *wire.Wire
	link    time.Duration // one-way delay of each access link
	jitter  time.Duration // plus or minus, per packet and access link
	proxies []*nsProxy
}

// newLatencyNet builds n namespaces and starts a wire between them with
// latency one way between any two of them: half on each access link, plus or
// minus a little jitter, no rate cap. On an error it tears down what it
// built.
func newLatencyNet(n int, latency time.Duration) (ln *latencyNet, err error) {
	bed, err := netbed.Open("devnet")
	if err != nil {
		return nil, err
	}
	ln = &latencyNet{bed: bed, link: latency / 2}
	ln.jitter = min(ln.link/devnetJitterShare, devnetMaxJitter)
	defer func() {
		if err != nil {
			err = errors.Join(err, bed.Close())
		}
	}()
	cfg := wire.Config{Jitter: ln.jitter, Seed: uint64(time.Now().UnixNano())}
	for i := range n {
		h, f, err := bed.OpenTUN(fmt.Sprintf("node%d", i))
		if err != nil {
			return nil, err
		}
		ip, ok := netip.AddrFromSlice(h.IP().To4())
		if !ok {
			return nil, fmt.Errorf("namespace %s: address %v", h.Name(), h.IP())
		}
		ln.hosts = append(ln.hosts, h)
		cfg.Links = append(cfg.Links, wire.Link{IP: ip, Delay: ln.link, Dev: f})
	}
	if ln.wire, err = wire.New(cfg); err != nil {
		return nil, err
	}
	ln.wire.Start()
	return ln, nil
}

// expose forwards node i's RPC server and dashboard, which listen on its
// namespace's loopback (rpcAddr, and uiURL with its token), to the host's
// loopback and returns the forwarded address and URL. The dashboard accepts
// them: the browser's Host is a loopback name, and the node sees a loopback
// listener.
func (ln *latencyNet) expose(i int, rpcAddr, uiURL string) (string, string, error) {
	rpcProxy, err := startNSProxy(ln.hosts[i], rpcAddr)
	if err != nil {
		return "", "", fmt.Errorf("forwarding its RPC server: %w", err)
	}
	ln.proxies = append(ln.proxies, rpcProxy)
	u, err := url.Parse(uiURL)
	if err != nil {
		return "", "", fmt.Errorf("its dashboard URL %q: %w", uiURL, err)
	}
	uiProxy, err := startNSProxy(ln.hosts[i], u.Host)
	if err != nil {
		return "", "", fmt.Errorf("forwarding its dashboard: %w", err)
	}
	ln.proxies = append(ln.proxies, uiProxy)
	u.Host = uiProxy.addr()
	return rpcProxy.addr(), u.String(), nil
}

// describe prints the network under the devnet's table.
func (ln *latencyNet) describe(w io.Writer) {
	fmt.Fprintf(w, "\nNetwork: %v one way between any two nodes (%v ±%v on each node's link, no rate cap), each node\n"+
		"in a network namespace of its own (%s ... %s, P2P on 11.0.0.x);\n"+
		"RPC and dashboards are forwarded to 127.0.0.1. A shell beside node0: ip netns exec %s bash\n",
		2*ln.link, ln.link, ln.jitter, ln.hosts[0].Name(), ln.hosts[len(ln.hosts)-1].Name(), ln.hosts[0].Name())
}

// close stops the forwarding and the wire and deletes the namespaces; the
// nodes must have exited. It reports the wire's totals and any namespace left
// behind on stderr. A nil ln is a devnet without --latency: nothing to do.
func (ln *latencyNet) close(stderr io.Writer) {
	if ln == nil {
		return
	}
	for _, p := range ln.proxies {
		p.close()
	}
	ln.wire.Close()
	fmt.Fprintf(stderr, "dagnode devnet: wire: %s\n", ln.wire.Stats())
	if err := ln.bed.Close(); err != nil {
		fmt.Fprintf(stderr, "dagnode devnet: removing the network namespaces: %v\n", err)
	}
}

// nsProxy forwards TCP connections from a listener on the host's loopback to
// an address inside a namespace, each connection dialled from inside it.
type nsProxy struct {
	l      net.Listener
	host   *netbed.Host
	target string
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{} // both ends of every relayed connection
}

// startNSProxy listens on 127.0.0.1 (a port the OS chooses) and relays every
// connection to target (a literal IP and port) inside h's namespace.
func startNSProxy(h *netbed.Host, target string) (*nsProxy, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &nsProxy{l: l, host: h, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	return p, nil
}

func (p *nsProxy) addr() string { return p.l.Addr().String() }

func (p *nsProxy) serve() {
	for {
		c, err := p.l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // out of descriptors, say: try again shortly
			time.Sleep(50 * time.Millisecond)
			continue
		}
		p.wg.Go(func() { p.relay(c) })
	}
}

// relay copies both ways between c and a new connection to the target, each
// direction's end passed on as a half close, until both have ended or the
// proxy closes.
func (p *nsProxy) relay(c net.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), devnetProxyDialTimeout)
	up, err := p.host.DialContext(ctx, "tcp4", p.target)
	cancel()
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, up) {
		c.Close()
		up.Close()
		return
	}
	defer p.untrack(c, up)
	var wg sync.WaitGroup
	wg.Go(func() { copyHalf(up, c) })
	copyHalf(c, up)
	wg.Wait()
}

// copyHalf copies src to dst, then closes dst for writing (or entirely, if
// it cannot half close, or after an error).
func copyHalf(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
		_ = cw.CloseWrite()
		return
	}
	_ = dst.Close()
	_ = src.Close()
}

// track records a relayed pair, unless the proxy has closed.
func (p *nsProxy) track(a, b net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[a], p.conns[b] = struct{}{}, struct{}{}
	return true
}

func (p *nsProxy) untrack(a, b net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, a)
	delete(p.conns, b)
	a.Close()
	b.Close()
}

// close stops accepting, closes every relayed connection and waits for the
// relays. Idempotent.
func (p *nsProxy) close() {
	p.mu.Lock()
	p.closed = true
	_ = p.l.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
