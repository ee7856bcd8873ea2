package netbench

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagnode/dagnode/rpc"
)

var (
	logTimeRe   = regexp.MustCompile(`^time=(\S+) `)
	logHashRe   = regexp.MustCompile(` hash=([0-9a-f]{64})`)
	rpcListenRe = regexp.MustCompile(`msg="rpc server listening" addrs="?\[([0-9.:]+)\]`)
)

// dnode is one dagnode process.
type dnode struct {
	*proc
	datadir string
	addr    string // its TCP multiaddr on the bed, with /p2p/ID
	peerID  string
	client  *rpc.Client
	rpcAddr chan string // the RPC address, once logged
}

// call calls method and decodes the result into out (if not nil).
func (d *dnode) call(timeout time.Duration, out any, method string, params ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	raw, err := d.client.Call(ctx, method, params...)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", d.name, method, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s: %s: %w", d.name, method, err)
		}
	}
	return nil
}

// logTime parses a slog text line's time.
func logTime(line string) (time.Time, bool) {
	m := logTimeRe.FindStringSubmatch(line)
	if m == nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, m[1])
	return t, err == nil
}

// startDagnodes starts one dagnode per node, in order, each bootstrapping
// from its earlier nodes once they listen, and waits for every RPC server.
func startDagnodes(nw *network, arr *arrivals) []*dnode {
	tb := nw.tb
	tb.Helper()
	nodes := make([]*dnode, len(nw.hosts))
	for i, h := range nw.hosts {
		d := &dnode{datadir: filepath.Join(tb.TempDir(), "dagnode")}
		listenRe := regexp.MustCompile(`/ip4/` + regexp.QuoteMeta(h.IP().String()) + `/tcp/\d+/p2p/\w+`)
		addr, rpcAddr := make(chan string, 1), make(chan string, 1)
		onLine := func(line string) {
			switch {
			case strings.Contains(line, `msg="block accepted"`), strings.Contains(line, `msg="block published"`):
				t, ok1 := logTime(line)
				m := logHashRe.FindStringSubmatch(line)
				if !ok1 || m == nil {
					return
				}
				if strings.Contains(line, `msg="block accepted"`) {
					arr.arrive(i, m[1], t)
				} else {
					arr.publish(i, m[1], t)
				}
			case strings.Contains(line, "msg=listening "):
				if a := listenRe.FindString(line); a != "" {
					select {
					case addr <- a:
					default:
					}
				}
			case strings.Contains(line, `msg="rpc server listening"`):
				if m := rpcListenRe.FindStringSubmatch(line); m != nil {
					select {
					case rpcAddr <- m[1]:
					default:
					}
				}
			}
		}
		args := []string{"--network", "regtest", "--datadir", d.datadir, "--nomdns", "--loglevel", "debug"}
		for _, j := range nw.boot[i] {
			args = append(args, "--bootstrap", nodes[j].addr)
		}
		d.proc = nw.start(i, fmt.Sprintf("dagnode-n%02d", i), bins.dagnode, args, false, onLine)
		select {
		case d.addr = <-addr:
			d.peerID = d.addr[strings.LastIndex(d.addr, "/")+1:]
		case <-d.done:
			d.dumpLog(tb, 40)
			tb.Fatalf("%s exited before listening", d.name)
		case <-time.After(30 * time.Second):
			d.dumpLog(tb, 40)
			tb.Fatalf("%s: no listening address on %s after 30 s", d.name, h.IP())
		}
		d.rpcAddr = rpcAddr
		nodes[i] = d
	}
	for i, d := range nodes { // RPC servers listen a moment after the host
		select {
		case a := <-d.rpcAddr:
			user, pass, err := rpc.ReadCookie(filepath.Join(d.datadir, ".cookie"))
			if err != nil {
				tb.Fatalf("%s: %v", d.name, err)
			}
			d.client = rpc.NewClient(a, user, pass)
			d.client.HTTPClient = nw.hosts[i].HTTPClient()
		case <-d.done:
			tb.Fatalf("%s exited before its RPC server listened", d.name)
		case <-time.After(30 * time.Second):
			tb.Fatalf("%s: no RPC server after 30 s", d.name)
		}
	}
	return nodes
}

// dagnodeRun is what the dagnode run measured.
type dagnodeRun struct {
	result
	// graph is the connection graph when mining started, for the bare run.
	graph [][]int
	// size is the mean encoded block size.
	size int
}

// runDagnode starts the nodes, waits for them to connect and mines one block
// every interval at each node of order in turn.
func runDagnode(nw *network, order []int, interval time.Duration) dagnodeRun {
	tb := nw.tb
	tb.Helper()
	n := len(nw.hosts)
	arr := newArrivals(n)
	began := time.Now()
	nodes := startDagnodes(nw, arr)
	tb.Logf("dagnode: %d nodes started in %v", n, time.Since(began).Round(time.Millisecond))

	// Connected, then a first block everywhere: the gossip meshes work.
	waitFor(tb, 60*time.Second, "every dagnode has a peer", func() (bool, string) {
		var lonely []string
		for _, d := range nodes {
			var c int
			if err := d.call(5*time.Second, &c, "getconnectioncount"); err != nil || c == 0 {
				lonely = append(lonely, d.name)
			}
		}
		return len(lonely) == 0, fmt.Sprint("without peers: ", lonely)
	})
	warm := generate(tb, nodes[0])
	if m := arr.waitAll([]string{warm}, []int{0}, 60*time.Second); len(m) > 0 {
		tb.Fatalf("dagnode: the warm-up block reached not every node in 60 s: %v", m)
	}

	run := dagnodeRun{result: result{name: "dagnode", procs: procsOf(nodes)}}
	run.graph = undirected(dagnodeGraph(tb, nodes))
	run.degree = meanDegree(run.graph)
	time.Sleep(settle)
	run.start(nw)
	ids, fallback := mine(tb, nodes, order, interval)
	if m := arr.waitAll(ids, order, arrivalTimeout); len(m) > 0 {
		tb.Errorf("dagnode: %d block arrivals missing %v after the last block: %v", len(m), arrivalTimeout, head(m, 20))
	}
	run.finish(nw, arr, ids, order, fallback)
	run.degreeAfter = meanDegree(dagnodeGraph(tb, nodes))

	var total int
	for _, id := range ids {
		var b struct {
			Size int `json:"size"`
		}
		if err := nodes[0].call(5*time.Second, &b, "getblock", id, true); err != nil {
			tb.Fatal(err)
		}
		total += b.Size
	}
	run.size = total / len(ids)
	for _, d := range nodes {
		d.stop()
	}
	return run
}

// generate mines one block at d and returns its hash.
func generate(tb testing.TB, d *dnode) string {
	var hashes []string
	if err := d.call(time.Minute, &hashes, "generate", 1); err != nil || len(hashes) != 1 {
		tb.Fatalf("%s: generate 1: %v %v", d.name, hashes, err)
	}
	return hashes[0]
}

// mine calls generate 1 at order[k] at start + k*interval (each call in its
// own goroutine, so a slow one shifts no later block) and returns the hashes
// in order, with the time each call returned.
func mine(tb testing.TB, nodes []*dnode, order []int, interval time.Duration) ([]string, map[string]time.Time) {
	ids := make([]string, len(order))
	returned := make([]time.Time, len(order))
	errs := make([]error, len(order))
	start := time.Now()
	var wg sync.WaitGroup
	for k, i := range order {
		time.Sleep(time.Until(start.Add(time.Duration(k) * interval)))
		wg.Go(func() {
			var hashes []string
			if err := nodes[i].call(time.Minute, &hashes, "generate", 1); err != nil || len(hashes) != 1 {
				errs[k] = fmt.Errorf("%s: generate 1: %v %v", nodes[i].name, hashes, err)
				return
			}
			ids[k], returned[k] = hashes[0], time.Now()
		})
	}
	wg.Wait()
	fallback := map[string]time.Time{}
	for k, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
		fallback[ids[k]] = returned[k]
	}
	return ids, fallback
}

// dagnodeGraph returns each node's connected peers (as node indexes), by
// getpeerinfo.
func dagnodeGraph(tb testing.TB, nodes []*dnode) [][]int {
	index := map[string]int{}
	for i, d := range nodes {
		index[d.peerID] = i
	}
	g := make([][]int, len(nodes))
	transports := map[string]int{}
	defer func() { tb.Logf("dagnode: connections by transport (each side counted): %v", transports) }()
	for i, d := range nodes {
		var peers []struct {
			PeerID    string `json:"peerid"`
			Transport string `json:"transport"`
		}
		if err := d.call(10*time.Second, &peers, "getpeerinfo"); err != nil {
			tb.Fatal(err)
		}
		for _, p := range peers {
			if j, ok := index[p.PeerID]; ok {
				g[i] = append(g[i], j)
				transports[p.Transport]++
			}
		}
	}
	return g
}

// undirected returns g with every edge in both directions, once.
func undirected(g [][]int) [][]int {
	set := make([]map[int]bool, len(g))
	for i := range g {
		set[i] = map[int]bool{}
	}
	for i, ps := range g {
		for _, j := range ps {
			if j != i {
				set[i][j], set[j][i] = true, true
			}
		}
	}
	u := make([][]int, len(g))
	for i := range set {
		for j := range set[i] {
			u[i] = append(u[i], j)
		}
		slices.Sort(u[i])
	}
	return u
}

func procsOf(nodes []*dnode) []*proc {
	ps := make([]*proc, len(nodes))
	for i, d := range nodes {
		ps[i] = d.proc
	}
	return ps
}

// waitFor polls cond until it holds or timeout passes (then fails tb with
// cond's last description).
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, desc := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not after %v: %s", what, timeout, desc)
		}
		time.Sleep(200 * time.Millisecond) // polling processes
	}
}

func head(s []string, n int) []string { return s[:min(n, len(s))] }
