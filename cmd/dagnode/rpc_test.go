package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
	"github.com/dagnode/dagnode/host"
	"github.com/dagnode/dagnode/rpc"
)

func rpcClient(t *testing.T, n *node) *rpc.Client {
	t.Helper()
	user, pass, err := rpc.ReadCookie(filepath.Join(n.cfg.DataDir, cookieFile))
	if err != nil {
		t.Fatal(err)
	}
	return rpc.NewClient(n.rpc.Addrs()[0].String(), user, pass)
}

// call makes one call and decodes its result into a value of type T.
func call[T any](t *testing.T, c *rpc.Client, method string, params ...any) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	raw, err := c.Call(ctx, method, params...)
	if err != nil {
		t.Fatalf("%s %v: %v", method, params, err)
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: decoding %s: %v", method, raw, err)
	}
	return v
}

type obj = map[string]any

// TestRPCAgainstRunningNodes calls every method over real HTTP against a
// node of a two-node network.
func TestRPCAgainstRunningNodes(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	a := startNode(t, "regtest", filepath.Join(home, "a"), "--metrics", "127.0.0.1:0")
	b := startNode(t, "regtest", filepath.Join(home, "b"), "--bootstrap", p2pAddr(a))
	waitUntil(t, 30*time.Second, "b's status on a", func() bool {
		p, ok := a.tracker.Peer(b.host.ID())
		return ok && p.Status != nil
	})
	c := rpcClient(t, a)

	// Control.
	if help := call[string](t, c, "help"); !strings.Contains(help, "getblockmetrics") {
		t.Fatalf("help does not list getblockmetrics: %q", help)
	}
	call[obj](t, c, "version")
	if info := call[obj](t, c, "getinfo"); info["connections"].(float64) < 1 {
		t.Fatalf("getinfo: %v", info)
	}
	call[float64](t, c, "uptime")

	// Mining: generate 5, then the metrics show exactly those 5.
	hashes := call[[]string](t, c, "generate", 5)
	if len(hashes) != 5 {
		t.Fatalf("generate 5 returned %d hashes", len(hashes))
	}
	bm := call[obj](t, c, "getblockmetrics")
	if bm["blkgencount"].(float64) != 5 || len(bm["blkhashes"].([]any)) != 5 || len(bm["blkgentimes"].([]any)) != 5 {
		t.Fatalf("getblockmetrics after generate 5: %v", bm)
	}
	for _, h := range bm["blkhashes"].([]any) {
		hash, err := dag.ParseHash(h.(string))
		if err != nil || !a.dag.HaveBlock(hash) || !slices.Contains(hashes, h.(string)) {
			t.Fatalf("blkhashes entry %v is not a generated block in the DAG", h)
		}
	}
	if n := call[int](t, c, "getblockcount"); n != 6 {
		t.Fatalf("getblockcount %d, want 6", n)
	}
	if at1 := call[[]string](t, c, "getblockhash", 1); len(at1) == 0 {
		t.Fatal("getblockhash 1: no blocks")
	}
	blk := call[obj](t, c, "getblock", hashes[4])
	if blk["hash"] != hashes[4] {
		t.Fatalf("getblock: %v", blk)
	}
	if raw := call[string](t, c, "getblock", hashes[4], false); len(raw) < 100 {
		t.Fatalf("getblock hex: %q", raw)
	}
	call[obj](t, c, "getblockheader", hashes[4])
	if tips := call[obj](t, c, "getdagtips"); len(tips["tips"].([]any)) == 0 || tips["blkcount"].(float64) != 6 {
		t.Fatalf("getdagtips: %v", tips)
	}
	call[obj](t, c, "getbestblock")
	if dot := call[obj](t, c, "renderdag", 3); !strings.Contains(fmt.Sprint(dot["dot"]), "digraph") {
		t.Fatalf("renderdag: %q", dot)
	}
	call[obj](t, c, "getmininginfo")
	call[float64](t, c, "getdifficulty")
	if err := func() error { _, err := c.Call(context.Background(), "setgenerate", true, 1); return err }(); err != nil {
		t.Fatal(err)
	}
	if !call[bool](t, c, "getgenerate") {
		t.Fatal("getgenerate false after setgenerate true")
	}
	call[float64](t, c, "gethashespersec")
	if _, err := c.Call(context.Background(), "setgenerate", false); err != nil {
		t.Fatal(err)
	}

	// submitblock: a block built on a's tips reaches b as well.
	tmpl := a.dag.Template()
	nb := dagtest.MakeBlock(dag.RegTestParams, tmpl.Parents, tmpl.Bits, max(tmpl.MinTimestamp, time.Now().UnixMilli()), []byte("rpc"))
	if _, err := c.Call(context.Background(), "submitblock", fmt.Sprintf("%x", nb.Encode())); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the submitted block on b", func() bool { return b.dag.HaveBlock(nb.Hash()) })

	// Network.
	peers := call[[]obj](t, c, "getpeerinfo")
	bInfo, _ := a.tracker.Peer(b.host.ID())
	if len(peers) == 0 || peers[0]["peerid"] != b.host.ID().String() || peers[0]["id"] != float64(bInfo.Num) || bInfo.Num <= 0 {
		t.Fatalf("getpeerinfo: %v, want id %d", peers, bInfo.Num)
	}
	for _, k := range []string{"syncnode", "banscore", "pingtime", "direction", "transport", "relayed"} {
		if _, ok := peers[0][k]; !ok {
			t.Fatalf("getpeerinfo lacks %q: %v", k, peers[0])
		}
	}
	if n := call[int](t, c, "getconnectioncount"); n < 1 {
		t.Fatalf("getconnectioncount %d", n)
	}
	waitUntil(t, 10*time.Second, "getnettotals to count bytes (the meters tick every second)", func() bool {
		tot := call[obj](t, c, "getnettotals")
		return tot["totalbytesrecv"].(float64) > 0 && tot["totalbytessent"].(float64) > 0
	})
	ni := call[obj](t, c, "getnetworkinfo")
	if ni["peerid"] != a.host.ID().String() || !strings.Contains(fmt.Sprint(ni["listenaddrs"]), "/p2p/"+a.host.ID().String()) {
		t.Fatalf("getnetworkinfo: %v", ni)
	}
	if pings := call[[]obj](t, c, "ping"); len(pings) == 0 {
		t.Fatal("ping: no answers")
	}
	if sync := call[obj](t, c, "getsyncinfo"); sync["syncmode"] != false {
		t.Fatalf("getsyncinfo: %v", sync)
	}
	bAddr := host.FullAddrs(b.host)[0].String()
	if _, err := c.Call(context.Background(), "addnode", bAddr, "add"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(context.Background(), "addnode", bAddr, "remove"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(context.Background(), "addnode", bAddr, "remove"); err == nil {
		t.Fatal("removing a node twice succeeded")
	}
	if _, err := c.Call(context.Background(), "disconnectnode", b.host.ID().String()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(context.Background(), "addnode", bAddr, "onetry"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(context.Background(), "ban", b.host.ID().String(), 60); err != nil {
		t.Fatal(err)
	}
	if banned := call[[]obj](t, c, "listbanned"); len(banned) != 1 || banned[0]["peerid"] != b.host.ID().String() {
		t.Fatalf("listbanned: %v", banned)
	}
	if _, err := c.Call(context.Background(), "unban", b.host.ID().String()); err != nil {
		t.Fatal(err)
	}
	// Bad params get a clear error, not a crash.
	var rerr *rpc.Error
	if _, err := c.Call(context.Background(), "getblockhash", "high"); !errors.As(err, &rerr) || rerr.Code != -32602 {
		t.Fatalf("bad param type: %v", err)
	}
	// stop is not wired in in-process nodes.
	if _, err := c.Call(context.Background(), "stop"); err == nil {
		t.Fatal("stop without a stop function succeeded")
	}

	// Wrong credentials.
	bad := rpc.NewClient(a.rpc.Addrs()[0].String(), "__cookie__", "wrong")
	if _, err := bad.Call(context.Background(), "getblockcount"); !errors.Is(err, rpc.ErrUnauthorized) {
		t.Fatalf("wrong password: %v", err)
	}

	// The command-line client.
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"rpc", "--network", "regtest", "--datadir", a.cfg.DataDir,
		"--rpcserver", a.rpc.Addrs()[0].String(), "getblockcount"}, &out, &errb)
	if code != exitOK || strings.TrimSpace(out.String()) != fmt.Sprint(a.dag.Count()) {
		t.Fatalf("dagnode rpc getblockcount: code %d, out %q, err %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	code = run(context.Background(), []string{"rpc", "--network", "regtest", "--datadir", a.cfg.DataDir,
		"--rpcserver", a.rpc.Addrs()[0].String(), "getblock", strings.Repeat("0", 64)}, &out, &errb)
	if code == exitOK || !strings.Contains(errb.String(), "error -5") {
		t.Fatalf("dagnode rpc of an unknown block: code %d, err %q", code, errb.String())
	}

	// Prometheus: dagnode's families and libp2p's in one scrape.
	resp, err := http.Get("http://" + a.metSrv.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, fam := range []string{"dagnode_dag_blocks", "dagnode_blocks_accepted_total", "dagnode_gossip_messages_total", "dagnode_peers", "libp2p_swarm_", "libp2p_identify_", "libp2p_rcmgr_"} {
		if !bytes.Contains(body, []byte(fam)) {
			t.Errorf("scrape lacks %s", fam)
		}
	}
	// No file system path of this machine in any label.
	wd, _ := os.Getwd()
	for _, dir := range []string{wd, runtime.GOROOT(), os.Getenv("HOME"), a.cfg.DataDir, filepath.Dir(os.Args[0])} {
		if len(dir) > 1 && bytes.Contains(body, []byte(`"`+dir)) {
			t.Errorf("a metric label holds the path %s", dir)
		}
	}
}
