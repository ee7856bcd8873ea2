package dag_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

// lockChildEnv names the store directory when the test binary runs as the
// lock-holding child of TestOpenPebbleStoreLockedByOtherProcess.
const lockChildEnv = "DAGNODE_LOCK_CHILD"

// walBlockSize is pebble's WAL block size. Pebble confirms a damaged record
// from a sync chunk in a later block, so the tests damage a log at least
// this far from its end.
const walBlockSize = 32 << 10

// crashImage writes n chained blocks (with payloads, so the log spans several
// WAL blocks) to a new store, copies the store's files while it is still open
// (what a crash leaves behind: every acknowledged block is synced), closes the
// store and returns the copy's directory and the blocks' hashes.
func crashImage(t *testing.T, n int) (string, []dag.Hash) {
	t.Helper()
	ctx := context.Background()
	p := dag.RegTestParams
	dir := t.TempDir()
	d, closeStore := diskDAG(t, dir, p)
	defer closeStore()
	parent := p.GenesisHash
	hashes := make([]dag.Hash, 0, n)
	payload := []byte(strings.Repeat("x", 256))
	for i := range n {
		b := dagtest.MakeBlock(p, []dag.Hash{parent}, p.PowLimitBits, p.GenesisBlock.Header.Timestamp+int64(i)+1, payload)
		if err := d.ProcessBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
		parent = b.Hash()
		hashes = append(hashes, parent)
	}
	img := t.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			t.Fatalf("unexpected non-regular file %s in the store", e.Name())
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(img, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return img, hashes
}

// newestLog returns the path of the highest-numbered WAL file in dir.
func newestLog(t *testing.T, dir string) string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no WAL in %s (%v)", dir, err)
	}
	slices.Sort(logs) // zero-padded numbers: lexical order is numeric order
	return logs[len(logs)-1]
}

func TestOpenPebbleStoreCrashImage(t *testing.T) {
	dir, hashes := crashImage(t, 500)
	d, closeStore := diskDAG(t, dir, dag.RegTestParams)
	defer closeStore()
	if got, want := d.Count(), len(hashes)+1; got != want {
		t.Fatalf("undamaged crash image holds %d blocks, want %d", got, want)
	}
	for _, h := range hashes {
		if !d.HaveBlock(h) {
			t.Fatalf("undamaged crash image lost block %s", h)
		}
	}
}

func TestOpenPebbleStoreDamagedWAL(t *testing.T) {
	dir, _ := crashImage(t, 500)
	wal := newestLog(t, dir)
	data, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 3*walBlockSize {
		t.Fatalf("newest WAL %s has %d bytes, want at least %d to damage it mid-log", wal, len(data), 3*walBlockSize)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(wal, data, 0o600); err != nil {
		t.Fatal(err)
	}

	before := dirFiles(t, dir)
	for i := range 2 { // the second time proves the failed open released the lock
		s, err := dag.OpenPebbleStore(dir)
		if err == nil {
			d, derr := dag.Open(context.Background(), s, dag.RegTestParams)
			count := 0
			if derr == nil {
				count = d.Count()
			}
			s.Close()
			t.Fatalf("open %d: a store with a damaged WAL opened (%d blocks, dag.Open: %v)", i, count, derr)
		}
		if !errors.Is(err, dag.ErrStoreDamaged) || errors.Is(err, dag.ErrStoreLocked) {
			t.Fatalf("open %d: error = %v, want ErrStoreDamaged only", i, err)
		}
		msg := err.Error()
		for _, want := range []string{dir, "damaged", "sync the DAG from peers", "backup"} {
			if !strings.Contains(msg, want) {
				t.Fatalf("open %d: error %q does not contain %q", i, msg, want)
			}
		}
		if strings.Contains(msg, "another dagnode") {
			t.Fatalf("open %d: damage reported as a lock conflict: %q", i, msg)
		}
	}
	if after := dirFiles(t, dir); !maps.Equal(after, before) {
		t.Fatal("a refused open changed the store's files")
	}
}

// dirFiles returns the content of every file in dir but the (empty) LOCK
// file, by name.
func dirFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := make(map[string]string)
	for _, e := range ents {
		if e.Name() == "LOCK" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(data)
	}
	return files
}

// checkLocked fails unless err is the lock-conflict error for dir.
func checkLocked(t *testing.T, err error, dir string) {
	t.Helper()
	if !errors.Is(err, dag.ErrStoreLocked) || errors.Is(err, dag.ErrStoreDamaged) {
		t.Fatalf("error = %v, want ErrStoreLocked only", err)
	}
	for _, want := range []string{dir, "locked", "another dagnode"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not contain %q", err, want)
		}
	}
}

func TestOpenPebbleStoreLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := dag.OpenPebbleStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := dag.OpenPebbleStore(dir)
	if err == nil {
		s2.Close()
		s.Close()
		t.Fatal("a second open of a store in use succeeded")
	}
	checkLocked(t, err, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = dag.OpenPebbleStore(dir)
	if err != nil {
		t.Fatalf("open after the holder closed: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenPebbleStoreLockedByOtherProcess(t *testing.T) {
	if dir := os.Getenv(lockChildEnv); dir != "" {
		lockChild(t, dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenPebbleStoreLockedByOtherProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
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
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "open\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		waited = true
		t.Fatalf("child said %q (%v)\nchild stderr:\n%s", line, err, stderr.String())
	}

	s, err := dag.OpenPebbleStore(dir)
	if err == nil {
		s.Close()
		t.Fatal("opening a store another process holds succeeded")
	}
	checkLocked(t, err, dir)

	_ = stdin.Close() // the child closes its store and exits
	_, _ = io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	waited = true
	if err != nil {
		t.Fatalf("child: %v\nchild stderr:\n%s", err, stderr.String())
	}
	s, err = dag.OpenPebbleStore(dir)
	if err != nil {
		t.Fatalf("open after the other process exited: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// lockChild opens the store in dir, says "open" on stdout and holds the store
// until stdin closes.
func lockChild(t *testing.T, dir string) {
	s, err := dag.OpenPebbleStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("open")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
