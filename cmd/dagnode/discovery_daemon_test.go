package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	lphost "github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multiaddr"

	"github.com/dagnode/dagnode/rpc"
)

// Discovery scenarios with real dagnode processes (the re-executed test
// binary) on loopback and default flags: only ports (chosen by the OS),
// data directories, --network regtest and --nomdns; --nonat keeps the
// traffic on loopback (UPnP/NAT-PMP would probe the machine's router).

// proc is a dagnode process whose log is kept (the last lines, for
// failures) and whose RPC server the test calls.
type proc struct {
	t       *testing.T
	name    string
	datadir string
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{}

	mu     sync.Mutex
	tail   []string
	listen []string
	client *rpc.Client
}

const procTailLines = 200

// startProc starts dagnode on regtest in a fresh data directory with the
// given extra flags and waits until its RPC server listens.
func startProc(t *testing.T, name string, extra ...string) *proc {
	t.Helper()
	return startProcIn(t, name, filepath.Join(t.TempDir(), name), extra...)
}

// startProcIn is startProc on the data directory datadir (a restart).
func startProcIn(t *testing.T, name, datadir string, extra ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, datadir: datadir, done: make(chan struct{})}
	args := append([]string{"--network", "regtest", "--datadir", p.datadir,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1",
		"--rpclisten", "127.0.0.1:0", "--nomdns", "--nonat"}, extra...)
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.SysProcAttr = childAttr()
	p.cmd.Env = append(os.Environ(), "DAGNODE_TEST_MAIN=1", "HOME="+t.TempDir())
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.tail = append(p.tail, line)
			if len(p.tail) > procTailLines {
				p.tail = p.tail[len(p.tail)-procTailLines:]
			}
			if m := listenLogRe.FindStringSubmatch(line); m != nil && p.listen == nil {
				p.listen = strings.Fields(m[1])
			}
			p.mu.Unlock()
			if m := rpcLogRe.FindStringSubmatch(line); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(os.Interrupt)
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("--- last log lines of %s ---\n%s", p.name, strings.Join(p.tail, "\n"))
			p.mu.Unlock()
		}
	})
	select {
	case addr := <-ready:
		user, pass, err := rpc.ReadCookie(filepath.Join(p.datadir, cookieFile))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p.client = rpc.NewClient(addr, user, pass)
	case <-p.done:
		t.Fatalf("%s exited before its RPC server listened:\n%s", name, strings.Join(p.tail, "\n"))
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: no RPC server within 60 s", name)
	}
	return p
}

// call makes one RPC call and decodes its result into out (if not nil).
func (p *proc) call(out any, method string, params ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := p.client.Call(ctx, method, params...)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", p.name, method, err)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// addr is the node's TCP loopback address with /p2p/<id>, for --bootstrap.
func (p *proc) addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.listen {
		if strings.Contains(a, "/tcp/") {
			return a
		}
	}
	p.t.Fatalf("%s logged no TCP listen address: %v", p.name, p.listen)
	return ""
}

// id is the node's peer ID, from its listen address.
func (p *proc) id() string {
	a := p.addr()
	return a[strings.LastIndex(a, "/")+1:]
}

// peers returns the IDs of the node's connected peers (getpeerinfo).
func (p *proc) peers() ([]string, error) {
	var ps []struct {
		ID string `json:"peerid"`
	}
	if err := p.call(&ps, "getpeerinfo"); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ps))
	for _, x := range ps {
		out = append(out, x.ID)
	}
	return out, nil
}

// connectedTo reports whether p lists q among its peers.
func (p *proc) connectedTo(q *proc) bool {
	ps, err := p.peers()
	return err == nil && slices.Contains(ps, q.id())
}

// pollUntil polls cond every 50 ms until it holds or timeout passes.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond) // polling processes over RPC
	}
}

// silentListener accepts TCP connections and never says a word: a
// bootstrap address that never answers.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String()
}

// startResetter runs a libp2p host in this process that claims the
// network's DHT and sync protocols and resets every stream it is offered,
// connected to each of to: a flaky peer beside the honest ones.
func startResetter(t *testing.T, to ...*proc) peer.ID {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(),
		libp2p.ProtocolVersion("/dagnode/regtest"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	for _, id := range []protocol.ID{"/dagnode/regtest/kad/1.0.0", "/dagnode/regtest/sync/3"} {
		h.SetStreamHandler(id, func(s network.Stream) { _ = s.Reset() })
	}
	connectProcs(t, h, "resetter", to...)
	return h.ID()
}

// connectProcs connects the in-process host h (named what, for failures)
// to each of the processes to.
func connectProcs(t *testing.T, h lphost.Host, what string, to ...*proc) {
	t.Helper()
	for _, p := range to {
		ai, err := peer.AddrInfoFromString(p.addr())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = h.Connect(ctx, *ai)
		cancel()
		if err != nil {
			t.Fatalf("%s connecting to %s: %v", what, p.name, err)
		}
	}
}

// TestDaemonsFindEachOtherOnLoopback: A alone, B and C each given only
// --bootstrap A: C is connected to B within 10 s of C's start, with the
// defaults (the DHT serves while reachability is unknown, and the first
// rendezvous runs when the routing table gains A). Beside them: a peer
// connected to A and B that resets every DHT and sync stream, and, for C, a
// second bootstrap address that accepts TCP and never answers.
func TestDaemonsFindEachOtherOnLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dagnode processes")
	}
	a := startProc(t, "A")
	b := startProc(t, "B", "--bootstrap", a.addr())
	resetter := startResetter(t, a, b)
	silent := silentListener(t)
	host, port, _ := net.SplitHostPort(silent)
	// A valid peer ID that no one holds.
	ghost := "12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"
	c := startProc(t, "C", "--bootstrap", a.addr(), "--bootstrap", "/ip4/"+host+"/tcp/"+port+"/p2p/"+ghost)
	pollUntil(t, 10*time.Second, "C connected to B", func() bool { return c.connectedTo(b) || b.connectedTo(c) })
	t.Logf("C connected to B %v after C's start (%v after A's)",
		time.Since(c.started).Round(time.Millisecond), time.Since(a.started).Round(time.Millisecond))
	var ni struct {
		Reachability string `json:"reachability"`
		DHTMode      string `json:"dhtmode"`
	}
	for _, p := range []*proc{a, b, c} {
		if err := p.call(&ni, "getnetworkinfo"); err != nil {
			t.Fatal(err)
		}
		if ni.Reachability != "unknown" || ni.DHTMode != "server" {
			t.Fatalf("%s on loopback: reachability %q, DHT mode %q; want unknown and server", p.name, ni.Reachability, ni.DHTMode)
		}
	}
	// Resets are faults, not offences: the resetter is neither scored nor
	// banned.
	for _, p := range []*proc{a, b} {
		var peers []struct {
			ID       string `json:"peerid"`
			BanScore int    `json:"banscore"`
			Banned   bool   `json:"banned"`
		}
		if err := p.call(&peers, "getpeerinfo"); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, q := range peers {
			if q.ID == resetter.String() {
				found = true
				if q.BanScore != 0 || q.Banned {
					t.Fatalf("%s scored the stream resetter %d (banned %v)", p.name, q.BanScore, q.Banned)
				}
			}
		}
		if !found {
			t.Fatalf("%s is no longer connected to the stream resetter", p.name)
		}
	}
}

// TestDaemonChainOfTen: ten processes, each bootstrapped off the previous
// one only: every node has at least three peers within 30 s, and a block
// mined on the last reaches the first.
func TestDaemonChainOfTen(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ten dagnode processes")
	}
	var ps []*proc
	for i := range 10 {
		var extra []string
		if i > 0 {
			extra = []string{"--bootstrap", ps[i-1].addr()}
		}
		ps = append(ps, startProc(t, fmt.Sprint("n", i), extra...))
	}
	start := time.Now()
	pollUntil(t, 30*time.Second, "every node with at least 3 peers", func() bool {
		for _, p := range ps {
			if peers, err := p.peers(); err != nil || len(peers) < 3 {
				return false
			}
		}
		return true
	})
	t.Logf("every node had 3 peers %v after the last started", time.Since(start).Round(time.Millisecond))
	var hashes []string
	if err := ps[9].call(&hashes, "generate", 1); err != nil || len(hashes) != 1 {
		t.Fatalf("generate on the last node: %v %v", hashes, err)
	}
	start = time.Now()
	pollUntil(t, 30*time.Second, "the block mined on the last node at the first", func() bool {
		return ps[0].call(nil, "getblockheader", hashes[0]) == nil
	})
	t.Logf("block reached the first node %v after it was mined", time.Since(start).Round(time.Millisecond))
	var count int
	if err := ps[0].call(&count, "getblockcount"); err != nil || count < 2 {
		t.Fatalf("first node's block count %d (%v), want the genesis and the mined block", count, err)
	}
}

// TestDaemonListenPortInUse: a second node given the first one's --listen
// port exits with code 2 and a message naming the port, before it writes
// anything.
func TestDaemonListenPortInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dagnode processes")
	}
	a := startProc(t, "A")
	ma, err := multiaddr.NewMultiaddr(a.addr())
	if err != nil {
		t.Fatal(err)
	}
	port, err := ma.ValueForProtocol(multiaddr.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	datadir := filepath.Join(t.TempDir(), "B")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "--network", "regtest", "--datadir", datadir,
		"--listen", "/ip4/127.0.0.1/tcp/"+port, "--rpclisten", "127.0.0.1:0", "--nomdns", "--nonat")
	cmd.Env = append(os.Environ(), "DAGNODE_TEST_MAIN=1", "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("second node on port %s: %v, want exit code %d; output:\n%s", port, err, exitUsage, out)
	}
	if !strings.Contains(string(out), "port "+port) || !strings.Contains(string(out), "in use") {
		t.Fatalf("the message does not name port %s:\n%s", port, out)
	}
	if _, err := os.Stat(datadir); !os.IsNotExist(err) {
		t.Fatalf("the data directory was created (%v)", err)
	}
	if err := a.call(nil, "getblockcount"); err != nil {
		t.Fatalf("the first node stopped answering: %v", err)
	}
}
