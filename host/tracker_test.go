package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/multiformats/go-multiaddr"
)

// fakeClock is a tracker clock moved by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{&dag.RuleError{Code: dag.ErrBadPoW}, BanThreshold},
		{fmt.Errorf("gossip: %w", &dag.RuleError{Code: dag.ErrWrongNetwork}), BanThreshold},
		{fmt.Errorf("gossip: %w", &dag.RuleError{Code: dag.ErrTimeTooNew}), PenaltyFutureBlock},
		{&dag.MissingParentsError{}, 0},
		{fmt.Errorf("sync: %w", &dag.MissingParentsError{Missing: []dag.Hash{{1}}}), 0},
		{dag.ErrDuplicateBlock, 0},
		{fmt.Errorf("x: %w", dag.ErrDuplicateBlock), 0},
		{context.Canceled, 0},
		{MalformedMessage(&dag.RuleError{Code: dag.ErrMalformedBlock}), PenaltyMalformedMessage},
		{fmt.Errorf("wrapped: %w", OversizeMessage(nil)), PenaltyOversizeMessage},
		{UnrequestedBlock(nil), PenaltyUnrequestedBlock},
		{Stall(context.DeadlineExceeded), PenaltyStall},
		{WrongNetwork(nil), BanThreshold},
		{&Misbehavior{Penalty: -5, Reason: "negative"}, 0},
		{io.EOF, PenaltyDefault},
		{(*Misbehavior)(nil), PenaltyDefault},
		{(*dag.RuleError)(nil), PenaltyDefault},
		{context.DeadlineExceeded, PenaltyDefault},
	}
	for _, c := range cases {
		if got, _ := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestMisbehaviorError(t *testing.T) {
	inner := &dag.RuleError{Code: dag.ErrMalformedBlock, Desc: "short"}
	m := MalformedMessage(inner)
	if m.Error() != "malformed message: "+inner.Error() {
		t.Errorf("Error() = %q", m.Error())
	}
	var re *dag.RuleError
	if !errors.As(m, &re) || re != inner {
		t.Error("Unwrap does not reach the rule error")
	}
	if (*Misbehavior)(nil).Error() == "" || (*Misbehavior)(nil).Unwrap() != nil {
		t.Error("nil Misbehavior")
	}
	if (&Misbehavior{Reason: "r"}).Error() != "r" {
		t.Error("Error() without Err")
	}
}

// TestPenaltiesAccumulate runs the scoring and gating without a host.
func TestPenaltiesAccumulate(t *testing.T) {
	clk := newFakeClock()
	tr := NewTracker(WithClock(clk.Now), WithLogger(testLog), WithBanDuration(time.Hour))
	defer tr.Close()
	p := peer.ID("peer-a")

	for range 4 {
		tr.Penalize(p, MalformedMessage(nil))
	}
	if s := tr.Score(p); s != 4*PenaltyMalformedMessage || tr.IsBanned(p) {
		t.Fatalf("score %d banned %v after 4 malformed messages", s, tr.IsBanned(p))
	}
	clk.Advance(ScoreHalfLife)
	if s := tr.Score(p); s != 2*PenaltyMalformedMessage {
		t.Fatalf("score %d after one half-life, want %d", s, 2*PenaltyMalformedMessage)
	}
	tr.Penalize(p, MalformedMessage(nil))
	tr.Penalize(p, MalformedMessage(nil))
	if tr.IsBanned(p) {
		t.Fatal("banned at score 80")
	}
	tr.Penalize(p, MalformedMessage(nil))
	if !tr.IsBanned(p) {
		t.Fatalf("not banned at score %d", tr.Score(p))
	}
	if tr.Score(p) != 0 {
		t.Errorf("score %d after the ban, want 0", tr.Score(p))
	}
	if b := tr.Banned(); len(b) != 1 || b[0].ID != p || b[0].Reason != "malformed message" || !b[0].Until.Equal(clk.Now().Add(time.Hour)) {
		t.Errorf("Banned() = %+v", b)
	}
	if tr.InterceptPeerDial(p) || tr.InterceptAddrDial(p, nil) || tr.InterceptSecured(network.DirInbound, p, nil) {
		t.Error("gater lets a banned peer through")
	}
	if !tr.InterceptPeerDial("other") || !tr.InterceptSecured(network.DirInbound, "other", nil) {
		t.Error("gater refuses an unbanned peer")
	}
	st := tr.Stats()
	if st.Penalties != 7 || st.Bans != 1 || st.Refused != 2 || st.ActiveBans != 1 || st.Ignored != 0 {
		t.Errorf("Stats() = %+v", st)
	}

	clk.Advance(time.Hour)
	if tr.IsBanned(p) || !tr.InterceptPeerDial(p) || len(tr.Banned()) != 0 {
		t.Error("ban did not expire")
	}

	// An explicit ban keeps the longer of two bans; Unban lifts it.
	tr.Ban(p, 2*time.Hour, "manual")
	tr.Ban(p, time.Minute, "shorter")
	clk.Advance(time.Hour)
	if !tr.IsBanned(p) {
		t.Error("a shorter ban cut a longer one")
	}
	tr.Unban(p)
	if tr.IsBanned(p) {
		t.Error("Unban did not lift the ban")
	}
}

func TestBanOnRuleError(t *testing.T) {
	clk := newFakeClock()
	a := newNode(t, WithClock(clk.Now), WithBanDuration(time.Hour))
	b := newNode(t)
	if err := connect(b.h, a.h, addrInfo(t, a.h, multiaddr.P_TCP)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a tracks b", func() bool { _, ok := a.tr.Peer(b.h.ID()); return ok })

	a.tr.Penalize(b.h.ID(), fmt.Errorf("gossip: %w", &dag.RuleError{Code: dag.ErrBadPoW}))
	if !a.tr.IsBanned(b.h.ID()) {
		t.Fatal("a rule error did not ban")
	}
	waitFor(t, "banned peer disconnected", disconnected(a.h, b.h))
	waitFor(t, "banned peer's state removed", func() bool { _, ok := a.tr.Peer(b.h.ID()); return !ok })
	if st := a.tr.Stats(); st.Bans != 1 || st.Penalties != 1 {
		t.Errorf("Stats() = %+v", st)
	}

	// While banned: a cannot dial b ...
	if err := connect(a.h, b.h, addrInfo(t, b.h, multiaddr.P_TCP)); err == nil {
		t.Error("a dialled a banned peer")
	}
	// ... and b's dials are refused by a, over TCP and QUIC (the dialler may
	// see a short-lived connection: a closes it right after the handshake).
	for _, code := range []int{multiaddr.P_TCP, multiaddr.P_QUIC_V1} {
		refused := a.tr.Stats().Refused
		connect(b.h, a.h, addrInfo(t, a.h, code))
		// A dial that fails before it reaches a (a fault of the loaded
		// machine, seen once in the full suite) is made again.
		waitFor(t, "a refuses b", func() bool {
			if a.tr.Stats().Refused > refused {
				return true
			}
			connect(b.h, a.h, addrInfo(t, a.h, code))
			return a.tr.Stats().Refused > refused
		})
		if a.h.Network().Connectedness(b.h.ID()) != network.NotConnected {
			t.Errorf("transport %d: a accepted a banned peer", code)
		}
		waitFor(t, "b gives up", disconnected(a.h, b.h))
	}

	clk.Advance(time.Hour)
	if a.tr.IsBanned(b.h.ID()) {
		t.Fatal("ban did not expire")
	}
	if err := connect(a.h, b.h, addrInfo(t, b.h, multiaddr.P_TCP)); err != nil {
		t.Fatalf("a cannot dial b after the ban: %v", err)
	}
	waitFor(t, "b tracks a", func() bool { _, ok := b.tr.Peer(a.h.ID()); return ok })
	a.h.Network().ClosePeer(b.h.ID())
	waitFor(t, "disconnect", disconnected(a.h, b.h))
	if err := connect(b.h, a.h, addrInfo(t, a.h, multiaddr.P_QUIC_V1)); err != nil {
		t.Fatalf("b cannot dial a after the ban: %v", err)
	}
	waitFor(t, "a tracks b again", func() bool { _, ok := a.tr.Peer(b.h.ID()); return ok })
}

func TestNoPenalty(t *testing.T) {
	a := newNode(t)
	b := newNode(t)
	if err := connect(b.h, a.h, addrInfo(t, a.h, multiaddr.P_TCP)); err != nil {
		t.Fatal(err)
	}
	errs := []error{
		&dag.MissingParentsError{Block: dag.Hash{1}, Missing: []dag.Hash{{2}}},
		fmt.Errorf("gossip: %w", &dag.MissingParentsError{}),
		dag.ErrDuplicateBlock,
		fmt.Errorf("sync: %w", dag.ErrDuplicateBlock),
	}
	for range 50 { // far more than a ban's worth if any of them counted
		for _, err := range errs {
			a.tr.Penalize(b.h.ID(), err)
		}
	}
	a.tr.Penalize(b.h.ID(), nil)
	if a.tr.IsBanned(b.h.ID()) || a.tr.Score(b.h.ID()) != 0 {
		t.Fatalf("banned %v score %d", a.tr.IsBanned(b.h.ID()), a.tr.Score(b.h.ID()))
	}
	if a.h.Network().Connectedness(b.h.ID()) != network.Connected {
		t.Error("peer disconnected")
	}
	if st := a.tr.Stats(); st.Penalties != 0 || st.Ignored != 200 || st.Bans != 0 {
		t.Errorf("Stats() = %+v", st)
	}
}

const echoProto = "/dagnode-test/echo/1"

func TestPeerInfo(t *testing.T) {
	a := newNode(t, WithPingInterval(100*time.Millisecond))
	b := newNode(t, WithPingInterval(100*time.Millisecond))
	a.h.SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		if _, err := io.Copy(s, io.LimitReader(s, 1<<20)); err != nil {
			s.Reset()
		}
	})
	if err := connect(b.h, a.h, addrInfo(t, a.h, multiaddr.P_QUIC_V1)); err != nil {
		t.Fatal(err)
	}

	var info PeerInfo
	waitFor(t, "identify and a ping", func() bool {
		var ok bool
		info, ok = a.tr.Peer(b.h.ID())
		return ok && info.AgentVersion != "" && info.Latency > 0
	})
	if info.AgentVersion != "dagnode/test" || info.ProtocolVersion != "/dagnode/regtest" {
		t.Errorf("agent %q protocol version %q", info.AgentVersion, info.ProtocolVersion)
	}
	if !slices.Contains(info.Protocols, ping.ID) {
		t.Errorf("protocols %v lack ping", info.Protocols)
	}
	if info.Direction != network.DirInbound || info.Transport != "quic" || info.Relayed {
		t.Errorf("direction %s transport %s relayed %v", info.Direction, info.Transport, info.Relayed)
	}
	if info.ConnectedAt.IsZero() || info.ConnectedAt.After(time.Now()) {
		t.Errorf("ConnectedAt %v", info.ConnectedAt)
	}
	if info.Score != 0 || info.Banned || info.Status != nil || info.SyncPeer {
		t.Errorf("fresh peer: %+v", info)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := b.h.NewStream(ctx, a.h.ID(), echoProto)
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("dagnode"), 5000)
	if _, err := s.Write(msg); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %d bytes, %v", len(got), err)
	}
	s.Close()
	n := int64(len(msg))
	waitFor(t, "bandwidth counted on both sides", func() bool {
		ia, oka := a.tr.Peer(b.h.ID())
		ib, okb := b.tr.Peer(a.h.ID())
		return oka && okb && ia.BytesIn >= n && ia.BytesOut >= n && ib.BytesIn >= n && ib.BytesOut >= n
	})
	if tot := b.tr.BandwidthTotals(); tot.TotalIn < n || tot.TotalOut < n {
		t.Errorf("totals %+v", tot)
	}

	// A peer that comes back gets a new, greater number.
	if info.Num <= 0 {
		t.Fatalf("Num %d, want > 0", info.Num)
	}
	if err := a.tr.Disconnect(b.h.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the tracker to drop the peer", func() bool {
		a.tr.mu.Lock()
		defer a.tr.mu.Unlock()
		return a.tr.peers[b.h.ID()] == nil
	})
	if err := connect(b.h, a.h, addrInfo(t, a.h, multiaddr.P_QUIC_V1)); err != nil {
		t.Fatal(err)
	}
	again, ok := a.tr.Peer(b.h.ID())
	if !ok || again.Num <= info.Num {
		t.Errorf("after reconnecting: Num %d (connected %v), want > %d", again.Num, ok, info.Num)
	}
}

func TestSyncPeerAndProtect(t *testing.T) {
	b := newNode(t)
	tr := NewTracker(WithLogger(testLog))
	tr.Protect(b.h.ID(), "persistent") // before Start: applied by Start
	tr.Protect(b.h.ID(), "dropped")
	if tr.Unprotect(b.h.ID(), "dropped") != true {
		t.Error("Unprotect before Start: persistent tag should remain")
	}
	a := startNode(t, testConfig(t), tr)
	cm := a.h.ConnManager()
	if !cm.IsProtected(b.h.ID(), "persistent") || cm.IsProtected(b.h.ID(), "dropped") {
		t.Error("protections made before Start not applied")
	}

	// Not connected: ignored.
	a.tr.SetSyncPeer(b.h.ID(), true)
	if cm.IsProtected(b.h.ID(), SyncTag) {
		t.Error("a peer that is not connected became sync peer")
	}

	if err := connect(a.h, b.h, addrInfo(t, b.h, multiaddr.P_TCP)); err != nil {
		t.Fatal(err)
	}
	a.tr.SetSyncPeer(b.h.ID(), true)
	if !cm.IsProtected(b.h.ID(), SyncTag) {
		t.Fatal("sync peer not protected")
	}
	st := dag.Status{Genesis: dag.Hash{9}, Tips: []dag.Hash{{1}, {2}}, MaxHeight: 7, Count: 12, BlueWork: big.NewInt(1000), Version: 3}
	a.tr.SetStatus(b.h.ID(), st)
	st.Tips[0] = dag.Hash{0xff} // the tracker keeps its own copy
	st.BlueWork.SetInt64(1)
	info, ok := a.tr.Peer(b.h.ID())
	if !ok || !info.SyncPeer || info.Status == nil {
		t.Fatalf("info %+v", info)
	}
	if info.Status.Tips[0] != (dag.Hash{1}) || info.Status.BlueWork.Int64() != 1000 || info.Status.MaxHeight != 7 {
		t.Errorf("status %+v aliases the caller's", info.Status)
	}
	info.Status.Tips[1] = dag.Hash{0xee} // nor does a snapshot alias the tracker's
	if again, _ := a.tr.Peer(b.h.ID()); again.Status.Tips[1] != (dag.Hash{2}) {
		t.Error("snapshot aliases the tracker's status")
	}

	a.tr.SetSyncPeer(b.h.ID(), false)
	if cm.IsProtected(b.h.ID(), SyncTag) {
		t.Error("former sync peer still protected")
	}
	if info, _ := a.tr.Peer(b.h.ID()); info.SyncPeer {
		t.Error("former sync peer still marked")
	}

	// A disconnecting sync peer loses its state and protection.
	a.tr.SetSyncPeer(b.h.ID(), true)
	a.h.Network().ClosePeer(b.h.ID())
	waitFor(t, "state and sync protection dropped", func() bool {
		a.tr.mu.Lock()
		_, ok := a.tr.peers[b.h.ID()]
		a.tr.mu.Unlock()
		return !ok && !cm.IsProtected(b.h.ID(), SyncTag)
	})
	if !cm.IsProtected(b.h.ID(), "persistent") {
		t.Error("persistent protection lost on disconnect")
	}
}

func TestTrackerLifecycle(t *testing.T) {
	n := newNode(t)
	if err := n.tr.Start(n.h); err == nil {
		t.Error("second Start succeeded")
	}
	if err := n.tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.tr.Close(); err != nil {
		t.Fatal(err)
	}
	tr := NewTracker()
	tr.Close()
	if err := tr.Start(n.h); err == nil {
		t.Error("Start after Close succeeded")
	}
	if ps := NewTracker().Peers(); ps != nil {
		t.Errorf("Peers() before Start = %v", ps)
	}
	if err := NewTracker().Disconnect("x"); err == nil {
		t.Error("Disconnect before Start succeeded")
	}
}

type weighted struct{ n int }

func (w weighted) Error() string { return "weighted offense" }
func (w weighted) Penalty() int  { return w.n }

func TestClassifyForeignPenalty(t *testing.T) {
	if got, _ := classify(fmt.Errorf("wrapped: %w", weighted{n: 34})); got != 34 {
		t.Fatalf("an error stating Penalty() 34 classified as %d", got)
	}
}
