package dag_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

// crashAck is a block the child acknowledged; durable unless it was only
// committed (CommitBlocks).
type crashAck struct {
	hash    dag.Hash
	durable bool
}

// crashChildEnv names the store directory when the test binary runs as the
// child of TestCrashConsistency.
const crashChildEnv = "DAGNODE_CRASH_CHILD"

const (
	// crashRounds is how many times the parent kills a child on the same store.
	crashRounds = 4
	// crashChildLifetime bounds a child that nobody kills.
	crashChildLifetime = 60 * time.Second
	// crashSilence is how long the parent waits for the child's next line.
	crashSilence = 30 * time.Second
)

// TestCrashConsistency kills a process writing to the on-disk DAG with SIGKILL
// at random moments, and checks after each kill that the store reopens as a
// consistent DAG holding every block whose ProcessBlock or ProcessBlocks call
// returned nil. A block that CommitBlocks accepted (no sync) may be lost,
// but only with every block committed after it, and never once a later
// ProcessBlock(s) returned: the store keeps a prefix of its log. Each round's
// child continues the DAG the previous one left.
//
// A kill loses the process, not the machine: the page cache survives, so this
// proves that nothing acknowledged is still in the process's buffers and that
// a store cut at a random point reopens consistently, not that the fsyncs
// reach the platter. A kill rarely lands inside one block's write, so it is a
// weak check of a batch's atomicity.
func TestCrashConsistency(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("crash consistency re-executes the test binary and kills it; skipped in -short mode")
	}
	p := dag.RegTestParams
	dir := t.TempDir()
	var acked []dag.Hash // every acknowledged block still stored, over all rounds
	seen := make(map[dag.Hash]bool)
	prevCount := 1
	for round := range crashRounds {
		killAfter := 50 + rand.New(rand.NewPCG(uint64(round), 0xc4a54)).IntN(551)
		got := runCrashChild(t, dir, killAfter)
		lastDurable := -1
		for i, a := range got {
			if seen[a.hash] {
				t.Fatalf("round %d: block %s acknowledged twice", round, a.hash)
			}
			seen[a.hash] = true
			if a.durable {
				lastDurable = i
			}
		}

		ctx := context.Background()
		d, closeStore := diskDAG(t, dir, p)
		if err := d.Verify(ctx); err != nil {
			closeStore()
			t.Fatalf("round %d: after kill: %v", round, err)
		}
		// Committed blocks after the last durable one may be lost, as a
		// suffix of the log.
		lost := 0
		for i, a := range got {
			switch have := d.HaveBlock(a.hash); {
			case i <= lastDurable || (have && lost == 0):
				acked = append(acked, a.hash)
			case have:
				closeStore()
				t.Fatalf("round %d: committed block %s stored after %d earlier commits were lost", round, a.hash, lost)
			default:
				lost++
			}
		}
		for _, h := range acked {
			if !d.HaveBlock(h) {
				closeStore()
				t.Fatalf("round %d: acknowledged block %s lost", round, h)
			}
			b, err := d.Block(ctx, h)
			if err != nil || b.Hash() != h {
				closeStore()
				t.Fatalf("round %d: acknowledged block %s unreadable: %v", round, h, err)
			}
		}
		count := d.Count()
		if count < len(acked)+1 || count < prevCount {
			closeStore()
			t.Fatalf("round %d: %d blocks stored, want at least %d acknowledged + genesis and the %d of the previous round",
				round, count, len(acked), prevCount)
		}
		if round == crashRounds-1 {
			multi := 0
			for _, h := range acked {
				if info, _ := d.BlockInfo(h); len(info.Parents) > 1 {
					multi++
				}
			}
			if multi == 0 {
				t.Errorf("none of %d acknowledged blocks has several parents: the child did not exercise merges", len(acked))
			}
		}
		t.Logf("round %d: killed after %d acknowledgements (%d read in all, %d commits not yet synced lost), %d blocks stored, %d tips, height %d",
			round, killAfter, len(got), lost, count, len(d.Tips()), d.MaxHeight())
		prevCount = count
		closeStore()
	}
}

// runCrashChild runs one child on dir, sends it SIGKILL once it has
// acknowledged killAfter blocks, and returns every block it acknowledged,
// including those it reported between the kill decision and its death.
func runCrashChild(t *testing.T, dir string, killAfter int) []crashAck {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashConsistency$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	var stderr bytes.Buffer // read only after Wait
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	type line struct {
		text string
		err  error // a read error; then the channel closes
	}
	lines := make(chan line, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- line{text: sc.Text()}
		}
		if err := sc.Err(); err != nil {
			lines <- line{err: err}
		}
	}()

	fail := func(format string, args ...any) {
		t.Helper()
		_ = cmd.Process.Kill()
		var rest []string      // a failing child's test output follows on stdout
		for l := range lines { // drain so the reader ends before Wait closes the pipe
			rest = append(rest, l.text)
		}
		_ = cmd.Wait()
		waited = true
		t.Fatalf("%s\nchild stdout after that:\n%s\nchild stderr:\n%s",
			fmt.Sprintf(format, args...), strings.Join(rest, "\n"), stderr.Bytes())
	}

	var got []crashAck
	killed := false
	timer := time.NewTimer(crashSilence)
	defer timer.Stop()
	for eof := false; !eof; {
		select {
		case l, ok := <-lines:
			if !ok {
				eof = true
				break
			}
			if l.err != nil {
				fail("reading the child's output: %v", l.err)
			}
			text, committed := strings.CutPrefix(l.text, "~")
			h, err := dag.ParseHash(text)
			if err != nil {
				fail("after %d acknowledgements the child wrote %q, not a hash", len(got), l.text)
			}
			got = append(got, crashAck{hash: h, durable: !committed})
			if !killed && len(got) >= killAfter {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					fail("killing the child: %v", err)
				}
				killed = true
			}
			timer.Reset(crashSilence)
		case <-timer.C:
			fail("child silent for %s after %d acknowledgements", crashSilence, len(got))
		}
	}
	err = cmd.Wait()
	waited = true
	if !killed {
		t.Fatalf("child ended by itself after %d of %d acknowledgements (%v)\nchild stderr:\n%s", len(got), killAfter, err, stderr.Bytes())
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not ended by SIGKILL: %v\nchild stderr:\n%s", cmd.ProcessState, stderr.Bytes())
	}
	return got
}

// crashChild writes blocks to the DAG in dir until it is killed (or
// crashChildLifetime passes), printing each acknowledged block's hash on its
// own line as soon as the call that accepted it returns.
func crashChild(t *testing.T, dir string) {
	ctx := context.Background()
	p := dag.RegTestParams
	d, closeStore := diskDAG(t, dir, p)
	defer closeStore()

	pid := os.Getpid()
	rng := rand.New(rand.NewPCG(uint64(pid), uint64(time.Now().UnixNano())))
	seq := 0
	newBlock := func(parents []dag.Hash, bits uint32, ts int64) *dag.Block {
		seq++
		return dagtest.MakeBlock(p, parents, bits, ts, fmt.Appendf(nil, "crash child %d block %d", pid, seq))
	}
	ack := func(b *dag.Block, durable bool) {
		// One write per line: a pipe write this small is atomic, so a kill
		// never leaves half a hash. A commit without a sync is marked "~".
		line := b.Hash().String() + "\n"
		if !durable {
			line = "~" + line
		}
		if _, err := os.Stdout.Write([]byte(line)); err != nil {
			t.Fatalf("writing acknowledgement: %v", err)
		}
	}

	deadline := time.Now().Add(crashChildLifetime)
	for time.Now().Before(deadline) {
		tmpl := d.Template()
		ts := max(time.Now().UnixMilli(), tmpl.MinTimestamp)
		switch rng.IntN(3) {
		case 0: // one block, one call, committed without a sync half the time
			b := newBlock(tmpl.Parents, tmpl.Bits, ts)
			durable := rng.IntN(2) == 0
			var err error
			if durable {
				err = d.ProcessBlock(ctx, b)
			} else {
				err = d.CommitBlocks(ctx, []*dag.Block{b})[0]
			}
			if err != nil {
				t.Fatalf("block %s: %v", b.Hash(), err)
			}
			ack(b, durable)
		case 1: // siblings on one template, one call each: the next template merges them
			for range 2 + rng.IntN(3) {
				b := newBlock(tmpl.Parents, tmpl.Bits, ts)
				if err := d.ProcessBlock(ctx, b); err != nil {
					t.Fatalf("block %s: %v", b.Hash(), err)
				}
				ack(b, true)
			}
		case 2: // a batch of 2-8: siblings on the template, then a block merging them, then a chain
			size := 2 + rng.IntN(7)
			width := 1 + rng.IntN(min(size, dag.MaxParents))
			batch := make([]*dag.Block, 0, size)
			var siblings []dag.Hash
			for range width {
				b := newBlock(tmpl.Parents, tmpl.Bits, ts)
				batch = append(batch, b)
				siblings = append(siblings, b.Hash())
			}
			slices.SortFunc(siblings, func(a, b dag.Hash) int { return bytes.Compare(a[:], b[:]) })
			parents := siblings
			for len(batch) < size {
				// Regtest never retargets, so the template's bits hold for
				// blocks on blocks of the same batch.
				b := newBlock(parents, tmpl.Bits, ts)
				batch = append(batch, b)
				parents = []dag.Hash{b.Hash()}
			}
			for i, err := range d.ProcessBlocks(ctx, batch) {
				if err != nil {
					t.Fatalf("batch block %d of %d: %v", i, len(batch), err)
				}
			}
			for _, b := range batch {
				ack(b, true)
			}
		}
	}
}
