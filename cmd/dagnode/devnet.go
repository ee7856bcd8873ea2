package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/dagnode/dagnode/internal/netbed"
)

// devnetConfig holds `dagnode devnet`'s flags.
type devnetConfig struct {
	Nodes   int           `long:"nodes" description:"number of nodes (1 to 64)"`
	Miners  int           `long:"miners" description:"how many of them mine, one worker each (default: 2, or 1 for a single node)"`
	Network string        `long:"network" description:"simnet or regtest"`
	Dir     string        `long:"dir" description:"parent of the nodes' data directories (default: a new temporary directory, removed at exit)"`
	Latency time.Duration `long:"latency" description:"one-way delay between any two nodes, e.g. 40ms: each node then runs in a network namespace of its own behind a simulated link (needs root and /dev/net/tun; default: on loopback, no delay)"`
}

// Devnet bounds.
const (
	maxDevnetNodes = 64
	// devnetStartTimeout bounds a node's start (until its RPC server and
	// its dashboard listen).
	devnetStartTimeout = 60 * time.Second
	// devnetStopTimeout is how long a node has to stop after SIGINT before
	// it gets SIGKILL.
	devnetStopTimeout = 15 * time.Second
	// maxDevnetLatency bounds --latency: beyond a few seconds, libp2p's
	// and the sync protocol's timeouts fire and the network stops being a
	// network.
	maxDevnetLatency = 5 * time.Second
)

// The daemon's log lines that name its addresses, as devnet (and the
// tests that run daemons) read them: the P2P listen multiaddrs, the first
// RPC listen address, and the dashboard's URL with its token.
var (
	listenLogRe = regexp.MustCompile(`msg=listening addrs="?\[([^\]]*)\]`)
	rpcLogRe    = regexp.MustCompile(`msg="rpc server listening" addrs="?\[([0-9.:]+)[\] ]`)
	uiLogRe     = regexp.MustCompile(`msg="ui server listening" addr=\S+ url="?(https?://[^"\s]+)`)
)

// devnetNode is one child process of a devnet.
type devnetNode struct {
	name, dir    string
	cmd          *exec.Cmd
	p2p, rpc, ui string // as the node logged them (set by start)
	// shownRPC and shownUI are what the operator is given: the node's own
	// addresses, or with --latency those forwarded to the host's loopback.
	shownRPC, shownUI string
	done              chan struct{} // closed when the process has exited
	exitErr           error         // set before done closes
}

// runDevnet runs `dagnode devnet`: N dagnode processes on loopback (with
// --latency, each in a network namespace of its own behind a simulated
// link), each after the first bootstrapped off the first, M of them mining,
// until ctx ends; then it stops every child (SIGINT, then SIGKILL after
// devnetStopTimeout), tears the namespaces down and returns once all have
// exited.
func runDevnet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	dc := devnetConfig{Nodes: 4, Miners: -1, Network: "simnet"}
	rest, err := parseFlags(&dc, "dagnode devnet", args, stdout)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usagef("devnet: unexpected argument %q", rest[0])
	case dc.Nodes < 1 || dc.Nodes > maxDevnetNodes:
		return usagef("devnet: --nodes %d: want 1 to %d", dc.Nodes, maxDevnetNodes)
	case dc.Network != "simnet" && dc.Network != "regtest":
		return usagef("devnet: --network %q: want simnet or regtest (a devnet never joins a public network)", dc.Network)
	case dc.Miners == -1:
		dc.Miners = min(2, dc.Nodes)
	case dc.Miners < 0 || dc.Miners > dc.Nodes:
		return usagef("devnet: --miners %d: want 0 to %d", dc.Miners, dc.Nodes)
	}
	if dc.Latency < 0 || dc.Latency > maxDevnetLatency {
		return usagef("devnet: --latency %v: want 0 (loopback) up to %v", dc.Latency, maxDevnetLatency)
	}
	if dc.Latency > 0 {
		if err := netbed.TUNAvailable(); err != nil {
			return usagef("devnet: --latency runs the nodes in network namespaces, which this machine cannot make: %v", err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("devnet: finding the dagnode executable: %w", err)
	}
	dir := dc.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "dagnode-devnet-"); err != nil {
			return fmt.Errorf("devnet: %w", err)
		}
		defer os.RemoveAll(dir)
	}

	// With --latency, the bed of namespaces and the wire between them; torn
	// down after the nodes have stopped.
	var lnet *latencyNet
	if dc.Latency > 0 {
		if lnet, err = newLatencyNet(dc.Nodes, dc.Latency); err != nil {
			return fmt.Errorf("devnet: --latency: %w", err)
		}
	}
	var nodes []*devnetNode
	defer func() {
		stopDevnet(nodes, stderr)
		lnet.close(stderr)
	}()
	for i := range dc.Nodes {
		n := &devnetNode{name: fmt.Sprintf("node%d", i), done: make(chan struct{})}
		n.dir = filepath.Join(dir, n.name)
		p2pIP := "127.0.0.1"
		if lnet != nil {
			p2pIP = lnet.hosts[i].IP().String()
		}
		args := []string{"--network", dc.Network, "--datadir", n.dir,
			"--listen", "/ip4/" + p2pIP + "/tcp/0", "--listen", "/ip4/" + p2pIP + "/udp/0/quic-v1",
			"--rpclisten", "127.0.0.1:0", "--ui", "127.0.0.1:0", "--nomdns", "--nonat"}
		if i > 0 {
			args = append(args, "--bootstrap", nodes[0].p2p)
		}
		if i < dc.Miners {
			args = append(args, "--generate", "--genproclimit", "1")
		}
		cmd := exec.Command(self, args...)
		if lnet != nil {
			// ip netns exec execs the node: the process id is the node's.
			cmd = lnet.hosts[i].Command(context.Background(), self, args...)
		}
		err := n.start(ctx, cmd)
		nodes = append(nodes, n)
		if err == nil {
			n.shownRPC, n.shownUI = n.rpc, n.ui
			if lnet != nil {
				n.shownRPC, n.shownUI, err = lnet.expose(i, n.rpc, n.ui)
			}
		}
		if err != nil {
			return fmt.Errorf("devnet: %s: %w", n.name, err)
		}
	}

	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPID\tMINING\tPEER ID\tP2P ADDRESS\tRPC ADDRESS\tDATA DIR\tDASHBOARD")
	for i, n := range nodes {
		id := n.p2p[strings.LastIndex(n.p2p, "/")+1:]
		fmt.Fprintf(tw, "%s\t%d\t%v\t%s\t%s\t%s\t%s\t%s\n", n.name, n.cmd.Process.Pid, i < dc.Miners, id, n.p2p, n.shownRPC, n.dir, n.shownUI)
	}
	tw.Flush()
	if lnet != nil {
		lnet.describe(stdout)
	}
	fmt.Fprintf(stdout, "\nWatch it: open %s\nAsk a node: dagnode rpc --network %s --datadir %s --rpcserver %s getdagtips\nCtrl-C stops every node.\n",
		nodes[0].shownUI, dc.Network, nodes[0].dir, nodes[0].shownRPC)

	// Run until ctx ends; report children that die meanwhile.
	dead := make(chan *devnetNode, len(nodes))
	for _, n := range nodes {
		go func() {
			select {
			case <-n.done:
				dead <- n
			case <-ctx.Done():
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-dead:
			fmt.Fprintf(stderr, "dagnode devnet: %s (pid %d) exited: %v (its log: %s)\n",
				n.name, n.cmd.Process.Pid, n.exitErr, filepath.Join(n.dir, "dagnode.log"))
		}
	}
}

// start runs the node (cmd, not yet started) and waits until its RPC server
// and its dashboard listen (the dashboard starts after the RPC server). Its
// log goes to <dir>/dagnode.log.
func (n *devnetNode) start(ctx context.Context, cmd *exec.Cmd) error {
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(n.dir, "dagnode.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	n.cmd = cmd
	// Its own process group: a Ctrl-C in the terminal reaches devnet only,
	// which then stops each node with one SIGINT.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pipe, err := n.cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return err
	}
	n.cmd.Stdout = logf
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		close(n.done)
		return err
	}
	ready := make(chan struct{})
	go func() {
		defer logf.Close()
		var once sync.Once
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if m := listenLogRe.FindStringSubmatch(line); m != nil && n.p2p == "" {
				for _, a := range strings.Fields(m[1]) {
					if strings.Contains(a, "/tcp/") {
						n.p2p = a
						break
					}
				}
			}
			if m := rpcLogRe.FindStringSubmatch(line); m != nil && n.rpc == "" {
				n.rpc = m[1]
			}
			if m := uiLogRe.FindStringSubmatch(line); m != nil && n.ui == "" {
				n.ui = m[1]
				once.Do(func() { close(ready) })
			}
		}
		n.exitErr = n.cmd.Wait()
		close(n.done)
	}()
	select {
	case <-ready:
		switch {
		case n.p2p == "":
			return errors.New("it logged no TCP listen address")
		case n.rpc == "":
			return errors.New("it logged no RPC address")
		}
		return nil
	case <-n.done:
		return fmt.Errorf("exited before its RPC server and dashboard listened (%v); see %s", n.exitErr, filepath.Join(n.dir, "dagnode.log"))
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(devnetStartTimeout):
		return fmt.Errorf("no RPC server and dashboard within %v; see %s", devnetStartTimeout, filepath.Join(n.dir, "dagnode.log"))
	}
}

// stopDevnet sends SIGINT to every running node, SIGKILL to those still
// running after devnetStopTimeout, and waits for all of them.
func stopDevnet(nodes []*devnetNode, stderr io.Writer) {
	for _, n := range nodes {
		if n.cmd != nil && n.cmd.Process != nil {
			select {
			case <-n.done:
			default:
				_ = n.cmd.Process.Signal(os.Interrupt)
			}
		}
	}
	timer := time.NewTimer(devnetStopTimeout)
	defer timer.Stop()
	expired := false
	for _, n := range nodes {
		if n.cmd == nil || n.cmd.Process == nil {
			continue
		}
		if !expired {
			select {
			case <-n.done:
				continue
			case <-timer.C:
				expired = true
			}
		}
		select {
		case <-n.done:
		default:
			fmt.Fprintf(stderr, "dagnode devnet: %s (pid %d) did not stop within %v: killed\n", n.name, n.cmd.Process.Pid, devnetStopTimeout)
			_ = n.cmd.Process.Kill()
			<-n.done
		}
	}
}
