package natbed

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dagnode/dagnode/internal/netbed"
	"github.com/dagnode/dagnode/rpc"
)

// binary is the dagnode built once for the package by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if netbed.Available() != nil || testing.Short() {
		return m.Run() // the tests skip and say why
	}
	dir, err := os.MkdirTemp("", "natbed-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "dagnode")
	build := exec.Command("go", "build", "-o", binary, "github.com/dagnode/dagnode/cmd/dagnode")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "natbed: building dagnode:", err)
		return 1
	}
	return m.Run()
}

// needBed skips t unless a test bed can be built here.
func needBed(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("NAT test bed: starts dagnode processes in network namespaces")
	}
	if err := netbed.Available(); err != nil {
		t.Skipf("NAT test bed unavailable: %v", err)
	}
}

const (
	rpcUser = "natbed"
	rpcPass = "natbed-pass"
	// callTimeout bounds one RPC call.
	callTimeout = 5 * time.Second
)

// daemon is one dagnode process in a namespace.
type daemon struct {
	t       testing.TB
	name    string
	host    *netbed.Host
	bed     *netbed.Bed
	datadir string
	args    []string
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	rpc     *rpc.Client
	peerID  string
}

var (
	rpcListenRe = regexp.MustCompile(`msg="rpc server listening" addrs="?\[([0-9.:]+)\]`)
	startingRe  = regexp.MustCompile(`msg="dagnode starting".* peer=(\S+)`)
)

// startDaemon runs dagnode in h's namespace on regtest with OS-chosen
// ports and waits until its RPC server listens.
func startDaemon(t testing.TB, bed *netbed.Bed, h *netbed.Host, name string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, name: name, host: h, bed: bed, datadir: filepath.Join(t.TempDir(), name)}
	d.args = []string{"--network", "regtest", "--datadir", d.datadir,
		"--listen", "/ip4/0.0.0.0/tcp/0", "--listen", "/ip4/0.0.0.0/udp/0/quic-v1",
		"--rpclisten", "127.0.0.1:0", "--rpcuser", rpcUser, "--rpcpass", rpcPass, "--loglevel", "debug"}
	if !slices.Contains(extra, "--mdns") {
		d.args = append(d.args, "--nomdns")
	}
	d.args = append(d.args, extra...)
	d.start()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			d.dumpLog(150)
		}
	})
	return d
}

// start starts the process (again) with d.args.
func (d *daemon) start() {
	t := d.t
	t.Helper()
	d.logPath = filepath.Join(d.datadir+"-logs", fmt.Sprintf("%d.log", time.Now().UnixNano()))
	if err := os.MkdirAll(filepath.Dir(d.logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	d.cmd = d.host.Command(context.Background(), binary, d.args...)
	d.cmd.Stdout, d.cmd.Stderr = pw, pw
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("%s: starting dagnode: %v", d.name, err)
	}
	d.bed.Track(d.cmd)
	d.done = make(chan struct{})
	rpcAddr, peerID := make(chan string, 1), make(chan string, 1)
	go func() { // copy the log; note the first RPC address and peer ID
		defer logf.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if m := rpcListenRe.FindStringSubmatch(line); m != nil {
				select {
				case rpcAddr <- m[1]:
				default:
				}
			}
			if m := startingRe.FindStringSubmatch(line); m != nil {
				select {
				case peerID <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		d.cmd.Wait()
		pw.Close()
		close(d.done)
	}()
	select {
	case addr := <-rpcAddr:
		d.rpc = rpc.NewClient(addr, rpcUser, rpcPass)
		d.rpc.HTTPClient = d.host.HTTPClient()
		d.peerID = <-peerID
	case <-d.done:
		t.Fatalf("%s: dagnode exited before its RPC server listened", d.name)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no RPC server after 30 s", d.name)
	}
}

// stop ends the process with SIGTERM and waits for it.
func (d *daemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}

// restart stops the process and starts it again on the same data directory.
func (d *daemon) restart() {
	d.stop()
	d.start()
}

func (d *daemon) dumpLog(lines int) {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return
	}
	var all []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.Contains(l, `msg="rpc call"`) { // the test's own polling
			all = append(all, l)
		}
	}
	all = all[max(0, len(all)-lines):]
	d.t.Logf("--- last %d log lines of %s (%s) ---\n%s", len(all), d.name, d.logPath, strings.Join(all, "\n"))
}

// call makes one RPC call and decodes its result into out (if not nil).
func (d *daemon) call(out any, method string, params ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	raw, err := d.rpc.Call(ctx, method, params...)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", d.name, method, err)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// mustCall is call that fails the test.
func (d *daemon) mustCall(out any, method string, params ...any) {
	d.t.Helper()
	if err := d.call(out, method, params...); err != nil {
		d.t.Fatal(err)
	}
}

// netInfo is the part of getnetworkinfo the scenarios read.
type netInfo struct {
	PeerID                 string            `json:"peerid"`
	ListenAddrs            []string          `json:"listenaddrs"`
	ObservedAddrs          []string          `json:"observedaddrs"`
	Reachability           string            `json:"reachability"`
	ReachabilityBasis      string            `json:"reachabilitybasis"`
	DHTMode                string            `json:"dhtmode"`
	ReachabilityConfidence int               `json:"reachabilityconfidence"`
	ReachableAddrs         []string          `json:"reachableaddrs"`
	RelayAddrs             []string          `json:"relayaddrs"`
	NATType                map[string]string `json:"nattype"`
	NATService             string            `json:"natservice"`
	RelayService           string            `json:"relayservice"`
	HolePunch              struct {
		DirectDials, Started, Succeeded, Failed uint64
	} `json:"holepunch"`
}

func (d *daemon) netInfo() (netInfo, error) {
	var ni netInfo
	err := d.call(&ni, "getnetworkinfo")
	return ni, err
}

// peerInfo is the part of a getpeerinfo entry the scenarios read.
type peerInfo struct {
	ID          string `json:"peerid"`
	Connection  string `json:"connection"`
	Relayed     bool   `json:"relayed"`
	Connections []struct {
		Addr    string `json:"addr"`
		Relayed bool   `json:"relayed"`
	} `json:"connections"`
	CurrentHeight int64 `json:"currentheight"`
	HolePunch     *struct {
		Started, Succeeded, Failed, DirectDials int
		LastMillis                              int64  `json:"lastmillis"`
		LastError                               string `json:"lasterror"`
	} `json:"holepunch"`
}

// peer returns d's view of the peer with ID id, if connected.
func (d *daemon) peer(id string) (peerInfo, bool, error) {
	var ps []peerInfo
	if err := d.call(&ps, "getpeerinfo"); err != nil {
		return peerInfo{}, false, err
	}
	i := slices.IndexFunc(ps, func(p peerInfo) bool { return p.ID == id })
	if i < 0 {
		return peerInfo{}, false, nil
	}
	return ps[i], true, nil
}

// addrsWith returns the addresses of as that contain all of parts.
func addrsWith(as []string, parts ...string) []string {
	var out []string
	for _, a := range as {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(a, p) }) {
			out = append(out, a)
		}
	}
	return out
}

// hasBlock reports whether d has the block with hash h.
func (d *daemon) hasBlock(h string) bool {
	return d.call(nil, "getblockheader", h) == nil
}

// steps times a scenario's steps from its start and logs each.
type steps struct {
	t     testing.TB
	start time.Time
	mu    sync.Mutex
	log   []string
}

func newSteps(t testing.TB) *steps { return &steps{t: t, start: time.Now()} }

// wait polls cond every 100 ms until it holds or timeout passes, then logs
// the step with the time since the scenario started. cond returns a
// description of the state for the failure message.
func (s *steps) wait(what string, timeout time.Duration, cond func() (bool, string)) time.Duration {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var state string
	for {
		ok, st := cond()
		if ok {
			break
		}
		state = st
		if time.Now().After(deadline) {
			s.t.Fatalf("step %q: not reached after %s; last state: %s", what, timeout, state)
		}
		time.Sleep(100 * time.Millisecond) // polling a process over RPC
	}
	at := time.Since(s.start).Round(10 * time.Millisecond)
	s.mu.Lock()
	s.log = append(s.log, fmt.Sprintf("%-45s %8s", what, at))
	s.mu.Unlock()
	s.t.Logf("step %-45s at %s", what, at)
	return at
}

// mark restarts the clock (for a scenario's second phase).
func (s *steps) mark(what string) {
	s.start = time.Now()
	s.t.Logf("step %-45s (clock reset)", what)
}
