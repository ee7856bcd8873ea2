// Package connlimit bounds the connections a TCP listener hands to a
// server: in all, and per remote IP. A connection beyond either bound is
// closed as soon as it is accepted, so a flood of idle or slow connections
// costs the node a bounded number of file descriptors and never queues
// honest clients behind it.
//
// It must not block Accept (a full listener would stall every client, the
// honest ones too), read from connections, or keep a record of an address
// after its last connection closed.
package connlimit

import (
	"net"
	"sync"
)

// Budget is a bound on connections shared by the listeners it wraps: at
// most max at once, at most perIP from one remote IP.
type Budget struct {
	max, perIP int
	// onRefuse, if set, is called with the remote address of each refused
	// connection.
	onRefuse func(net.Addr)

	mu    sync.Mutex
	total int
	byIP  map[string]int
}

// NewBudget returns a budget of max connections, perIP from one IP.
// onRefuse, if not nil, hears of each refused connection.
func NewBudget(max, perIP int, onRefuse func(net.Addr)) *Budget {
	return &Budget{max: max, perIP: perIP, onRefuse: onRefuse, byIP: make(map[string]int)}
}

// Listener wraps l so that its connections count against the budget.
func (b *Budget) Listener(l net.Listener) net.Listener { return &listener{Listener: l, b: b} }

// Open returns the number of connections open now.
func (b *Budget) Open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

func (b *Budget) take(ip string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.total >= b.max || b.byIP[ip] >= b.perIP {
		return false
	}
	b.total++
	b.byIP[ip]++
	return true
}

func (b *Budget) release(ip string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total--
	if b.byIP[ip]--; b.byIP[ip] <= 0 {
		delete(b.byIP, ip)
	}
}

type listener struct {
	net.Listener
	b *Budget
}

// Accept returns the next connection within the budget, closing those
// beyond it.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		if l.b.take(ip) {
			return &conn{Conn: c, release: func() { l.b.release(ip) }}, nil
		}
		c.Close()
		if l.b.onRefuse != nil {
			l.b.onRefuse(c.RemoteAddr())
		}
	}
}

// conn releases its slot once, on its first Close.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
