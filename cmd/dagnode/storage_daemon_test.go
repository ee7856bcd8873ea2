package main

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
)

// TestDaemonKilledWhileReceivingCatchesUp: two nodes mine at once while a
// third, with its default flags, receives their blocks by gossip; the third
// is killed (SIGKILL) mid-stream. A peer's blocks are synced to disk up to
// 250 ms after they are committed, so the kill may cost those last 250 ms
// (on regtest, hundreds of blocks), never what it held a second before and
// never the store's consistency: the store verifies, the node restarts on
// it, and sync brings back what was lost, until all three hold the same DAG.
func TestDaemonKilledWhileReceivingCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dagnode processes")
	}
	a := startProc(t, "A", "--generate")
	b := startProc(t, "B", "--generate", "--bootstrap", a.addr())
	c := startProc(t, "C", "--bootstrap", a.addr())
	count := func(p *proc) int {
		var n int
		if err := p.call(&n, "getblockcount"); err != nil {
			return -1
		}
		return n
	}
	pollUntil(t, 2*time.Minute, "C received 200 blocks", func() bool { return count(c) >= 200 })
	// What C holds now must survive a kill a second later: four times the
	// 250 ms within which a peer's committed blocks reach the disk (the
	// property under test, not a wait for an event).
	durable := count(c)
	time.Sleep(time.Second)
	before := count(c)
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.done

	// The store a kill left behind is a consistent DAG.
	store, err := dag.OpenPebbleStore(filepath.Join(c.datadir, storeDir))
	if err != nil {
		t.Fatal(err)
	}
	d, err := dag.Open(context.Background(), store, dag.RegTestParams)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	if err := d.Verify(context.Background()); err != nil {
		store.Close()
		t.Fatalf("store after SIGKILL: %v", err)
	}
	kept := d.Count()
	store.Close()
	t.Logf("C held %d blocks a second before the kill and %d a moment before it; its store kept %d", durable, before, kept)
	if kept < durable {
		t.Fatalf("the store kept %d blocks, C held %d a second before the kill", kept, durable)
	}

	c = startProcIn(t, "C", c.datadir, "--bootstrap", a.addr())
	var wg sync.WaitGroup
	for _, p := range []*proc{a, b} {
		wg.Go(func() {
			if err := p.call(nil, "setgenerate", false); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	dt := sameDAG(t, time.Minute, a, b, c)
	if dt.BlkCount < before {
		t.Fatalf("%d blocks after the restart, C had %d before the kill", dt.BlkCount, before)
	}
}
