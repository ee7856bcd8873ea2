package main

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dagnode/dagnode/host"
	"github.com/dagnode/dagnode/syncproto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	dto "github.com/prometheus/client_model/go"
)

// gathered sums the samples of a counter or gauge family in n's registry.
func gathered(t *testing.T, n *node, name string) float64 {
	t.Helper()
	families, err := n.metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += metricValue(m)
		}
	}
	return sum
}

func metricValue(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

// TestRelayedConnectionCarriesNoBlocks: a home node (forced private)
// reserves a slot on a relay (forced public) and a third node reaches it
// only through the relay. Over that link there is no status exchange, no
// GossipSub mesh, and a sync request is refused; every node reports the link
// as relayed. Once a direct connection exists, the peers handshake and mesh.
// (Hole punching itself needs public addresses: the NAT test bed covers it.)
func TestRelayedConnectionCarriesNoBlocks(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	quiet := []string{"--nodht"}
	r := startNode(t, "regtest", filepath.Join(dir, "relay"), append(quiet, "--reachability", "public")...)
	// The relay service starts once r's reachability event is handled; a
	// home node that asks before that is refused and AutoRelay backs off for
	// a long while, so the home node starts after it.
	waitUntil(t, 20*time.Second, "r's relay service", func() bool { return r.netInfo.NetworkInfo().RelayService == "serving" })
	a := startNode(t, "regtest", filepath.Join(dir, "home"), append(quiet, "--reachability", "private", "--relay", p2pAddr(r))...)
	b := startNode(t, "regtest", filepath.Join(dir, "b"), append(quiet, "--reachability", "public")...)

	// On loopback libp2p lists no relay address (it keeps public relay
	// addresses only), so the reservation is read from AutoRelay's metrics and
	// the circuit address is built by hand.
	waitUntil(t, time.Minute, "a relay reservation on r", func() bool {
		return gathered(t, a, "libp2p_autorelay_reservations_opened_total") >= 1
	})
	circuit, err := multiaddr.NewMultiaddr(p2pAddr(r) + "/p2p-circuit")
	if err != nil {
		t.Fatal(err)
	}
	if ra := a.netInfo.NetworkInfo(); ra.Reachability != "private" || ra.RelayService != "idle: reachability private" {
		t.Fatalf("home node info: reachability %q, relay service %q", ra.Reachability, ra.RelayService)
	}
	if ri := r.netInfo.NetworkInfo(); ri.RelayService != "serving" || ri.NATService != "serving" {
		t.Fatalf("relay node services: relay %q, autonat %q", ri.RelayService, ri.NATService)
	}

	// b reaches a through the relay only.
	ai := peer.AddrInfo{ID: a.host.ID(), Addrs: []multiaddr.Multiaddr{circuit}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.host.Connect(ctx, ai); err != nil {
		t.Fatalf("connecting through the relay: %v", err)
	}
	if c := b.host.Network().Connectedness(a.host.ID()); c != network.Limited {
		t.Fatalf("b to a: connectedness %v, want Limited (relayed only)", c)
	}
	waitUntil(t, 10*time.Second, "both sides to report the link as relayed", func() bool {
		pb, okb := b.tracker.Peer(a.host.ID())
		pa, oka := a.tracker.Peer(b.host.ID())
		return okb && oka && pb.Relayed && pa.Relayed && len(pb.Conns) == 1 && pb.Conns[0].Relayed
	})
	if info := b.netInfo.NetworkInfo(); info.RelayedPeers != 1 {
		t.Fatalf("b counts %d relayed peers, want 1", info.RelayedPeers)
	}

	// A sync request forced over the relay is refused, without a penalty.
	reqCtx, reqCancel := context.WithTimeout(network.WithAllowLimitedConn(ctx, "test"), 5*time.Second)
	defer reqCancel()
	if _, err := b.sync.RequestStatus(reqCtx, a.host.ID()); err == nil {
		t.Fatalf("a sync status request over the relay was answered (a refuses with %v)", syncproto.ErrRelayed)
	}
	waitUntil(t, 5*time.Second, "a to count the refused relayed request", func() bool {
		return a.sync.Stats().RelayedRefused == 1
	})
	if p, _ := a.tracker.Peer(b.host.ID()); p.Score != 0 {
		t.Fatalf("b was penalised (%d) for a request its libp2p sent over a relay", p.Score)
	}
	// No status exchange, no mesh over the relay: blocks never cross it.
	if p, _ := b.tracker.Peer(a.host.ID()); p.Status != nil {
		t.Fatal("b exchanged statuses with a over the relay")
	}
	if slices.Contains(b.gossip.MeshPeers(), a.host.ID()) {
		t.Fatal("b meshes with a over the relay")
	}

	// A direct connection: the handshake runs, the peers mesh, and the
	// direct connection is the one shown.
	direct := peer.AddrInfo{ID: a.host.ID(), Addrs: a.host.Network().ListenAddresses()}
	if err := b.host.Connect(network.WithForceDirectDial(ctx, "test"), direct); err != nil {
		t.Fatalf("direct connection: %v", err)
	}
	waitUntil(t, 20*time.Second, "status exchange and mesh over the direct connection", func() bool {
		p, ok := b.tracker.Peer(a.host.ID())
		return ok && !p.Relayed && p.Status != nil && slices.Contains(b.gossip.MeshPeers(), a.host.ID())
	})
	if p, _ := b.tracker.Peer(a.host.ID()); p.Conns[0].Relayed || p.Transport == "relay" {
		t.Fatalf("the direct connection is not shown first: %+v", p.Conns)
	}
	if !slices.ContainsFunc(b.tracker.Peers(), func(p host.PeerInfo) bool { return p.ID == a.host.ID() && !p.Relayed }) {
		t.Fatal("b's peer list does not show a as direct")
	}
}
