package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dagnode/dagnode/metrics"
	"github.com/dagnode/dagnode/rpc"
	"github.com/dagnode/dagnode/ui"
)

// The dashboard in a real browser: a devnet of real dagnode processes
// (the re-executed test binary, as `dagnode devnet` runs them), two of
// them mining at once on regtest, and headless Chromium driven over the
// DevTools protocol (ui_cdp_test.go). The screenshots are kept under
// $DAGNODE_ARTIFACTS when set, in the test's temporary directory
// otherwise.

// uiDevnetNode is one node of a devnet started by a test.
type uiDevnetNode struct {
	*proc
	pid    int
	mining bool
	dir    string
	url    string // the dashboard's URL with its token
}

// startUIDevnet runs `dagnode devnet` with args and returns its nodes as
// its table lists them; the cleanup stops it with SIGINT and checks that
// no node is left.
func startUIDevnet(t *testing.T, args ...string) []*uiDevnetNode {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"devnet", "--dir", t.TempDir()}, args...)...)
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
	var nodes []*uiDevnetNode
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 8 && strings.HasPrefix(f[0], "node") {
			pid, _ := strconv.Atoi(f[1])
			user, pass, err := rpc.ReadCookie(filepath.Join(f[6], cookieFile))
			if err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, &uiDevnetNode{pid: pid, mining: f[2] == "true", dir: f[6], url: f[7],
				proc: &proc{t: t, name: f[0], client: rpc.NewClient(f[5], user, pass), listen: []string{f[4]}}})
		}
		if strings.HasPrefix(sc.Text(), "Ctrl-C") {
			break
		}
	}
	exited := make(chan error, 1)
	go func() {
		_, _ = io.Copy(io.Discard, out)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("devnet exited with %v; stderr: %s", err, stderr.String())
			}
		case <-time.After(devnetStopTimeout + 10*time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("devnet did not stop")
		}
		for _, n := range nodes {
			if err := syscall.Kill(n.pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("node pid %d still there after devnet stopped (%v)", n.pid, err)
			}
		}
	})
	if len(nodes) == 0 {
		t.Fatalf("no devnet table; stderr: %s", stderr.String())
	}
	return nodes
}

// TestUIDashboardInBrowser loads a node's dashboard in headless Chromium
// while two nodes mine: the DAG panel shows the node's blocks and tips, a
// block mined elsewhere appears without a reload, the peers panel lists
// both peers, a click shows a block's details, no console error is
// logged, and the dashboard refuses a browser without the token.
func TestUIDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dagnode processes and a browser")
	}
	b := startBrowser(t)
	nodes := startUIDevnet(t, "--nodes", "3", "--miners", "2", "--network", "regtest")
	if len(nodes) != 3 || !nodes[0].mining || !nodes[1].mining || nodes[2].mining {
		t.Fatalf("devnet nodes %+v", nodes)
	}
	artifacts := os.Getenv("DAGNODE_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	n0 := nodes[0] // a miner: its blocks arrive "mined", its peer's by gossip
	pollUntil(t, 60*time.Second, "node0 connected to both peers", func() bool {
		ps, err := n0.peers()
		return err == nil && len(ps) == 2
	})

	// Unauthenticated: refused, over plain HTTP and in a browser without
	// the token (a context of its own: no cookie).
	u, err := url.Parse(n0.url)
	if err != nil {
		t.Fatal(err)
	}
	origin := u.Scheme + "://" + u.Host
	for _, path := range []string{"/", "/events", "/api/snapshot", "/app.js"} {
		resp, err := http.Get(origin + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(body), "blocks") {
			t.Errorf("GET %s without credentials: %d %q", path, resp.StatusCode, body)
		}
	}
	anon := b.newPage(true, false)
	anon.cancelAuthPrompts()
	anon.navigate(origin + "/")
	var anonState struct {
		Text string
		SVG  bool
	}
	pollUntil(t, 10*time.Second, "the unauthenticated page", func() bool {
		return anon.eval(`({Text: document.body ? document.body.innerText : "", SVG: !!document.querySelector("#dagsvg")})`, &anonState) == nil &&
			anonState.Text != ""
	})
	if !strings.Contains(anonState.Text, "401") || anonState.SVG {
		t.Errorf("a browser without the token got %q (dashboard drawn: %v)", anonState.Text, anonState.SVG)
	}

	// The dashboard, with the token URL the node logged.
	pg := b.newPage(false, true)
	loaded := time.Now()
	if e := pg.navigate(n0.url); e != "" {
		t.Fatalf("loading %s: %s", n0.url, e)
	}
	var path string
	pollUntil(t, 10*time.Second, "the page's first picture", func() bool {
		var n int
		return pg.eval(`document.querySelectorAll("#dagsvg .block").length`, &n) == nil && n > 0
	})
	pg.mustEval(`location.pathname + location.search`, &path)
	if path != "/" {
		t.Errorf("the token stays in the address bar: %q", path)
	}
	var timing struct{ Now, DOMContentLoaded float64 }
	pg.mustEval(`({Now: performance.now(), DOMContentLoaded: performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd})`, &timing)
	t.Logf("first picture %v after navigating (page clock: DOM ready at %.0f ms, picture by %.0f ms)",
		time.Since(loaded).Round(time.Millisecond), timing.DOMContentLoaded, timing.Now)
	// A marker that a reload would wipe.
	pg.mustEval(`window.__noReload = 1`, nil)

	// Blocks arrive live while both miners mine.
	var before, after int
	pg.mustEval(`document.querySelectorAll("#dagsvg .block.src-gossip").length`, &before)
	pollUntil(t, 30*time.Second, "blocks by gossip drawn live", func() bool {
		return pg.eval(`new Set(Array.from(document.querySelectorAll("#dagsvg .block.src-gossip")).map(e => e.dataset.hash)).size`, &after) == nil &&
			after > before+5
	})

	// The peers panel lists both peers.
	pollUntil(t, 10*time.Second, "both peers listed", func() bool {
		var ids []string
		return pg.eval(`Array.from(document.querySelectorAll("#peers-table tr.peer")).map(e => e.dataset.peer)`, &ids) == nil &&
			len(ids) == 2 && slices.Contains(ids, nodes[1].id()) && slices.Contains(ids, nodes[2].id())
	})

	// One screenshot per panel, and the whole page, while both mine, with
	// a block's details open and a few seconds of hash rate drawn.
	var clicked string
	pg.mustEval(`(e => { e.dispatchEvent(new MouseEvent("click", {bubbles: true})); return e.dataset.hash; })(document.querySelector("#dagsvg .block.tip"))`, &clicked)
	pollUntil(t, 5*time.Second, "the clicked block's details", func() bool {
		var text string
		return pg.eval(`document.getElementById("blockinfo").innerText`, &text) == nil && strings.Contains(text, clicked) && strings.Contains(text, "nonce")
	})
	pollUntil(t, 10*time.Second, "a few seconds of hash rate drawn", func() bool {
		var n int
		return pg.eval(`(e => e ? e.getAttribute("points").split(" ").length : 0)(document.querySelector("#hash-chart polyline"))`, &n) == nil && n >= 4
	})
	for _, shot := range []struct{ sel, name string }{
		{"", "dashboard.png"}, {"#dag", "dag.png"}, {"#peers", "peers.png"}, {"#sync", "sync.png"}, {"#mining", "mining.png"},
	} {
		p := filepath.Join(artifacts, shot.name)
		if err := pg.screenshot(shot.sel, p); err != nil {
			t.Errorf("screenshot %s: %v", shot.name, err)
			continue
		}
		t.Logf("screenshot %s", p)
	}
	t.Logf("screenshots taken %v after the page loaded", time.Since(loaded).Round(time.Millisecond))

	// Stop mining; once the three agree, the page shows the node's block
	// count and every tip, marked.
	for _, n := range nodes[:2] {
		if err := n.call(nil, "setgenerate", false); err != nil {
			t.Fatal(err)
		}
	}
	ps := []*proc{nodes[0].proc, nodes[1].proc, nodes[2].proc}
	dt := sameDAG(t, 60*time.Second, ps...)
	t.Logf("mining stopped; the three nodes agree on %d blocks %v after the page loaded", dt.BlkCount, time.Since(loaded).Round(time.Millisecond))
	var count int
	if err := n0.call(&count, "getblockcount"); err != nil {
		t.Fatal(err)
	}
	tipsJSON := `["` + strings.Join(dt.Tips, `","`) + `"]`
	var shown struct {
		Count   string
		Missing []string
		Tips    int
	}
	pollUntil(t, 10*time.Second, fmt.Sprintf("the page to show %d blocks and tips %v", count, dt.Tips), func() bool {
		err := pg.eval(`({Count: document.getElementById("h-blocks").textContent.replace(/,/g, ""),
			Missing: `+tipsJSON+`.filter(h => !document.querySelector('#dagsvg .block.tip[data-hash="' + h + '"]')),
			Tips: document.querySelectorAll("#dagsvg .block.tip").length})`, &shown)
		return err == nil && shown.Count == strconv.Itoa(count) && len(shown.Missing) == 0 && shown.Tips == len(dt.Tips)
	})
	t.Logf("the page shows %d blocks and the %d tips of getdagtips (%v after the page loaded)", count, len(dt.Tips), time.Since(loaded).Round(time.Millisecond))

	// The drawn blocks carry the node's GHOSTDAG colours: blue or red and
	// the selected chain, as getdagorder gives them (the page recolours
	// once a second).
	var order orderPage
	if err := n0.call(&order, "getdagorder", 0, 10000); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, b := range order.Blocks {
		c := "red"
		if b.IsBlue {
			c = "blue"
		}
		if b.IsInChain {
			c += " chain"
		}
		want[b.Hash] = c
	}
	var drawn map[string]string
	var wrong []string
	pollUntil(t, 10*time.Second, "the drawn blocks coloured as getdagorder says", func() bool {
		if pg.eval(`Object.fromEntries(Array.from(document.querySelectorAll("#dagsvg .block")).map(e =>
			[e.dataset.hash, (e.classList.contains("blue") ? "blue" : e.classList.contains("red") ? "red" : "none") + (e.classList.contains("chain") ? " chain" : "")]))`, &drawn) != nil {
			return false
		}
		wrong = wrong[:0]
		for h, c := range drawn {
			if w, ok := want[h]; ok && w != c {
				wrong = append(wrong, h[:12]+": "+c+", want "+w)
			}
		}
		return len(drawn) > 0 && len(wrong) == 0
	})
	t.Logf("%d drawn blocks coloured as getdagorder says", len(drawn))

	// A block mined now on node1 appears on node0's page, by gossip,
	// within 2 s, without a reload.
	var hashes []string
	mined := time.Now()
	if err := nodes[1].call(&hashes, "generate", 1); err != nil || len(hashes) != 1 {
		t.Fatalf("generate: %v %v", hashes, err)
	}
	h := hashes[0]
	var seen string
	deadline := mined.Add(2 * time.Second)
	for {
		if err := pg.eval(`(e => e ? e.getAttribute("class") : "")(document.querySelector('#dagsvg [data-hash="`+h+`"]'))`, &seen); err != nil {
			t.Fatal(err)
		}
		if seen != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling the page
	}
	appeared := time.Since(mined)
	if seen == "" {
		t.Fatalf("block %s mined on node1 not on node0's page within 2 s", h)
	}
	t.Logf("block mined on node1 drawn on node0's page %v after generate was called (class %q)", appeared.Round(time.Millisecond), seen)
	if !strings.Contains(seen, "src-gossip") || !strings.Contains(seen, "tip") {
		t.Errorf("the new block's class %q: want src-gossip and tip", seen)
	}
	var marker int
	pg.mustEval(`window.__noReload || 0`, &marker)
	if marker != 1 {
		t.Error("the page was reloaded")
	}

	// A click shows the block's details, from /api/block.
	pg.mustEval(`document.querySelector('#dagsvg [data-hash="`+h+`"]').dispatchEvent(new MouseEvent("click", {bubbles: true}))`, nil)
	pollUntil(t, 5*time.Second, "the block's details", func() bool {
		var text string
		return pg.eval(`document.getElementById("blockinfo").innerText`, &text) == nil &&
			strings.Contains(text, h) && strings.Contains(text, "nonce") && strings.Contains(text, "children")
	})

	if errs := b.errorsSeen(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// The dashboard's arrival sources are the metrics' block sources, which
// the node's accepted hook passes on.
func TestUISourcesMatchMetrics(t *testing.T) {
	if ui.SourceMined != metrics.SourceMined || ui.SourceGossip != metrics.SourceGossip || ui.SourceSync != metrics.SourceSync {
		t.Fatal("ui and metrics name block sources differently")
	}
}
