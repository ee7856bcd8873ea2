package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dagnode/dagnode/metrics"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// newHost builds a loopback host whose libp2p metrics go to m's registry,
// with the services that bring their own collectors switched on.
func newHost(t *testing.T, m *metrics.Manager, extra ...libp2p.Option) host.Host {
	t.Helper()
	opts := append([]libp2p.Option{
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.PrometheusRegisterer(m.Registry()),
		libp2p.EnableRelay(),
		libp2p.EnableRelayService(),
		libp2p.EnableHolePunching(),
		libp2p.EnableNATService(),
		libp2p.EnableAutoNATv2(),
	}, extra...)
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// libp2pFamilies returns the names of the libp2p_* families in m's registry.
func libp2pFamilies(t *testing.T, m *metrics.Manager) []string {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "libp2p_") {
			names = append(names, mf.GetName())
		}
	}
	return names
}

func TestLibp2pMetricsInOneRegistry(t *testing.T) {
	ma, mb := metrics.New(), metrics.New()
	a := newHost(t, ma)
	b := newHost(t, mb, libp2p.EnableAutoRelayWithStaticRelays([]peer.AddrInfo{{ID: a.ID(), Addrs: a.Addrs()}}))
	ma.SetSources(metrics.Sources{Peers: func() []metrics.PeerCount {
		return []metrics.PeerCount{{Direction: "inbound", Transport: "tcp", N: len(a.Network().Peers())}}
	}})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		t.Fatal(err)
	}

	// Identify runs after the connection is up; wait for both sides to count it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if slices.Contains(libp2pFamilies(t, ma), "libp2p_identify_identify_total") &&
			slices.Contains(libp2pFamilies(t, mb), "libp2p_identify_identify_total") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no identify metrics after 10 s; families: %v", libp2pFamilies(t, ma))
		}
		time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline
	}

	srv, err := metrics.NewServer("127.0.0.1:0", ma, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + srv.Addr().String() + metrics.Path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	body := string(raw)

	got := libp2pFamilies(t, ma)
	t.Logf("libp2p families in the scrape (%d): %s", len(got), strings.Join(got, " "))
	t.Logf("libp2p families of the other node: %s", strings.Join(libp2pFamilies(t, mb), " "))
	for _, want := range []string{
		"libp2p_swarm_connections_opened_total",
		"libp2p_swarm_dial_ranking_delay_seconds",
		"libp2p_identify_identify_total",
		"libp2p_rcmgr_connections",
		"libp2p_rcmgr_streams",
		"libp2p_rcmgr_limit",
		"libp2p_eventbus_events_emitted_total",
		"libp2p_relaysvc_status",
		"libp2p_autonat_reachability_status",
		"libp2p_holepunch_outcomes_total",
	} {
		if !strings.Contains(body, "\n# TYPE "+want+" ") {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if !slices.Contains(libp2pFamilies(t, mb), "libp2p_autorelay_status") {
		t.Error("the AutoRelay node's registry lacks libp2p_autorelay_status")
	}
	// dagnode's own families share the registry.
	if !strings.Contains(body, `dagnode_peers{direction="inbound",transport="tcp"} 1`) ||
		!strings.Contains(body, "\ndagnode_blocks_mined_total 0\n") {
		t.Errorf("scrape lacks dagnode families next to libp2p's")
	}
}
