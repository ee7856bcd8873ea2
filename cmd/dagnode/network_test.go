package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/discovery"
	"github.com/dagnode/dagnode/host"
	"github.com/dagnode/dagnode/syncproto"
)

// testNodeOptions shorten every timer for in-process networks.
var testNodeOptions = nodeOptions{
	syncOpts: []syncproto.Option{syncproto.WithElectionWait(200 * time.Millisecond), syncproto.WithSampleInterval(time.Second), syncproto.WithStallTimeout(3 * time.Second)},
	discOpts: []discovery.Option{discovery.WithDiscoveryInterval(500 * time.Millisecond), discovery.WithBackoff(100*time.Millisecond, time.Second)},
}

func testLog() *slog.Logger {
	if os.Getenv("DAGNODE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startNode runs a node in this process on loopback with OS-chosen ports
// and testNodeOptions' short timers.
func startNode(t testing.TB, network string, dir string, extra ...string) *node {
	t.Helper()
	return startNodeWith(t, testNodeOptions, network, dir, extra...)
}

// startNodeWith is startNode with the given node options; nodeOptions{}
// runs the node with its default timers.
func startNodeWith(t testing.TB, opts nodeOptions, network string, dir string, extra ...string) *node {
	t.Helper()
	args := append([]string{"--network", network, "--datadir", dir, "--nonat", "--nomdns",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1", "--genproclimit", "1",
		"--rpclisten", "127.0.0.1:0"}, extra...)
	cfg, err := loadConfig(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNode(context.Background(), cfg, testLog().With("node", filepath.Base(dir)), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.start(); err != nil {
		n.close()
		t.Fatal(err)
	}
	t.Cleanup(n.close)
	return n
}

// p2pAddr is a full multiaddr of a node, for --bootstrap.
func p2pAddr(n *node) string { return host.FullAddrs(n.host)[0].String() }

func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) // polling
	}
}

// TestTenNodeNetwork: ten nodes joined by a random sparse topology of
// bootstrap links; blocks mined on any node reach every node, and a node of
// another network is refused.
func TestTenNodeNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("ten nodes")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	rng := rand.New(rand.NewPCG(1, 2))
	var nodes []*node
	for i := range 10 {
		var extra []string
		if i > 0 {
			extra = append(extra, "--bootstrap", p2pAddr(nodes[rng.IntN(i)]))
		}
		nodes = append(nodes, startNode(t, "regtest", filepath.Join(home, fmt.Sprint("n", i)), extra...))
	}
	waitUntil(t, 60*time.Second, "every node in a gossip mesh", func() bool {
		for _, n := range nodes {
			if len(n.gossip.TopicPeers()) == 0 {
				return false
			}
		}
		return true
	})

	ctx := context.Background()
	var mined []dag.Hash
	for i := range 12 {
		n := nodes[rng.IntN(len(nodes))]
		hs, err := n.miner.Generate(ctx, 1+i%2)
		if err != nil {
			t.Fatal(err)
		}
		mined = append(mined, hs...)
	}
	waitUntil(t, 60*time.Second, "every block on every node", func() bool {
		for _, n := range nodes {
			for _, h := range mined {
				if !n.dag.HaveBlock(h) {
					return false
				}
			}
		}
		return true
	})
	// Everyone converges on one DAG.
	waitUntil(t, 30*time.Second, "identical tips everywhere", func() bool {
		want := nodes[0].dag.Status()
		for _, n := range nodes[1:] {
			st := n.dag.Status()
			if st.Count != want.Count || fmt.Sprint(st.Tips) != fmt.Sprint(want.Tips) {
				return false
			}
		}
		return true
	})

	// A simnet node that dials in is refused and never gets a block.
	other := startNode(t, "simnet", filepath.Join(home, "other"), "--nodht")
	target := nodes[0]
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = other.host.Connect(cctx, peer.AddrInfo{ID: target.host.ID(), Addrs: target.host.Addrs()})
	// Whichever side finishes its status exchange first bans the other and
	// closes the connection; it never comes back.
	banned := func() bool {
		return target.tracker.IsBanned(other.host.ID()) || other.tracker.IsBanned(target.host.ID())
	}
	waitUntil(t, 30*time.Second, "the networks to refuse each other", func() bool {
		return banned() && target.host.Network().Connectedness(other.host.ID()) != network.Connected
	})
	cctx2, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	_ = other.host.Connect(cctx2, peer.AddrInfo{ID: target.host.ID(), Addrs: target.host.Addrs()})
	waitUntil(t, 10*time.Second, "the second attempt to be refused too", func() bool {
		return target.host.Network().Connectedness(other.host.ID()) != network.Connected
	})
	if other.dag.Count() != 1 {
		t.Fatalf("the simnet node got %d blocks", other.dag.Count()-1)
	}
}

// TestLateNodeJoinsAndSyncs: a node that starts after the network has
// mined syncs the whole DAG from its bootstrap peer and then follows gossip.
func TestLateNodeJoinsAndSyncs(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	a := startNode(t, "regtest", filepath.Join(home, "a"))
	b := startNode(t, "regtest", filepath.Join(home, "b"), "--bootstrap", p2pAddr(a))
	ctx := context.Background()
	if _, err := a.miner.Generate(ctx, 200); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "b to follow a", func() bool { return b.dag.Count() == a.dag.Count() })
	late := startNode(t, "regtest", filepath.Join(home, "late"), "--bootstrap", p2pAddr(b))
	waitUntil(t, 60*time.Second, "the late node to sync", func() bool { return late.dag.Count() == a.dag.Count() })
	hs, err := late.miner.Generate(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "the late node's blocks to reach a", func() bool {
		for _, h := range hs {
			if !a.dag.HaveBlock(h) {
				return false
			}
		}
		return true
	})
}
