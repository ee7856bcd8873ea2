package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dagnode/dagnode/internal/netbed"
	"github.com/dagnode/dagnode/rpc"
)

// devnetRun is a `dagnode devnet` process started by a test, and its
// nodes as its table lists them.
type devnetRun struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	out    []string // what it printed up to "Ctrl-C ..."
	nodes  []*devNode
	exited chan error
}

// devNode is one node of a devnetRun.
type devNode struct {
	*proc  // its RPC client (devnet started the process)
	pid    int
	mining bool
	p2p    string
	dir    string
	url    string // the dashboard's URL with its token
}

// startDevnet runs `dagnode devnet` with args (the re-executed test binary,
// as devnet runs its nodes) and reads its table. The cleanup kills it if the
// test has not stopped it.
func startDevnet(t *testing.T, args ...string) *devnetRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"devnet", "--dir", t.TempDir()}, args...)...)
	cmd.Env = append(os.Environ(), "DAGNODE_TEST_MAIN=1", "HOME="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &devnetRun{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		d.out = append(d.out, sc.Text())
		f := strings.Fields(sc.Text())
		if len(f) == 8 && strings.HasPrefix(f[0], "node") {
			if !strings.HasPrefix(f[7], "http://127.0.0.1:") || !strings.Contains(f[7], "/?token=") {
				t.Errorf("%s's dashboard URL %q", f[0], f[7])
			}
			pid, _ := strconv.Atoi(f[1])
			user, pass, err := rpc.ReadCookie(filepath.Join(f[6], cookieFile))
			if err != nil {
				t.Fatal(err)
			}
			d.nodes = append(d.nodes, &devNode{pid: pid, mining: f[2] == "true", p2p: f[4], dir: f[6], url: f[7],
				proc: &proc{t: t, name: f[0], client: rpc.NewClient(f[5], user, pass)}})
		}
		if strings.HasPrefix(sc.Text(), "Ctrl-C") {
			break
		}
	}
	go func() {
		_, _ = io.Copy(io.Discard, out)
		d.exited <- cmd.Wait()
	}()
	return d
}

// stop sends devnet SIGINT and checks that it exits cleanly, no node is
// left and none had to be killed.
func (d *devnetRun) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		if err != nil {
			t.Fatalf("devnet exited with %v; stderr: %s", err, d.stderr.String())
		}
	case <-time.After(devnetStopTimeout + 10*time.Second):
		t.Fatal("devnet did not stop")
	}
	for _, n := range d.nodes {
		if err := syscall.Kill(n.pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("node pid %d still there after devnet stopped (%v)", n.pid, err)
		}
	}
	if strings.Contains(d.stderr.String(), "did not stop within") {
		t.Errorf("a node had to be killed: %s", d.stderr.String())
	}
}

// procs returns the nodes' RPC clients.
func (d *devnetRun) procs() []*proc {
	var ps []*proc
	for _, n := range d.nodes {
		ps = append(ps, n.proc)
	}
	return ps
}

// TestDevnet: `dagnode devnet --nodes 4 --miners 2` starts four nodes that
// converge on one DAG mined by two of them; a node that dies is reported;
// SIGINT stops the devnet and leaves no child process behind.
func TestDevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dagnode processes")
	}
	d := startDevnet(t, "--nodes", "4", "--miners", "2", "--network", "regtest")
	nodes := d.nodes
	if len(nodes) != 4 || !nodes[0].mining || !nodes[1].mining || nodes[2].mining {
		t.Fatalf("devnet table: %+v; stderr: %s", nodes, d.stderr.String())
	}
	// Let the two miners mine at once for a while, then stop them.
	pollUntil(t, 60*time.Second, "100 blocks on the last node", func() bool {
		var n int
		return nodes[3].call(&n, "getblockcount") == nil && n >= 100
	})
	for _, n := range nodes[:2] {
		if err := n.call(nil, "setgenerate", false); err != nil {
			t.Fatal(err)
		}
	}
	dt := sameDAG(t, 60*time.Second, d.procs()...)
	t.Logf("four nodes on one DAG of %d blocks", dt.BlkCount)

	// A node that dies is reported.
	if err := syscall.Kill(nodes[3].pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 10*time.Second, "the dead node reported", func() bool {
		return strings.Contains(d.stderr.String(), "node3 (pid "+strconv.Itoa(nodes[3].pid)+") exited")
	})

	// SIGINT stops every node.
	d.stop(t)
}

// TestDevnetLatency: `dagnode devnet --latency 40ms` runs each node in a
// network namespace of its own behind the wire: the nodes' P2P addresses
// are the bed's, their RPC servers and dashboards answer at the printed
// loopback addresses, a ping between two nodes takes the configured delay
// both ways, two miners' DAG converges, and SIGINT leaves no node and no
// namespace behind.
func TestDevnetLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dagnode processes in network namespaces")
	}
	if err := netbed.TUNAvailable(); err != nil {
		t.Skipf("devnet --latency unavailable here: %v", err)
	}
	const (
		latency = 40 * time.Millisecond
		// The least round trip the wire allows: two access links each way,
		// each up to its jitter early (devnetJitterShare of 20 ms: 2 ms).
		minRTT = 2*latency - 4*2*time.Millisecond
	)
	started := time.Now()
	d := startDevnet(t, "--nodes", "3", "--miners", "2", "--network", "regtest", "--latency", latency.String())
	nodes := d.nodes
	if len(nodes) != 3 || !nodes[0].mining || !nodes[1].mining || nodes[2].mining {
		t.Fatalf("devnet table: %+v; stderr: %s", nodes, d.stderr.String())
	}
	prefix := fmt.Sprintf("nb-devnet-%d-", d.cmd.Process.Pid)
	if ns := namespacesWith(t, prefix); len(ns) != 3 {
		t.Errorf("namespaces %v, want one per node", ns)
	}
	if out := strings.Join(d.out, "\n"); !strings.Contains(out, "40ms one way") || !strings.Contains(out, "ip netns exec "+prefix+"tun-node0") {
		t.Errorf("devnet did not describe its network:\n%s", out)
	}
	for i, n := range nodes {
		if want := fmt.Sprintf("/ip4/11.0.0.%d/tcp/", 10+i); !strings.HasPrefix(n.p2p, want) {
			t.Errorf("%s's P2P address %s, want %s...", n.name, n.p2p, want)
		}
	}
	t.Logf("devnet up in %v", time.Since(started).Round(time.Millisecond))

	// The dashboard through its forwarded address: the token opens it,
	// nothing else does.
	resp, err := http.Get(nodes[0].url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	u, err := url.Parse(nodes[0].url)
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery = ""
	noToken, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	noToken.Body.Close()
	if resp.StatusCode != http.StatusOK || noToken.StatusCode != http.StatusUnauthorized {
		t.Errorf("dashboard at %s: %d with the token, %d without; want 200 and 401", u, resp.StatusCode, noToken.StatusCode)
	}

	pollUntil(t, 30*time.Second, "node0 connected to both peers", func() bool {
		var ps []struct{}
		return nodes[0].call(&ps, "getpeerinfo") == nil && len(ps) == 2
	})
	// A ping between two nodes crosses four access links: at least twice
	// the configured delay, less the jitter. Measured while both miners
	// run, then again once they have stopped (a quieter machine).
	// A ping that fails (a connection reset while libp2p replaces a
	// duplicate connection is a fault of the network) is tried again, up
	// to five times; every answer must take at least minRTT.
	ping := func(when string) {
		t.Helper()
		answered := map[string]bool{}
		for attempt := 0; attempt < 5 && len(answered) < 2; attempt++ {
			var pings []struct {
				PeerID   string  `json:"peerid"`
				PingTime float64 `json:"pingtime"` // µs
				Error    string  `json:"error"`
			}
			if err := nodes[0].call(&pings, "ping"); err != nil {
				t.Fatal(err)
			}
			for _, p := range pings {
				if p.Error != "" || answered[p.PeerID] {
					if p.Error != "" {
						t.Logf("node0 ping %s %s: %s (tried again)", p.PeerID, when, p.Error)
					}
					continue
				}
				answered[p.PeerID] = true
				rtt := time.Duration(p.PingTime * float64(time.Microsecond))
				if rtt < minRTT {
					t.Errorf("ping %s: %v, want at least %v for %v one way", p.PeerID, rtt, minRTT, latency)
				}
				t.Logf("node0 ping %s %s: round trip %v (configured %v one way)", p.PeerID, when, rtt.Round(10*time.Microsecond), latency)
			}
		}
		if len(answered) != 2 {
			t.Fatalf("%s: %d of 2 peers answered a ping in 5 tries", when, len(answered))
		}
	}
	ping("while mining")

	pollUntil(t, 30*time.Second, "50 blocks on the node that does not mine", func() bool {
		var n int
		return nodes[2].call(&n, "getblockcount") == nil && n >= 50
	})
	for _, n := range nodes[:2] {
		if err := n.call(nil, "setgenerate", false); err != nil {
			t.Fatal(err)
		}
	}
	dt := sameDAG(t, 30*time.Second, d.procs()...)
	t.Logf("three nodes on one DAG of %d blocks, %d tips", dt.BlkCount, len(dt.Tips))
	ping("after mining")

	d.stop(t)
	if ns := namespacesWith(t, prefix); len(ns) > 0 {
		t.Errorf("namespaces left after devnet stopped: %v", ns)
	}
	if !strings.Contains(d.stderr.String(), "wire: forwarded") {
		t.Errorf("devnet did not report the wire's totals: %s", d.stderr.String())
	}
	t.Logf("%s", strings.TrimSpace(d.stderr.String()))
}

// namespacesWith lists the network namespaces (ip netns) whose names start
// with prefix.
func namespacesWith(t *testing.T, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestDevnetLatencyRefused: --latency out of range is a usage error, and
// where namespaces cannot be made (here: as an unprivileged user) devnet
// refuses it with exit code 2, naming what is missing, and starts nothing.
func TestDevnetLatencyRefused(t *testing.T) {
	for _, v := range []string{"-5ms", "6s", "40"} {
		if code, _, stderr := runArgs(t, "devnet", "--latency", v); code != exitUsage || !strings.Contains(stderr, "--latency") {
			t.Errorf("--latency %s: exit code %d, %q", v, code, stderr)
		}
	}
	if testing.Short() {
		return
	}
	bin, cred := os.Args[0], (*syscall.Credential)(nil)
	if os.Geteuid() == 0 {
		// Run a copy of this binary as nobody, from a directory nobody may
		// read (the build's own is private).
		dir, err := os.MkdirTemp("", "devnet-nobody-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		bin = filepath.Join(dir, "dagnode")
		data, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	home := t.TempDir()
	if err := os.Chmod(home, 0o777); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "devnet", "--nodes", "2", "--latency", "40ms")
	cmd.Env = append(os.Environ(), "DAGNODE_TEST_MAIN=1", "HOME="+home)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitUsage {
		t.Fatalf("devnet --latency unprivileged: %v, want exit code %d; output:\n%s", err, exitUsage, out)
	}
	if !strings.Contains(string(out), "needs root") || strings.Contains(string(out), "NODE") {
		t.Errorf("devnet --latency unprivileged: want a refusal naming root and no node started; output:\n%s", out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
