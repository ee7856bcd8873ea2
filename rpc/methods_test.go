package rpc

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
	"github.com/dagnode/dagnode/metrics"
	"github.com/dagnode/dagnode/miner"
)

// The node's concrete types satisfy the interfaces directly.
var (
	_ Miner        = (*miner.Miner)(nil)
	_ BlockMetrics = (*metrics.Manager)(nil)
	_ Chain        = (*dag.DAG)(nil)
)

// TestEveryMethodAnswers calls every method of the table once on a fully
// wired server, and fails when a method is added without a case here.
func TestEveryMethodAnswers(t *testing.T) {
	e := startServer(t, nil)
	calls := everyMethodCall(e)
	var names []string
	for _, m := range methodsSorted {
		names = append(names, m.name)
		params, ok := calls[m.name]
		if !ok {
			t.Errorf("method %s has no case in everyMethodCall", m.name)
			continue
		}
		if r := e.call(t, m.name, params...); r.Error != nil {
			t.Errorf("%s %v: %v", m.name, params, r.Error)
		}
	}
	for name := range calls {
		if !slices.Contains(names, name) {
			t.Errorf("case %s is not a method", name)
		}
	}
}

// everyMethodCall gives params that make every method succeed on e (and
// sets e's fake miner up for generate).
func everyMethodCall(e *testEnv) map[string][]any {
	e.miner.hashes = []dag.Hash{dag.RegTestParams.GenesisHash}
	genesis := dag.RegTestParams.GenesisHash.String()
	return map[string][]any{
		"help": nil, "version": nil, "getinfo": nil, "stop": nil, "uptime": nil,
		"getblockcount": nil, "getblockhash": {0}, "getblock": {genesis}, "getblockheader": {genesis, false},
		"getdagtips": nil, "getbestblock": nil, "renderdag": {3}, "submitblock": {hex.EncodeToString(e.chain.rest[0].Encode())},
		"getblockmetrics": nil, "generate": {1}, "setgenerate": {false}, "getgenerate": nil, "gethashespersec": nil,
		"getmininginfo": nil, "getdifficulty": nil,
		"getpeerinfo": nil, "getconnectioncount": nil, "getnettotals": nil, "getnetworkinfo": nil,
		"addnode": {"/ip4/10.0.0.3/tcp/9700/p2p/12D3KooWC", "onetry"}, "disconnectnode": {"12D3KooWPeerB"},
		"ban": {"12D3KooWPeerB"}, "unban": {"12D3KooWPeerB"}, "listbanned": nil, "ping": nil,
		"getsyncinfo": nil, "getblockdaginfo": nil, "getdagorder": {0, 5}, "getdagcoloring": nil,
	}
}

func TestNotAvailable(t *testing.T) {
	e := startServer(t, func(c *Config) {
		c.Submitter, c.Miner, c.Metrics, c.Peers, c.Net, c.Sync, c.Stop = nil, nil, nil, nil, nil, nil, nil
	})
	for _, m := range methodsSorted {
		if m.needs == partNone {
			continue
		}
		args := map[string][]any{
			"submitblock": {"00"}, "generate": {1}, "setgenerate": {true}, "addnode": {"x", "add"},
			"disconnectnode": {"x"}, "ban": {"x"}, "unban": {"x"},
		}[m.name]
		err := e.fail(t, CodeMisc, m.name, args...)
		if !strings.Contains(err.Message, m.name+" is not available: this node runs without") {
			t.Errorf("%s: %q", m.name, err.Message)
		}
	}
	// Methods that only read the DAG still answer; getmininginfo without a miner too.
	var mi MiningInfoResult
	e.ok(t, &mi, "getmininginfo")
	if mi.Generate || mi.HashesPerSec != 0 || mi.Blocks == 0 {
		t.Errorf("getmininginfo without miner: %+v", mi)
	}
	var info InfoResult
	e.ok(t, &info, "getinfo")
	if info.Connections != 0 {
		t.Errorf("getinfo without peers: %+v", info)
	}
}

func TestControlMethods(t *testing.T) {
	e := startServer(t, func(c *Config) { c.StartTime = time.Now().Add(-90 * time.Second) })

	var help string
	e.ok(t, &help, "help")
	for _, m := range methodsSorted {
		if !strings.Contains(help, "\n"+usage(m)+"\n") {
			t.Errorf("help lacks the line %q", usage(m))
		}
	}
	for _, line := range []string{`getblock "hash" (verbose=true)`, `setgenerate generate (genproclimit)`, `addnode "addr" "add|remove|onetry"`, "== network =="} {
		if !strings.Contains(help, line) {
			t.Errorf("help lacks %q:\n%s", line, help)
		}
	}
	e.ok(t, &help, "help", "getblock")
	for _, s := range []string{`getblock "hash" (verbose=true)`, "Arguments:", "1. hash (string, required)", "2. verbose (boolean, optional, default true)", "Result:"} {
		if !strings.Contains(help, s) {
			t.Errorf("help getblock lacks %q:\n%s", s, help)
		}
	}
	e.ok(t, &help, "help", "generate")
	if !strings.Contains(help, "1. numblocks (integer, required, 1 to 10000)") {
		t.Errorf("help generate:\n%s", help)
	}
	e.fail(t, CodeInvalidParameter, "help", "nosuch")

	var v map[string]VersionResult
	e.ok(t, &v, "version")
	if v["dagnode"] != (VersionResult{VersionString: "1.2.3", Major: 1, Minor: 2, Patch: 3}) || v["dagnodejsonrpcapi"].VersionString != APIVersion {
		t.Errorf("version: %+v", v)
	}

	var info InfoResult
	e.ok(t, &info, "getinfo")
	st := e.chain.dag.Status()
	if info.Version != 1020300 || info.Blocks != int64(st.Count) || info.MaxHeight != st.MaxHeight || info.Connections != 2 ||
		info.Difficulty != 1 || info.Network != "regtest" || info.TestNet {
		t.Errorf("getinfo: %+v", info)
	}

	var up int64
	e.ok(t, &up, "uptime")
	if up < 90 || up > 3600 {
		t.Errorf("uptime %d, want about 90", up)
	}

	var msg string
	e.ok(t, &msg, "stop")
	e.ok(t, &msg, "stop")
	if msg != "dagnode stopping." || e.stops.Load() != 1 {
		t.Errorf("stop: %q, Stop called %d times, want once", msg, e.stops.Load())
	}
}

func TestChainMethods(t *testing.T) {
	e := startServer(t, func(c *Config) {
		c.AddrString = func(a [dag.AddrLen]byte) string { return fmt.Sprintf("addr-%x", a[0]) }
	})
	d := e.chain.dag
	st := d.Status()

	var count int
	e.ok(t, &count, "getblockcount")
	if count != st.Count {
		t.Errorf("getblockcount %d, want %d", count, st.Count)
	}

	// A height holding several blocks.
	wide := int64(-1)
	for h := int64(1); h <= st.MaxHeight; h++ {
		if len(d.HashesAtHeight(h)) > 1 {
			wide = h
			break
		}
	}
	if wide < 0 {
		t.Fatal("test DAG has no height with several blocks")
	}
	var hashes []string
	e.ok(t, &hashes, "getblockhash", wide)
	if !slices.Equal(hashes, dag.HashStrings(d.HashesAtHeight(wide))) || len(hashes) < 2 {
		t.Errorf("getblockhash %d = %v", wide, hashes)
	}

	// getblock, verbose and not, on a block with several parents.
	var target dag.Hash
	for h := int64(1); h <= st.MaxHeight && target.IsZero(); h++ {
		for _, x := range d.HashesAtHeight(h) {
			if info, _ := d.BlockInfo(x); len(info.Parents) > 1 && len(info.Children) > 0 {
				target = x
				break
			}
		}
	}
	if target.IsZero() {
		t.Fatal("test DAG has no merge block with children")
	}
	blk, err := d.Block(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := d.BlockInfo(target)
	var br BlockResult
	e.ok(t, &br, "getblock", target.String())
	if br.Hash != target.String() || br.Height != info.Height || !slices.Equal(br.Parents, parentResults(info.Parents)) ||
		!slices.Equal(br.NextHashes, dag.HashStrings(info.Children)) || br.Size != blk.EncodedSize() ||
		br.Nonce != strconv.FormatUint(blk.Header.Nonce, 10) || br.Version != 1 || br.TimeMillis != blk.Header.Timestamp || br.Time != blk.Header.Timestamp/1000 ||
		br.Bits != fmt.Sprintf("%08x", blk.Header.Bits) || br.Difficulty != 1 || br.BodyHash != blk.Header.BodyHash.String() ||
		br.Confirmations != st.MaxHeight-info.Height+1 || br.ChainWork != new(big.Int).Add(info.BlueWork, dag.Work(blk.Header.Bits)).Text(16) ||
		br.BlueWork != info.BlueWork.Text(16) || br.BlueScore != info.BlueScore || br.SelectedParent != info.SelectedParent.String() ||
		!slices.Equal(br.MergeSetBlues, dag.HashStrings(info.MergeSetBlues)) || br.MergeSetBlues[0] != br.SelectedParent ||
		br.MinerAddr != fmt.Sprintf("addr-%x", dag.RegTestParams.AddrPrefix) || br.Payload != hex.EncodeToString(blk.Body.Payload) {
		t.Errorf("getblock verbose: %+v\nblock %+v\ninfo %+v", br, blk, info)
	}
	// previousblockhash is the selected parent: the parent with the most blue work.
	var best dag.BlockInfo
	for _, p := range info.Parents {
		pi, _ := d.BlockInfo(p)
		if best.BlueWork == nil || pi.BlueWork.Cmp(best.BlueWork) > 0 || (pi.BlueWork.Cmp(best.BlueWork) == 0 && p.Less(best.Hash)) {
			best = pi
		}
	}
	if br.PreviousHash != best.Hash.String() {
		t.Errorf("previousblockhash %s, want the selected parent %s", br.PreviousHash, best.Hash)
	}
	var hx string
	e.ok(t, &hx, "getblock", target.String(), false)
	if hx != hex.EncodeToString(blk.Encode()) {
		t.Errorf("getblock hex mismatch")
	}

	var hr BlockHeaderResult
	e.ok(t, &hr, "getblockheader", target.String())
	if !jsonEqual(t, hr, br.BlockHeaderResult) {
		t.Errorf("getblockheader %+v differs from getblock's header %+v", hr, br.BlockHeaderResult)
	}
	e.ok(t, &hx, "getblockheader", target.String(), false)
	if hx != hex.EncodeToString(blk.Header.AppendEncode(nil)) {
		t.Errorf("getblockheader hex mismatch")
	}
	// The genesis has no previousblockhash and an empty (not null) parent list.
	r := e.call(t, "getblockheader", dag.RegTestParams.GenesisHash.String())
	if strings.Contains(string(r.Result), "previousblockhash") || !strings.Contains(string(r.Result), `"parents":[]`) {
		t.Errorf("genesis header: %s", r.Result)
	}

	var tips DAGTipsResult
	e.ok(t, &tips, "getdagtips")
	if !slices.Equal(tips.Tips, dag.HashStrings(st.Tips)) || tips.MaxHeight != st.MaxHeight || tips.BlkCount != st.Count ||
		tips.MinHeight > tips.MaxHeight || tips.TotalWork != d.TotalWork().Text(16) || tips.BlueWork != st.BlueWork.Text(16) ||
		tips.VirtualSelectedParent != d.Virtual().SelectedParent.String() {
		t.Errorf("getdagtips: %+v, status %+v", tips, st)
	}

	var bb BestBlockResult
	e.ok(t, &bb, "getbestblock")
	var bestTip dag.BlockInfo
	for _, tip := range st.Tips {
		ti, _ := d.BlockInfo(tip)
		if bestTip.BlueWork == nil || ti.BlueWork.Cmp(bestTip.BlueWork) > 0 || (ti.BlueWork.Cmp(bestTip.BlueWork) == 0 && tip.Less(bestTip.Hash)) {
			bestTip = ti
		}
	}
	if bb.Hash != bestTip.Hash.String() || bb.Height != bestTip.Height {
		t.Errorf("getbestblock %+v, want %s at %d", bb, bestTip.Hash, bestTip.Height)
	}
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return string(ja) == string(jb)
}

// TestGHOSTDAGMethods checks getblockdaginfo, getdagorder and
// getdagcoloring against the DAG's own view.
func TestGHOSTDAGMethods(t *testing.T) {
	e := startServer(t, nil)
	d := e.chain.dag
	v := d.Virtual()
	var info BlockDAGInfoResult
	e.ok(t, &info, "getblockdaginfo")
	if info.Network != "regtest" || info.Blocks != d.Count() || info.K != 18 || info.MergeSetSizeLimit != 180 ||
		info.VirtualSelectedParent != v.SelectedParent.String() || info.BlueScore != v.BlueScore ||
		info.BlueWork != v.BlueWork.Text(16) || info.DAAScore != v.PastSize || !slices.Equal(info.VirtualParents, dag.HashStrings(v.Parents)) ||
		info.Bits != fmt.Sprintf("%08x", v.Bits) || len(info.Tips) == 0 {
		t.Errorf("getblockdaginfo %+v, virtual %+v", info, v)
	}
	all, total := d.Order(0, MaxOrderPage)
	if total < 10 || int64(len(all)) != total {
		t.Fatalf("order of %d of %d blocks", len(all), total)
	}
	var page DAGOrderResult
	e.ok(t, &page, "getdagorder", 3, 4)
	if page.Total != total || len(page.Blocks) != 4 {
		t.Fatalf("getdagorder 3 4: %+v", page)
	}
	for i, b := range page.Blocks {
		w := all[3+i]
		if b.Hash != w.Hash.String() || b.Order != w.Order || b.IsBlue != w.IsBlue || b.IsInChain != w.IsInChain {
			t.Errorf("getdagorder entry %d: %+v, want %+v", i, b, w)
		}
	}
	e.ok(t, &page, "getdagorder", total)
	if len(page.Blocks) != 0 || page.Total != total {
		t.Errorf("getdagorder past the end: %+v", page)
	}
	// getdagcoloring decodes as soterd's []GetDAGColoringResult.
	r := e.call(t, "getdagcoloring")
	var coloring []struct {
		Hash   string `json:"hash"`
		IsBlue bool   `json:"isblue"`
	}
	if err := decodeStrict(r.Result, &coloring); err != nil || int64(len(coloring)) != total {
		t.Fatalf("getdagcoloring: %v, %d entries of %d", err, len(coloring), total)
	}
	for i, c := range coloring {
		if c.Hash != all[i].Hash.String() || c.IsBlue != all[i].IsBlue {
			t.Fatalf("getdagcoloring entry %d: %+v, want %+v", i, c, all[i])
		}
	}
	e.fail(t, CodeInvalidParameter, "getdagorder", 0, MaxOrderPage+1)
	e.fail(t, CodeInvalidParameter, "getdagorder", -1)
}

func TestRenderDAG(t *testing.T) {
	e := startServer(t, nil)
	d := e.chain.dag
	st := d.Status()
	var r RenderDAGResult
	e.ok(t, &r, "renderdag")
	if !strings.HasPrefix(r.Dot, "digraph dag {") || !strings.HasSuffix(r.Dot, "}\n") {
		t.Fatalf("not a DOT digraph:\n%s", r.Dot)
	}
	if n := strings.Count(r.Dot, "label="); n != st.Count {
		t.Errorf("whole DAG: %d nodes drawn, want %d", n, st.Count)
	}
	tip := st.Tips[0]
	ti, _ := d.BlockInfo(tip)
	for _, p := range ti.Parents {
		if edge := fmt.Sprintf("%q -> %q", tip.String(), p.String()); !strings.Contains(r.Dot, edge) {
			t.Errorf("edge %s missing", edge)
		}
	}

	e.ok(t, &r, "renderdag", 2)
	want := len(d.HashesAtHeight(st.MaxHeight)) + len(d.HashesAtHeight(st.MaxHeight-1))
	if n := strings.Count(r.Dot, `\nh=`); n != want {
		t.Errorf("last 2 heights: %d blocks drawn, want %d:\n%s", n, want, r.Dot)
	}
	if !strings.Contains(r.Dot, "style=dashed") {
		t.Error("parents outside the range are not drawn dashed")
	}
	if strings.Contains(r.Dot, dag.RegTestParams.GenesisHash.String()) {
		t.Error("last 2 heights include the genesis")
	}
	// Colours: blue and red fills, the selected chain bold.
	e.ok(t, &r, "renderdag")
	all, _ := d.Order(0, MaxOrderPage)
	blue := 0
	for _, b := range all {
		if b.IsBlue {
			blue++
		}
	}
	if n := strings.Count(r.Dot, `fillcolor="#a8c8f0"`); n != blue {
		t.Errorf("%d blocks drawn blue, the DAG has %d", n, blue)
	}
	if n := strings.Count(r.Dot, "penwidth=3];\n"); n < int(st.MaxHeight)/2 {
		t.Errorf("%d selected-chain blocks drawn bold:\n%s", n, r.Dot)
	}

	// The size bound.
	big := startServer(t, func(c *Config) { c.Chain = hugeChain{d} })
	err := big.fail(t, CodeInvalidParameter, "renderdag")
	if !strings.Contains(err.Message, "more than renderdag draws") {
		t.Errorf("bound message: %q", err.Message)
	}
}

// hugeChain claims more blocks than renderdag draws.
type hugeChain struct{ *dag.DAG }

func (h hugeChain) Status() dag.Status {
	st := h.DAG.Status()
	st.Count = MaxRenderBlocks + 1
	return st
}

func TestSubmitBlock(t *testing.T) {
	e := startServer(t, nil)
	d := e.chain.dag
	b := e.chain.rest[0]
	hx := hex.EncodeToString(b.Encode())
	r := e.call(t, "submitblock", hx)
	if r.Error != nil || string(r.Result) != "null" || !d.HaveBlock(b.Hash()) {
		t.Fatalf("submitblock: %+v, in DAG %v", r, d.HaveBlock(b.Hash()))
	}
	var s string
	e.ok(t, &s, "submitblock", hx)
	if s != "duplicate" {
		t.Errorf("resubmit: %q, want duplicate", s)
	}

	p := dag.RegTestParams
	var unknown dag.Hash
	unknown[0] = 0xee
	orphan := dagtest.MakeBlock(p, []dag.Hash{unknown}, p.PowLimitBits, time.Now().UnixMilli(), nil)
	e.ok(t, &s, "submitblock", hex.EncodeToString(orphan.Encode()))
	if !strings.HasPrefix(s, "orphan: ") {
		t.Errorf("orphan: %q", s)
	}

	invalid := dagtest.InvalidBlocks(p, time.Now())
	if len(invalid) == 0 {
		t.Fatal("no invalid blocks")
	}
	for _, inv := range invalid {
		r := e.call(t, "submitblock", hex.EncodeToString(inv.Block.Encode()))
		switch {
		case r.Error != nil && r.Error.Code == CodeDeserialization:
			// Some invalid blocks do not even decode (e.g. too big).
		case r.Error != nil:
			t.Errorf("%s: %v", inv.Name, r.Error)
		default:
			if err := json.Unmarshal(r.Result, &s); err != nil || !strings.HasPrefix(s, "rejected: ") {
				t.Errorf("%s: %s, want \"rejected: ...\"", inv.Name, r.Result)
			}
		}
	}

	for _, tc := range []struct{ arg, msg string }{
		{"zz", "argument must be a hexadecimal string"},
		{"abc", "argument must be a hexadecimal string"},
		{"00", "block decode failed"},
		{strings.Repeat("00", dag.MaxBlockSize+1), "block too large"},
	} {
		err := e.fail(t, CodeDeserialization, "submitblock", tc.arg)
		if !strings.Contains(err.Message, tc.msg) {
			t.Errorf("%.10s: %q, want %q", tc.arg, err.Message, tc.msg)
		}
	}
	// A local failure is an error, not a result.
	fail := startServer(t, func(c *Config) { c.Submitter = failingSubmitter{} })
	err := fail.fail(t, CodeInternal, "submitblock", hex.EncodeToString(e.chain.rest[1].Encode()))
	if !strings.Contains(err.Message, "disk full") {
		t.Errorf("local failure: %q", err.Message)
	}
}

type failingSubmitter struct{}

func (failingSubmitter) SubmitBlock(context.Context, *dag.Block) error {
	return errors.New("disk full")
}

// TestMiningWithRealMiner drives the real CPU miner on a regtest DAG.
func TestMiningWithRealMiner(t *testing.T) {
	c := newTestChain(t, 3, 0)
	d := c.dag
	mm := metrics.New()
	m, err := miner.New(miner.Config{
		DAG:        d,
		Submit:     func(ctx context.Context, b *dag.Block) error { return d.ProcessBlock(ctx, b) },
		MiningAddr: dagtest.Addr(dag.RegTestParams),
		Recorder:   mm,
		Logger:     testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Close)
	e := startServer(t, func(cfg *Config) {
		cfg.Chain, cfg.Miner, cfg.Metrics, cfg.Submitter = d, m, mm, dagSubmitter{d}
	})

	before := d.Status().Count
	var hashes []string
	e.ok(t, &hashes, "generate", 3)
	if len(hashes) != 3 || d.Status().Count != before+3 {
		t.Fatalf("generate 3: %v, DAG grew by %d", hashes, d.Status().Count-before)
	}
	for _, h := range hashes {
		x, err := dag.ParseHash(h)
		if err != nil || !d.HaveBlock(x) {
			t.Errorf("generated %s not in the DAG", h)
		}
	}
	var bm metrics.BlockMetrics
	e.ok(t, &bm, "getblockmetrics")
	if bm.BlkGenCount != 3 || !slices.Equal(bm.BlkHashes, hashes) || len(bm.BlkGenTimes) != 3 {
		t.Errorf("getblockmetrics %+v, want the 3 generated blocks", bm)
	}
	r := e.call(t, "getblockmetrics")
	for _, f := range []string{`"blkgencount":3`, `"blkhashes":[`, `"blkgentimes":[`} {
		if !strings.Contains(string(r.Result), f) {
			t.Errorf("getblockmetrics JSON lacks %s: %s", f, r.Result)
		}
	}

	e.ok(t, nil, "setgenerate", true, 1)
	var on bool
	e.ok(t, &on, "getgenerate")
	if !on {
		t.Error("getgenerate false after setgenerate true")
	}
	// generate while mining continuously: the miner's error, code -1.
	if busy := e.fail(t, CodeMisc, "generate", 1); !strings.Contains(busy.Message, "already mining") {
		t.Errorf("busy: %q", busy.Message)
	}
	var mi MiningInfoResult
	e.ok(t, &mi, "getmininginfo")
	if !mi.Generate || mi.GenProcLimit != 1 || mi.Network != "regtest" || mi.Difficulty != 1 {
		t.Errorf("getmininginfo: %+v", mi)
	}
	waitFor(t, "blocks mined continuously", func() bool { return d.Status().Count > before+5 })
	e.ok(t, nil, "setgenerate", false)
	e.ok(t, &on, "getgenerate")
	if on {
		t.Error("getgenerate true after setgenerate false")
	}
	var hps int64
	e.ok(t, &hps, "gethashespersec")
	if hps < 0 {
		t.Errorf("gethashespersec %d", hps)
	}
	var diff float64
	e.ok(t, &diff, "getdifficulty")
	if diff != 1 {
		t.Errorf("regtest difficulty %v, want 1", diff)
	}
}

func TestSetGenerateParams(t *testing.T) {
	e := startServer(t, nil)
	for _, tc := range []struct {
		params []any
		want   [2]any
	}{
		{[]any{true}, [2]any{true, 0}},      // omitted: keep the worker count
		{[]any{true, 4}, [2]any{true, 4}},   // four workers
		{[]any{true, -1}, [2]any{true, -1}}, // one per core
		{[]any{true, 0}, [2]any{false, 0}},  // 0 stops (soterd, bitcoind)
		{[]any{false}, [2]any{false, 0}},
	} {
		e.ok(t, nil, "setgenerate", tc.params...)
		e.miner.mu.Lock()
		got := e.miner.setCalls[len(e.miner.setCalls)-1]
		e.miner.mu.Unlock()
		if got != tc.want {
			t.Errorf("setgenerate %v: SetGenerate%v, want %v", tc.params, got, tc.want)
		}
	}
	e.miner.genErr = errors.New("miner: closed")
	err := e.fail(t, CodeMisc, "generate", 2)
	if err.Message != "generate: miner: closed" {
		t.Errorf("generate error: %q", err.Message)
	}
	if e.miner.generateN.Load() != 2 {
		t.Errorf("Generate got n=%d", e.miner.generateN.Load())
	}
}

func TestNetMethods(t *testing.T) {
	e := startServer(t, nil)
	var peers []PeerInfoResult
	e.ok(t, &peers, "getpeerinfo")
	if len(peers) != 2 {
		t.Fatalf("getpeerinfo: %+v", peers)
	}
	a, b := peers[0], peers[1]
	if a.ID != 3 || a.PeerID != "12D3KooWPeerA" || a.Addr != "/ip4/10.0.0.1/tcp/9700" || len(a.Addrs) != 2 || a.Direction != "outbound" || a.Inbound ||
		a.Transport != "tcp" || a.Relayed || a.SubVer != "dagnode/1.0.0" || a.ProtocolVersion != "/dagnode/regtest" ||
		a.PingTime != 1500 || a.ConnTime != 1_800_000_000 || a.BytesSent != 100 || a.BytesRecv != 200 || a.BanScore != 7 ||
		a.CurrentHeight != 12 || a.Blocks != 30 || !a.SyncNode || a.Banned {
		t.Errorf("peer A: %+v", a)
	}
	if b.ID != 7 || b.PeerID != "12D3KooWPeerB" || !b.Inbound || !b.Relayed || b.Transport != "relay" || b.CurrentHeight != -1 || b.SyncNode || b.ConnTime != 0 {
		t.Errorf("peer B: %+v", b)
	}

	var n int
	e.ok(t, &n, "getconnectioncount")
	if n != 2 {
		t.Errorf("getconnectioncount %d", n)
	}
	var nt NetTotalsResult
	e.ok(t, &nt, "getnettotals")
	if nt.TotalBytesRecv != 1000 || nt.TotalBytesSent != 2000 || time.Since(time.UnixMilli(nt.TimeMillis)) > time.Minute {
		t.Errorf("getnettotals: %+v", nt)
	}
	var ni NetworkInfoResult
	e.ok(t, &ni, "getnetworkinfo")
	if ni.PeerID != "12D3KooWSelf" || !slices.Equal(ni.ListenAddrs, []string{"/ip4/127.0.0.1/tcp/9703/p2p/12D3KooWSelf"}) ||
		ni.Reachability != "private" || ni.NATStatus != "upnp: mapped" || len(ni.Protocols) != 2 || ni.Connections != 2 ||
		ni.Network != "regtest" || ni.SubVersion != "dagnode/1.2.3" || ni.RelayAddrs == nil || len(ni.ObservedAddrs) != 1 {
		t.Errorf("getnetworkinfo: %+v", ni)
	}

	addr := "/ip4/10.0.0.5/tcp/9700/p2p/12D3KooWE"
	e.ok(t, nil, "addnode", addr, "onetry")
	e.ok(t, nil, "addnode", addr, "add")
	if !slices.Contains(e.peers.connected, addr) || !e.peers.persistent[addr] {
		t.Errorf("addnode: connected %v persistent %v", e.peers.connected, e.peers.persistent)
	}
	e.ok(t, nil, "addnode", addr, "remove")
	if e.peers.persistent[addr] {
		t.Error("addnode remove kept the peer")
	}
	e.fail(t, CodeNodeNotAdded, "addnode", addr, "remove")
	e.fail(t, CodeInvalidAddressOrKey, "addnode", "not-a-multiaddr", "add")
	e.peers.connectErr = errors.New("dial backoff")
	if err := e.fail(t, CodeMisc, "addnode", addr, "onetry"); !strings.Contains(err.Message, "dial backoff") {
		t.Errorf("dial failure: %q", err.Message)
	}

	e.ok(t, nil, "disconnectnode", "12D3KooWPeerB")
	if !slices.Equal(e.peers.disconnected, []string{"12D3KooWPeerB"}) {
		t.Errorf("disconnected %v", e.peers.disconnected)
	}
	if err := e.fail(t, CodeInvalidParameter, "disconnectnode", "12D3KooWNobody"); !strings.Contains(err.Message, "is not connected") {
		t.Errorf("disconnect unknown: %q", err.Message)
	}

	e.ok(t, nil, "ban", "12D3KooWPeerB")
	e.ok(t, nil, "ban", "12D3KooWPeerC", 60)
	if e.peers.banned["12D3KooWPeerB"] != 24*time.Hour || e.peers.banned["12D3KooWPeerC"] != time.Minute {
		t.Errorf("ban durations: %v", e.peers.banned)
	}
	e.fail(t, CodeInvalidAddressOrKey, "ban", "garbage")
	var bans []BannedResult
	e.ok(t, &bans, "listbanned")
	if len(bans) != 2 || bans[0].PeerID != "12D3KooWPeerB" || bans[0].BannedUntil != 1_900_000_000 || bans[0].Reason != "banned over RPC" {
		t.Errorf("listbanned: %+v", bans)
	}
	e.ok(t, nil, "unban", "12D3KooWPeerB")
	if err := e.fail(t, CodeInvalidParameter, "unban", "12D3KooWPeerB"); !strings.Contains(err.Message, "is not banned") {
		t.Errorf("unban twice: %q", err.Message)
	}
	e.ok(t, &bans, "listbanned")
	if len(bans) != 1 {
		t.Errorf("after unban: %+v", bans)
	}

	var pings []PingReply
	e.ok(t, &pings, "ping")
	if len(pings) != 2 || pings[0].PingTime != 2000 || pings[0].Error != "" || pings[1].Error != "stream reset" {
		t.Errorf("ping: %+v", pings)
	}
	r := e.call(t, "listbanned")
	if r.Error != nil {
		t.Fatal(r.Error)
	}
	empty := startServer(t, func(c *Config) { c.Peers = &fakePeers{} })
	r = empty.call(t, "getpeerinfo")
	if string(r.Result) != "[]" {
		t.Errorf("no peers: %s, want []", r.Result)
	}
}

func TestSyncMethods(t *testing.T) {
	e := startServer(t, nil)
	var si SyncInfoResult
	e.ok(t, &si, "getsyncinfo")
	want := SyncInfoResult{SyncMode: true, SyncPeer: "12D3KooWPeerA", Blocks: 25, Target: 100, Progress: 0.25, Done: 5,
		BlocksPerSec: 2.5, ETASeconds: 30, Sessions: 1, Orphans: 4, OrphanBytes: 1200, OrphanFetches: 1,
		LastSession: &SessionEndResult{Peer: "12D3KooWPeerB", Reason: "stalled", Error: "no frame in 10s", Blocks: 7,
			Seconds: 10.5, Time: 1_700_000_000},
		Backoffs: []BackoffResult{{Peer: "12D3KooWPeerB", Until: 1_700_000_002, Failures: 1, Reason: "stalled"}}}
	if !reflect.DeepEqual(si, want) {
		t.Errorf("getsyncinfo %+v, want %+v", si, want)
	}
	idle := startServer(t, func(c *Config) { c.Sync = fakeSync{SyncInfo{Blocks: 40}} })
	var raw map[string]any
	idle.ok(t, &raw, "getsyncinfo")
	if raw["syncmode"] != false || raw["progress"] != 1.0 || raw["syncpeer"] != "" || raw["lastsession"] != nil {
		t.Errorf("not syncing: %v", raw)
	}
	if b, ok := raw["backoffs"].([]any); !ok || len(b) != 0 {
		t.Errorf("backoffs %v, want []", raw["backoffs"])
	}
}
