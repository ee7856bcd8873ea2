//go:build linux

package netbed

import (
	"context"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// TestTUNHosts: two AddTUN hosts reach each other only through whoever forwards between their files
// (here a copy loop), and not over the bed's bridge: with the loop stopped, a connection times out.
func TestTUNHosts(t *testing.T) {
	needBed(t)
	t.Parallel()
	b := New(t, "tun")
	pub := b.AddPublic("p")
	a, fa := b.AddTUN("a")
	c, fc := b.AddTUN("c")
	if a.IP().Equal(pub.IP()) || a.IP().Equal(c.IP()) || pub.IP().Equal(c.IP()) {
		t.Fatalf("addresses not distinct: public %s, a %s, c %s", pub.IP(), a.IP(), c.IP())
	}

	var forwarding sync.WaitGroup
	stop := make(chan struct{})
	files := map[string]*os.File{a.IP().String(): fa, c.IP().String(): fc}
	for _, f := range []*os.File{fa, fc} {
		forwarding.Go(func() {
			buf := make([]byte, 2048)
			for {
				_ = f.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				n, err := f.Read(buf)
				select {
				case <-stop:
					return
				default:
				}
				if err != nil || n < 20 || buf[0]>>4 != 4 {
					continue // deadline, or not IPv4
				}
				if out := files[net.IP(buf[16:20]).String()]; out != nil {
					_, _ = out.Write(buf[:n])
				}
			}
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := c.Listen(ctx, net.ListenConfig{}, "tcp4", net.JoinHostPort(c.IP().String(), "7001"))
	if err != nil {
		t.Fatal(err)
	}
	serveHello(t, l, "hello over TUN")
	if got, err := readHello(ctx, a, l.Addr().String()); err != nil || got != "hello over TUN" {
		t.Fatalf("a to c through the copy loop: %q, %v", got, err)
	}
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	if _, err := readHello(short(), pub, l.Addr().String()); err == nil {
		t.Error("the bridge's public host reached a TUN host")
	}

	close(stop)
	forwarding.Wait()
	if got, err := readHello(short(), a, l.Addr().String()); err == nil {
		t.Errorf("a reached c with nothing forwarding: %q", got)
	}
}
