package netbench

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// barePort is where bareps listens in every namespace.
const barePort = 4001

// bnode is one bareps process.
type bnode struct {
	*proc
	peerID peer.ID
	mu     sync.Mutex
	cmdMu  sync.Mutex // one command at a time
	conns  int        // from the last "peers" line
	topic  int
	quic   int
	answer chan struct{}
}

// send writes one command line to the process.
func (b *bnode) send(tb testing.TB, cmd string) {
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	if _, err := fmt.Fprintln(b.proc.stdin, cmd); err != nil {
		tb.Fatalf("%s: %q: %v", b.name, cmd, err)
	}
}

// peers asks the process for its connection and topic peer counts.
func (b *bnode) peers(tb testing.TB) (conns, topic int, ok bool) {
	b.send(tb, "peers")
	select {
	case <-b.answer:
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.conns, b.topic, true
	case <-b.done:
		tb.Fatalf("%s exited", b.name)
	case <-time.After(5 * time.Second):
	}
	return 0, 0, false
}

// startBare starts one bareps per node; node i dials its neighbours in graph
// with lower indexes, so every edge is dialled once.
func startBare(nw *network, graph [][]int, size int, arr *arrivals) []*bnode {
	tb := nw.tb
	tb.Helper()
	dir := tb.TempDir()
	nodes := make([]*bnode, len(nw.hosts))
	keys := make([]string, len(nw.hosts))
	for i := range nodes {
		priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		raw, err := crypto.MarshalPrivateKey(priv)
		if err != nil {
			tb.Fatal(err)
		}
		keys[i] = filepath.Join(dir, fmt.Sprintf("n%02d.key", i))
		if err := os.WriteFile(keys[i], raw, 0o600); err != nil {
			tb.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(priv)
		if err != nil {
			tb.Fatal(err)
		}
		nodes[i] = &bnode{peerID: id, answer: make(chan struct{}, 1)}
	}
	for i, b := range nodes {
		args := []string{"--key", keys[i], "--size", strconv.Itoa(size)}
		for _, j := range graph[i] {
			if j < i {
				// Both transports, as a dagnode learns a peer's addresses.
				args = append(args,
					"--peer", fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", nw.hosts[j].IP(), barePort, nodes[j].peerID),
					"--peer", fmt.Sprintf("/ip4/%s/udp/%d/quic-v1/p2p/%s", nw.hosts[j].IP(), barePort, nodes[j].peerID))
			}
		}
		onLine := func(line string) {
			f := strings.Fields(line)
			switch {
			case len(f) == 3 && (f[0] == "pub" || f[0] == "recv"):
				ns, err := strconv.ParseInt(f[2], 10, 64)
				if err != nil {
					return
				}
				if f[0] == "pub" {
					arr.publish(i, f[1], time.Unix(0, ns))
				} else {
					arr.arrive(i, f[1], time.Unix(0, ns))
				}
			case len(f) == 4 && f[0] == "peers":
				c, _ := strconv.Atoi(f[1])
				t, _ := strconv.Atoi(f[2])
				q, _ := strconv.Atoi(f[3])
				b.mu.Lock()
				b.conns, b.topic, b.quic = c, t, q
				b.mu.Unlock()
				select {
				case b.answer <- struct{}{}:
				default:
				}
			}
		}
		b.proc = nw.start(i, fmt.Sprintf("bareps-n%02d", i), bins.bareps, args, true, onLine)
	}
	return nodes
}

// runBare runs the bare GossipSub processes on graph and publishes a message
// of size bytes every interval at each node of order in turn.
func runBare(nw *network, graph [][]int, size int, order []int, interval time.Duration) result {
	tb := nw.tb
	tb.Helper()
	arr := newArrivals(len(nw.hosts))
	began := time.Now()
	nodes := startBare(nw, graph, size, arr)
	procs := make([]*proc, len(nodes))
	for i, b := range nodes {
		procs[i] = b.proc
	}
	waitFor(tb, 60*time.Second, "every bare node connected to its graph neighbours, with topic peers", func() (bool, string) {
		var short []string
		for i, b := range nodes {
			c, t, ok := b.peers(tb)
			if !ok || c < len(graph[i]) || t == 0 {
				short = append(short, fmt.Sprintf("%s: %d/%d conns, %d topic peers", b.name, c, len(graph[i]), t))
			}
		}
		return len(short) == 0, strings.Join(head(short, 5), "; ")
	})
	tb.Logf("bare: %d nodes connected in %v", len(nodes), time.Since(began).Round(time.Millisecond))
	warm := newID()
	nodes[0].send(tb, "pub "+warm)
	if m := arr.waitAll([]string{warm}, []int{0}, 60*time.Second); len(m) > 0 {
		tb.Fatalf("bare: the warm-up message reached not every node in 60 s: %v", m)
	}

	r := result{name: "bare", procs: procs, degree: meanDegree(graph)}
	time.Sleep(settle)
	r.start(nw)
	ids := make([]string, len(order))
	fallback := map[string]time.Time{}
	start := time.Now()
	for k, i := range order {
		time.Sleep(time.Until(start.Add(time.Duration(k) * interval)))
		ids[k] = newID()
		fallback[ids[k]] = time.Now()
		nodes[i].send(tb, "pub "+ids[k])
	}
	if m := arr.waitAll(ids, order, arrivalTimeout); len(m) > 0 {
		tb.Errorf("bare: %d message arrivals missing %v after the last message: %v", len(m), arrivalTimeout, head(m, 20))
	}
	r.finish(nw, arr, ids, order, fallback)
	var conns, quic int
	for _, b := range nodes {
		c, _, _ := b.peers(tb)
		b.mu.Lock()
		conns, quic = conns+c, quic+b.quic
		b.mu.Unlock()
	}
	r.degreeAfter = float64(conns) / float64(len(nodes))
	tb.Logf("bare: %d of %d connections over QUIC (each side counted)", quic, conns)
	for _, b := range nodes {
		b.stop()
	}
	return r
}

// newID returns a fresh message id, 16 random bytes in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
