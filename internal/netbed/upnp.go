package netbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

const (
	// UPnPHTTPPort is the port of miniupnpd's UPnP IGD HTTP server on the router's LAN address
	// (fixed so tests can reach the description at http://GATEWAY:5000/rootDesc.xml).
	UPnPHTTPPort = 5000
	// natPMPPort is the NAT-PMP server port (RFC 6886).
	natPMPPort = 5351
	// upnpStartTimeout bounds how long AddHome waits for miniupnpd to answer.
	upnpStartTimeout = 10 * time.Second
	// maxDaemonLog caps a daemon's kept log; older output is dropped.
	maxDaemonLog = 256 << 10
)

// daemon is a long-running process the bed starts and owns (miniupnpd).
type daemon struct {
	name string
	cmd  *exec.Cmd
	log  *tailBuffer
	done chan struct{} // closed when cmd has been waited for
	err  error         // cmd.Wait's result, set before done is closed
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// tailBuffer is a concurrency-safe writer keeping the last maxDaemonLog bytes.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - maxDaemonLog; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// miniupnpdConf is the configuration of a home's miniupnpd. The nftables table and chain names are
// miniupnpd's defaults, which routerRules creates.
func miniupnpdConf(h *Home, uuid, dir string) string {
	return fmt.Sprintf(`ext_ifname=wan
listening_ip=lan
http_port=%d
enable_natpmp=yes
enable_upnp=yes
secure_mode=yes
system_uptime=yes
ipv6_disable=yes
notify_interval=60
clean_ruleset_interval=600
uuid=%s
friendly_name=netbed %s
minissdpdsocket=%s
allow 1024-65535 %s/32 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
`, UPnPHTTPPort, uuid, h.name, filepath.Join(dir, "minissdpd.sock"), h.Host.IP())
}

// startMiniUPnPd runs miniupnpd in the foreground in the home's router namespace and waits until its
// IGD HTTP server accepts connections and it answers a NAT-PMP request from the home host.
func (b *Bed) startMiniUPnPd(h *Home) (*daemon, error) {
	bin, err := findTool("miniupnpd")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "netbed-upnp-")
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.tempDirs = append(b.tempDirs, dir)
	b.mu.Unlock()
	conf := filepath.Join(dir, "miniupnpd.conf")
	if err := os.WriteFile(conf, []byte(miniupnpdConf(h, newUUID(), dir)), 0o600); err != nil {
		return nil, err
	}

	d := &daemon{
		name: "miniupnpd[" + h.name + "]",
		log:  &tailBuffer{},
		done: make(chan struct{}),
	}
	// ip netns exec execs miniupnpd, so the process is miniupnpd itself. -P: a private pid file, as the
	// default one would make a second instance refuse to start.
	d.cmd = exec.Command(b.tools.ip, "netns", "exec", h.Router.ns, bin,
		"-f", conf, "-d", "-P", filepath.Join(dir, "miniupnpd.pid"))
	d.cmd.Stdout = d.log
	d.cmd.Stderr = d.log
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errors.New("bed already cleaned up")
	}
	if err := d.cmd.Start(); err != nil {
		b.mu.Unlock()
		return nil, fmt.Errorf("start miniupnpd: %w", err)
	}
	b.daemons = append(b.daemons, d)
	b.mu.Unlock()
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), upnpStartTimeout)
	defer cancel()
	if err := waitMiniUPnPd(ctx, h, d); err != nil {
		return nil, fmt.Errorf("miniupnpd not ready: %w\nminiupnpd log:\n%s", err, d.log.String())
	}
	return d, nil
}

// waitMiniUPnPd polls until miniupnpd's HTTP port accepts a connection from the home host and its
// NAT-PMP server answers an external-address request, or ctx ends, or miniupnpd exits.
func waitMiniUPnPd(ctx context.Context, h *Home, d *daemon) error {
	const retry = 50 * time.Millisecond
	httpAddr := net.JoinHostPort(h.gateway.String(), strconv.Itoa(UPnPHTTPPort))
	for {
		c, err := h.Host.Dialer(net.Dialer{Timeout: 500 * time.Millisecond}).DialContext(ctx, "tcp", httpAddr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-d.done:
			return fmt.Errorf("miniupnpd exited: %v", d.err)
		case <-ctx.Done():
			return fmt.Errorf("IGD HTTP %s: %w", httpAddr, err)
		case <-time.After(retry):
		}
	}
	pc, err := h.Host.ListenPacket(ctx, net.ListenConfig{}, "udp4", ":0")
	if err != nil {
		return err
	}
	defer pc.Close()
	server := &net.UDPAddr{IP: h.gateway, Port: natPMPPort}
	reply := make([]byte, 16)
	for {
		// Version 0, opcode 0: external address request (RFC 6886 section 3.2).
		if _, err := pc.WriteTo([]byte{0, 0}, server); err != nil {
			return err
		}
		_ = pc.SetReadDeadline(time.Now().Add(retry * 4))
		n, _, err := pc.ReadFrom(reply)
		if err == nil && n >= 12 && reply[1] == 128 {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("miniupnpd exited: %v", d.err)
		case <-ctx.Done():
			return fmt.Errorf("NAT-PMP %s: no answer (last: %d bytes, %v)", server, n, err)
		default:
		}
	}
}

// newUUID returns a random version 4 UUID for the IGD description.
func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s bytes.Buffer
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s.WriteByte('-')
		}
		fmt.Fprintf(&s, "%02x", c)
	}
	return s.String()
}
