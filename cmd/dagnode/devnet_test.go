package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dagnode/dagnode/rpc"
)

// TestDevnet: `dagnode devnet --nodes 4 --miners 2` starts four nodes that
// converge on one DAG mined by two of them; a node that dies is reported;
// SIGINT stops the devnet and leaves no child process behind.
func TestDevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dagnode processes")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "devnet", "--nodes", "4", "--miners", "2", "--network", "regtest", "--dir", dir)
	cmd.Env = append(os.Environ(), "DAGNODE_TEST_MAIN=1", "HOME="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})

	type devNode struct {
		pid    int
		mining bool
		*proc  // its RPC client (devnet started the process)
	}
	var nodes []devNode
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 8 && strings.HasPrefix(f[0], "node") {
			if !strings.HasPrefix(f[7], "http://127.0.0.1:") || !strings.Contains(f[7], "/?token=") {
				t.Errorf("%s's dashboard URL %q", f[0], f[7])
			}
			pid, _ := strconv.Atoi(f[1])
			user, pass, err := rpc.ReadCookie(filepath.Join(f[6], cookieFile))
			if err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, devNode{pid: pid, mining: f[2] == "true", proc: &proc{t: t, name: f[0], client: rpc.NewClient(f[5], user, pass)}})
		}
		if strings.HasPrefix(sc.Text(), "Ctrl-C") {
			break
		}
	}
	go func() {
		_, _ = io.Copy(io.Discard, out)
		exited <- cmd.Wait()
	}()
	if len(nodes) != 4 || !nodes[0].mining || !nodes[1].mining || nodes[2].mining {
		t.Fatalf("devnet table: %+v; stderr: %s", nodes, stderr.String())
	}
	// Let the two miners mine at once for a while, then stop them.
	pollUntil(t, 60*time.Second, "100 blocks on the last node", func() bool {
		var n int
		return nodes[3].call(&n, "getblockcount") == nil && n >= 100
	})
	for _, n := range nodes[:2] {
		if err := n.call(nil, "setgenerate", false); err != nil {
			t.Fatal(err)
		}
	}
	var ps []*proc
	for _, n := range nodes {
		ps = append(ps, n.proc)
	}
	dt := sameDAG(t, 60*time.Second, ps...)
	t.Logf("four nodes on one DAG of %d blocks", dt.BlkCount)

	// A node that dies is reported.
	if err := syscall.Kill(nodes[3].pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 10*time.Second, "the dead node reported", func() bool {
		return strings.Contains(stderr.String(), "node3 (pid "+strconv.Itoa(nodes[3].pid)+") exited")
	})

	// SIGINT stops every node.
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("devnet exited with %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(devnetStopTimeout + 10*time.Second):
		t.Fatal("devnet did not stop")
	}
	for _, n := range nodes {
		if err := syscall.Kill(n.pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("node pid %d still there after devnet stopped (%v)", n.pid, err)
		}
	}
	if strings.Contains(stderr.String(), "did not stop within") {
		t.Errorf("a node had to be killed: %s", stderr.String())
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
