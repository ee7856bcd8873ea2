package connlimit

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestBounds: over real loopback TCP, connections beyond the total or the
// per-IP bound are closed at once, and a closed connection frees its slot.
func TestBounds(t *testing.T) {
	inner, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int64
	l := NewBudget(3, 2, func(net.Addr) { refused.Add(1) })
	ln := l.Listener(inner)
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp4", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// closedByServer reports whether the server closed c (a read sees EOF).
	closedByServer := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err != nil && !isTimeout(err)
	}
	a1, a2 := dial("127.0.0.1"), dial("127.0.0.1")
	<-accepted
	<-accepted
	a3 := dial("127.0.0.1") // third from one IP: refused
	if !closedByServer(a3) {
		t.Fatal("a third connection from one IP was kept")
	}
	b1 := dial("127.0.0.2") // another IP: fits the total of 3
	srvB1 := <-accepted
	b2 := dial("127.0.0.2") // fourth in all: refused
	if !closedByServer(b2) {
		t.Fatal("a fourth connection in all was kept")
	}
	if got := refused.Load(); got != 2 {
		t.Fatalf("%d refusals reported, want 2", got)
	}
	if l.Open() != 3 {
		t.Fatalf("%d open, want 3", l.Open())
	}
	srvB1.Close()
	srvB1.Close() // a second Close frees nothing more
	b1.Close()
	c := dial("127.0.0.2") // the slot is free again
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("a connection within the bounds was not accepted after a slot freed")
	}
	if l.Open() != 3 {
		t.Fatalf("%d open, want 3", l.Open())
	}
	for _, x := range []net.Conn{a1, a2, a3, b2, c} {
		x.Close()
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
