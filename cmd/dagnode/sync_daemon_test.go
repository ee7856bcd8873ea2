package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/syncproto"
)

// Sync with real dagnode processes and default flags (ports, data
// directories, --network regtest, --nomdns and --nonat only).

// dagTips is getdagtips' result, tips sorted.
type dagTips struct {
	Tips     []string `json:"tips"`
	BlkCount int      `json:"blkcount"`
}

func (p *proc) tips() (dagTips, error) {
	var dt dagTips
	err := p.call(&dt, "getdagtips")
	slices.Sort(dt.Tips)
	return dt, err
}

// generate mines n blocks on p; a generate call may take longer than
// call's RPC timeout.
func (p *proc) generate(n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	raw, err := p.client.Call(ctx, "generate", n)
	if err != nil {
		return fmt.Errorf("%s: generate %d: %w", p.name, n, err)
	}
	var hashes []string
	if err := json.Unmarshal(raw, &hashes); err != nil || len(hashes) != n {
		return fmt.Errorf("%s: generate %d: %d hashes (%v)", p.name, n, len(hashes), err)
	}
	return nil
}

// sameDAG polls until every process reports the same block count and tips,
// and returns them.
func sameDAG(t *testing.T, timeout time.Duration, ps ...*proc) dagTips {
	t.Helper()
	var last []dagTips
	deadline := time.Now().Add(timeout)
	for {
		last = last[:0]
		same := true
		for _, p := range ps {
			dt, err := p.tips()
			if err != nil {
				t.Fatal(err)
			}
			last = append(last, dt)
			same = same && dt.BlkCount == last[0].BlkCount && slices.Equal(dt.Tips, last[0].Tips)
		}
		if same {
			return last[0]
		}
		if time.Now().After(deadline) {
			for i, p := range ps {
				var si map[string]any
				_ = p.call(&si, "getsyncinfo")
				t.Logf("%s: %d blocks, %d tips; getsyncinfo %v", p.name, last[i].BlkCount, len(last[i].Tips), si)
			}
			t.Fatalf("the DAGs differ after %s", timeout)
		}
		time.Sleep(200 * time.Millisecond) // polling processes over RPC
	}
}

// TestDaemonsConvergeAfterConcurrentMining: three linked processes mine
// at once (a wide DAG, gossip racing sync), then one mines alone to 50,000
// blocks (20,000 under -race) while the others follow and a newcomer syncs from a follower; all
// end with the same blocks and tips. This is the scenario where the first
// sync livelocked.
func TestDaemonsConvergeAfterConcurrentMining(t *testing.T) {
	if testing.Short() {
		t.Skip("mines 50,000 blocks in dagnode processes")
	}
	a := startProc(t, "A")
	b := startProc(t, "B", "--bootstrap", a.addr())
	c := startProc(t, "C", "--bootstrap", a.addr())
	ps := []*proc{a, b, c}
	pollUntil(t, 30*time.Second, "the three nodes linked", func() bool {
		return (b.connectedTo(c) || c.connectedTo(b)) && a.connectedTo(b) && a.connectedTo(c)
	})

	// Concurrent miners: each node mines rounds of small batches at once.
	const rounds, batch = 30, 50
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(ps))
	for _, p := range ps {
		wg.Go(func() {
			for range rounds {
				if err := p.generate(batch); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	minedAt := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	dt := sameDAG(t, 2*time.Minute, ps...)
	t.Logf("concurrent mining: %d blocks in %v, %d tips, same on all three %v after mining ended",
		dt.BlkCount, minedAt.Round(time.Millisecond), len(dt.Tips), (time.Since(start) - minedAt).Round(time.Millisecond))
	if want := 1 + len(ps)*rounds*batch; dt.BlkCount != want {
		t.Fatalf("%d blocks, want %d (genesis and every mined block)", dt.BlkCount, want)
	}

	// A newcomer syncs the wide DAG from B while A mines alone, far ahead,
	// and the others follow.
	d := startProc(t, "D", "--bootstrap", b.addr())
	ps = append(ps, d)
	target := 50_001
	if raceEnabled {
		target = 20_001 // 50,001 takes ~6 min under -race on two cores
	}
	start = time.Now()
	for n := dt.BlkCount; n < target; n += 5000 {
		if err := a.generate(min(5000, target-n)); err != nil {
			t.Fatal(err)
		}
	}
	mined := time.Since(start)
	dt = sameDAG(t, 5*time.Minute, ps...)
	t.Logf("lone miner: %d blocks mined in %v; same on all four %v later",
		dt.BlkCount, mined.Round(time.Millisecond), (time.Since(start) - mined).Round(time.Millisecond))
	if dt.BlkCount != target {
		t.Fatalf("%d blocks, want %d", dt.BlkCount, target)
	}
	var si struct {
		Sessions    int `json:"sessions"`
		LastSession *struct {
			Reason string `json:"reason"`
		} `json:"lastsession"`
	}
	if err := d.call(&si, "getsyncinfo"); err != nil {
		t.Fatal(err)
	}
	if si.Sessions == 0 || si.LastSession == nil {
		t.Fatalf("the newcomer ran no sync session: %+v", si)
	}
	t.Logf("newcomer: %d sync sessions, the last ended %q", si.Sessions, si.LastSession.Reason)
}

// lyingDAG claims a far tip and never serves anything: the DAG behind a
// liar's sync manager.
type lyingDAG struct {
	*dag.DAG
	hang <-chan struct{}
}

func (l lyingDAG) Status() dag.Status {
	st := l.DAG.Status()
	st.Tips = []dag.Hash{{0x42}}
	st.MaxHeight, st.Count = 1_000_000, 2_000_000
	st.BlueWork = new(big.Int).Mul(dag.Work(dag.RegTestParams.PowLimitBits), big.NewInt(1<<40))
	return st
}

func (l lyingDAG) NotInPast([]dag.Hash, int) ([]dag.HashHeight, bool) {
	<-l.hang
	return nil, false
}

func (l lyingDAG) BlockBytes(ctx context.Context, _ dag.Hash) ([]byte, error) {
	select {
	case <-l.hang:
	case <-ctx.Done():
	}
	return nil, dag.ErrUnknownBlock
}

// startLiar runs, in this process, a regtest dagnode peer whose status
// claims a tip a million heights ahead and which never answers getblocks
// or getdata, connected to each of to.
func startLiar(t *testing.T, to ...*proc) peer.ID {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(),
		libp2p.ProtocolVersion("/dagnode/regtest"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := dag.Open(context.Background(), dssync.MutexWrap(ds.NewMapDatastore()), dag.RegTestParams, dag.WithLogger(testLog()))
	if err != nil {
		t.Fatal(err)
	}
	hang := make(chan struct{})
	m, err := syncproto.New(syncproto.Config{Host: h, DAG: lyingDAG{d, hang}, Peers: noPeers{}, Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(hang); m.Close(); h.Close() })
	connectProcs(t, h, "liar", to...)
	return h.ID()
}

// TestDaemonFollowsMinerBesideALiar: B follows miner A while a peer claims
// a far tip and never serves it. B keeps accepting A's blocks (never more
// than a second's worth behind) and the liar is penalised for the claim it
// did not serve and backed off.
func TestDaemonFollowsMinerBesideALiar(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dagnode processes")
	}
	a := startProc(t, "A")
	b := startProc(t, "B", "--bootstrap", a.addr())
	pollUntil(t, 30*time.Second, "B connected to A", func() bool { return b.connectedTo(a) })
	liar := startLiar(t, b)

	// A mines 20 blocks a second for longer than a stall takes.
	const interval = 50 * time.Millisecond
	worst := 0
	var count int
	deadline := time.Now().Add(syncproto.DefaultStallTimeout + 5*time.Second)
	for time.Now().Before(deadline) {
		if err := a.generate(1); err != nil {
			t.Fatal(err)
		}
		mined, err := a.tips()
		if err != nil {
			t.Fatal(err)
		}
		if err := b.call(&count, "getblockcount"); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, mined.BlkCount-count)
		time.Sleep(interval) // the miner's block interval
	}
	dt := sameDAG(t, 5*time.Second, a, b)
	t.Logf("B followed A to %d blocks; the greatest lag seen was %d blocks", dt.BlkCount, worst)
	if limit := int(time.Second / interval); worst > limit {
		t.Fatalf("B fell %d blocks behind A (more than %d, a second's worth)", worst, limit)
	}

	var peers []struct {
		ID       string `json:"peerid"`
		BanScore int    `json:"banscore"`
	}
	if err := b.call(&peers, "getpeerinfo"); err != nil {
		t.Fatal(err)
	}
	score := -1
	for _, p := range peers {
		if p.ID == liar.String() {
			score = p.BanScore
		}
	}
	var si struct {
		Backoffs []struct {
			Peer     string `json:"peer"`
			Failures int    `json:"failures"`
			Reason   string `json:"reason"`
		} `json:"backoffs"`
	}
	if err := b.call(&si, "getsyncinfo"); err != nil {
		t.Fatal(err)
	}
	t.Logf("liar: ban score %d, backoffs %+v", score, si.Backoffs)
	if score <= 0 {
		t.Fatalf("the liar's ban score is %d, want it penalised", score)
	}
	if !slices.ContainsFunc(si.Backoffs, func(bo struct {
		Peer     string `json:"peer"`
		Failures int    `json:"failures"`
		Reason   string `json:"reason"`
	}) bool {
		return bo.Peer == liar.String() && bo.Failures > 0
	}) {
		t.Fatal("the liar is not in election backoff")
	}
}
