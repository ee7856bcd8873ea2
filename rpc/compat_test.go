package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

// The result types of soterd's typed client (soterd's soterjson package, a
// fork of btcd's btcjson), copied with their field names, JSON tags and Go
// types from github.com/soteria-dag/soterd, commit b18452bc:
// soterjson/chainsvrresults.go, soterdextresults.go, walletsvrresults.go.
// Where btcd's btcjson (github.com/btcsuite/btcd, commit 2c67bc29) differs
// in a field dagnode sends, its type is noted and checked too (btcd*).
// They are copies, not imports: this module does not depend on either.

type soterGetBlockHeaderVerboseResult struct {
	Hash          string   `json:"hash"`
	Confirmations int64    `json:"confirmations"`
	Height        int32    `json:"height"`
	Version       int32    `json:"version"`
	VersionHex    string   `json:"versionHex"`
	MerkleRoot    string   `json:"merkleroot"`
	Time          int64    `json:"time"`
	Nonce         uint64   `json:"nonce"`
	Bits          string   `json:"bits"`
	Difficulty    float64  `json:"difficulty"`
	PreviousHash  string   `json:"previousblockhash,omitempty"`
	NextHashes    []string `json:"nextblockhashes,omitempty"`
}

type soterGetBlockVerboseResult struct {
	Hash          string   `json:"hash"`
	Confirmations int64    `json:"confirmations"`
	StrippedSize  int32    `json:"strippedsize"`
	Size          int32    `json:"size"`
	Weight        int32    `json:"weight"`
	Height        int64    `json:"height"`
	Version       int32    `json:"version"`
	VersionHex    string   `json:"versionHex"`
	MerkleRoot    string   `json:"merkleroot"`
	Tx            []string `json:"tx,omitempty"`
	// RawTx is []TxRawResult in soterd; dagnode blocks have no
	// transactions and never send it.
	RawTx        []json.RawMessage `json:"rawtx,omitempty"`
	Time         int64             `json:"time"`
	Nonce        uint32            `json:"nonce"`
	Bits         string            `json:"bits"`
	Difficulty   float64           `json:"difficulty"`
	PreviousHash string            `json:"previousblockhash"`
	NextHashes   []string          `json:"nextblockhashes,omitempty"`
	Parents      []soterDAGParent  `json:"parents,omitempty"`
}

type soterDAGParent struct {
	Version int32    `json:"version"`
	Data    [32]byte `json:"parentdata"`
	Hash    string   `json:"hash"`
}

// soterGetPeerInfoResult is also btcd's, which adds V2Connection bool
// `json:"v2_connection"`.
type soterGetPeerInfoResult struct {
	ID             int32   `json:"id"`
	Addr           string  `json:"addr"`
	AddrLocal      string  `json:"addrlocal,omitempty"`
	Services       string  `json:"services"`
	RelayTxes      bool    `json:"relaytxes"`
	LastSend       int64   `json:"lastsend"`
	LastRecv       int64   `json:"lastrecv"`
	BytesSent      uint64  `json:"bytessent"`
	BytesRecv      uint64  `json:"bytesrecv"`
	ConnTime       int64   `json:"conntime"`
	TimeOffset     int64   `json:"timeoffset"`
	PingTime       float64 `json:"pingtime"`
	PingWait       float64 `json:"pingwait,omitempty"`
	Version        uint32  `json:"version"`
	SubVer         string  `json:"subver"`
	Inbound        bool    `json:"inbound"`
	StartingHeight int32   `json:"startingheight"`
	CurrentHeight  int32   `json:"currentheight,omitempty"`
	BanScore       int32   `json:"banscore"`
	FeeFilter      int64   `json:"feefilter"`
	SyncNode       bool    `json:"syncnode"`
}

type soterGetNetTotalsResult struct {
	TotalBytesRecv uint64 `json:"totalbytesrecv"`
	TotalBytesSent uint64 `json:"totalbytessent"`
	TimeMillis     int64  `json:"timemillis"`
}

// soterGetNetworkInfoResult is soterd's type (soterd lists getnetworkinfo
// as unimplemented); btcd's adds connections_in and connections_out and
// makes warnings a string or array. dagnode sends none of those.
type soterGetNetworkInfoResult struct {
	Version         int32                       `json:"version"`
	SubVersion      string                      `json:"subversion"`
	ProtocolVersion int32                       `json:"protocolversion"`
	LocalServices   string                      `json:"localservices"`
	LocalRelay      bool                        `json:"localrelay"`
	TimeOffset      int64                       `json:"timeoffset"`
	Connections     int32                       `json:"connections"`
	NetworkActive   bool                        `json:"networkactive"`
	Networks        []soterNetworksResult       `json:"networks"`
	RelayFee        float64                     `json:"relayfee"`
	IncrementalFee  float64                     `json:"incrementalfee"`
	LocalAddresses  []soterLocalAddressesResult `json:"localaddresses"`
	Warnings        string                      `json:"warnings"`
}

type soterNetworksResult struct {
	Name                      string `json:"name"`
	Limited                   bool   `json:"limited"`
	Reachable                 bool   `json:"reachable"`
	Proxy                     string `json:"proxy"`
	ProxyRandomizeCredentials bool   `json:"proxy_randomize_credentials"`
}

type soterLocalAddressesResult struct {
	Address string `json:"address"`
	Port    uint16 `json:"port"`
	Score   int32  `json:"score"`
}

type soterGetMiningInfoResult struct {
	Blocks             int64   `json:"blocks"`
	CurrentBlockSize   uint64  `json:"currentblocksize"`
	CurrentBlockWeight uint64  `json:"currentblockweight"`
	CurrentBlockTx     uint64  `json:"currentblocktx"`
	Difficulty         float64 `json:"difficulty"`
	Errors             string  `json:"errors"`
	Generate           bool    `json:"generate"`
	GenProcLimit       int32   `json:"genproclimit"`
	HashesPerSec       int64   `json:"hashespersec"`
	NetworkHashPS      int64   `json:"networkhashps"`
	PooledTx           uint64  `json:"pooledtx"`
	TestNet            bool    `json:"testnet"`
}

// btcdGetMiningInfoResult is btcd's: its hash rates are float64.
type btcdGetMiningInfoResult struct {
	Blocks             int64   `json:"blocks"`
	CurrentBlockSize   uint64  `json:"currentblocksize"`
	CurrentBlockWeight uint64  `json:"currentblockweight"`
	CurrentBlockTx     uint64  `json:"currentblocktx"`
	Difficulty         float64 `json:"difficulty"`
	Errors             string  `json:"errors"`
	Generate           bool    `json:"generate"`
	GenProcLimit       int32   `json:"genproclimit"`
	HashesPerSec       float64 `json:"hashespersec"`
	NetworkHashPS      float64 `json:"networkhashps"`
	PooledTx           uint64  `json:"pooledtx"`
	TestNet            bool    `json:"testnet"`
}

type soterInfoChainResult struct {
	Version         int32   `json:"version"`
	ProtocolVersion int32   `json:"protocolversion"`
	Blocks          int32   `json:"blocks"`
	TimeOffset      int64   `json:"timeoffset"`
	Connections     int32   `json:"connections"`
	Proxy           string  `json:"proxy"`
	Difficulty      float64 `json:"difficulty"`
	TestNet         bool    `json:"testnet"`
	RelayFee        float64 `json:"relayfee"`
	Errors          string  `json:"errors"`
}

type soterGetBestBlockResult struct {
	Hash   string `json:"hash"`
	Height int32  `json:"height"`
}

type soterGetDAGTipsResult struct {
	Tips      []string `json:"tips"`
	Hash      string   `json:"hash"`
	MinHeight int32    `json:"minheight"`
	MaxHeight int32    `json:"maxheight"`
	BlkCount  uint32   `json:"blkcount"`
}

type soterGetBlockMetricsResult struct {
	BlkGenCount int64     `json:"blkgencount"`
	BlkHashes   []string  `json:"blkhashes"`
	BlkGenTimes []float64 `json:"blkgentimes"`
}

type soterRenderDagResult struct {
	Dot string `json:"dot"`
}

type soterVersionResult struct {
	VersionString string `json:"versionstring"`
	Major         uint32 `json:"major"`
	Minor         uint32 `json:"minor"`
	Patch         uint32 `json:"patch"`
	Prerelease    string `json:"prerelease"`
	BuildMetadata string `json:"buildmetadata"`
}

// bigNonce is a nonce past 2^53: JavaScript reads it as a JSON number
// 6549850819345470000.
const bigNonce uint64 = 6549850819345470925

// decodeStrict decodes raw into v as soterd's client does (encoding/json,
// unknown fields ignored), failing on any type mismatch, including a
// number out of the field's range.
func decodeStrict(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

// TestSoterdClientDecodes decodes the replies of the methods dagnode shares
// with soterd into the result types of soterd's (and btcd's) typed client,
// and checks that the fields with the same meaning carry dagnode's values.
func TestSoterdClientDecodes(t *testing.T) {
	e := startServer(t, nil)
	e.miner.hashes = []dag.Hash{dag.RegTestParams.GenesisHash}
	d := e.chain.dag
	nb := addBigNonceBlock(t, d)
	info, _ := d.BlockInfo(nb.Hash())
	st := d.Status()

	result := func(method string, params ...any) []byte {
		t.Helper()
		r := e.call(t, method, params...)
		if r.Error != nil {
			t.Fatalf("%s %v: %v", method, params, r.Error)
		}
		return r.Result
	}
	decode := func(method string, raw []byte, v any) {
		t.Helper()
		if err := decodeStrict(raw, v); err != nil {
			t.Fatalf("%s: soterd's client cannot decode %s into %T: %v", method, raw, v, err)
		}
	}

	// getblock verbose.
	raw := result("getblock", nb.Hash().String())
	var blk soterGetBlockVerboseResult
	decode("getblock", raw, &blk)
	var wantParents []soterDAGParent
	for _, p := range nb.Header.Parents {
		wantParents = append(wantParents, soterDAGParent{Hash: p.String()})
	}
	sp := info.SelectedParent
	if blk.Hash != nb.Hash().String() || blk.Height != info.Height || blk.Confirmations != st.MaxHeight-info.Height+1 ||
		blk.Version != int32(dag.BlockVersion) || blk.VersionHex != "00000001" || blk.Time != nb.Header.Timestamp/1000 ||
		blk.Bits == "" || blk.Difficulty != 1 || blk.Size != int32(nb.EncodedSize()) || blk.PreviousHash != sp.String() ||
		!reflect.DeepEqual(blk.Parents, wantParents) || len(wantParents) < 2 {
		t.Errorf("getblock as soterd reads it: %+v\nfrom %s", blk, raw)
	}
	if blk.Nonce != 0 {
		t.Errorf("getblock: soterd's 32-bit nonce is %d, want it absent", blk.Nonce)
	}
	var own BlockResult
	decode("getblock", raw, &own)
	if n, err := strconv.ParseUint(own.Nonce, 10, 64); err != nil || n != nb.Header.Nonce || n < 1<<53 {
		t.Errorf("nonce64 %q (%v), want %d (past 2^53)", own.Nonce, err, nb.Header.Nonce)
	}

	// getblockheader verbose.
	raw = result("getblockheader", nb.Hash().String())
	var hdr soterGetBlockHeaderVerboseResult
	decode("getblockheader", raw, &hdr)
	if hdr.Hash != blk.Hash || int64(hdr.Height) != blk.Height || hdr.Version != blk.Version || hdr.Time != blk.Time ||
		hdr.Bits != blk.Bits || hdr.PreviousHash != blk.PreviousHash || hdr.Confirmations != blk.Confirmations || hdr.Nonce != 0 {
		t.Errorf("getblockheader as soterd reads it: %+v", hdr)
	}

	// getpeerinfo.
	raw = result("getpeerinfo")
	var peers []soterGetPeerInfoResult
	decode("getpeerinfo", raw, &peers)
	if len(peers) != 2 {
		t.Fatalf("getpeerinfo: %s", raw)
	}
	a, b := peers[0], peers[1]
	if a.ID != 3 || a.Addr != "/ip4/10.0.0.1/tcp/9700" || a.BytesSent != 100 || a.BytesRecv != 200 || a.ConnTime != 1_800_000_000 ||
		a.PingTime != 1500 || a.SubVer != "dagnode/1.0.0" || a.Inbound || a.CurrentHeight != 12 || a.BanScore != 7 || !a.SyncNode {
		t.Errorf("peer A as soterd reads it: %+v", a)
	}
	if b.ID != 7 || !b.Inbound || b.SyncNode {
		t.Errorf("peer B as soterd reads it: %+v", b)
	}
	var ownPeers []PeerInfoResult
	decode("getpeerinfo", raw, &ownPeers)
	if ownPeers[0].PeerID != "12D3KooWPeerA" || ownPeers[1].PeerID != "12D3KooWPeerB" {
		t.Errorf("peerid: %+v", ownPeers)
	}

	// The rest: what soterd's client decodes, and the values it must see.
	var (
		bb    soterGetBestBlockResult
		tips  soterGetDAGTipsResult
		bm    soterGetBlockMetricsResult
		dot   soterRenderDagResult
		nt    soterGetNetTotalsResult
		ni    soterGetNetworkInfoResult
		mi    soterGetMiningInfoResult
		bmi   btcdGetMiningInfoResult
		gi    soterInfoChainResult
		ver   map[string]soterVersionResult
		count int64
		conns int64
		hps   int64
		up    int64
		diff  float64
		gen   bool
		help  string
		stop  string
		hs    []string
		gh    []string
	)
	for _, c := range []struct {
		method string
		params []any
		v      any
	}{
		{"getbestblock", nil, &bb}, {"getdagtips", nil, &tips}, {"getblockmetrics", nil, &bm}, {"renderdag", []any{2}, &dot},
		{"getnettotals", nil, &nt}, {"getnetworkinfo", nil, &ni}, {"getmininginfo", nil, &mi}, {"getmininginfo", nil, &bmi},
		{"getinfo", nil, &gi}, {"version", nil, &ver}, {"getblockcount", nil, &count}, {"getconnectioncount", nil, &conns},
		{"gethashespersec", nil, &hps}, {"uptime", nil, &up}, {"getdifficulty", nil, &diff}, {"getgenerate", nil, &gen},
		{"help", nil, &help}, {"getblockhash", []any{info.Height}, &hs}, {"generate", []any{1}, &gh}, {"stop", nil, &stop},
	} {
		decode(c.method, result(c.method, c.params...), c.v)
	}
	if bb.Hash == "" || bb.Height <= 0 {
		t.Errorf("getbestblock: %+v", bb)
	}
	if !slices.Equal(tips.Tips, dag.HashStrings(st.Tips)) || int64(tips.MaxHeight) != st.MaxHeight || int(tips.BlkCount) != st.Count {
		t.Errorf("getdagtips: %+v", tips)
	}
	if bm.BlkGenCount != 1 || !slices.Equal(bm.BlkHashes, []string{"00ab"}) || !slices.Equal(bm.BlkGenTimes, []float64{1500}) {
		t.Errorf("getblockmetrics: %+v", bm)
	}
	if !strings.HasPrefix(dot.Dot, "digraph") {
		t.Errorf("renderdag: %+v", dot)
	}
	if nt.TotalBytesRecv != 1000 || nt.TotalBytesSent != 2000 || nt.TimeMillis == 0 {
		t.Errorf("getnettotals: %+v", nt)
	}
	if ni.Version != 1020300 || ni.SubVersion != "dagnode/1.2.3" || ni.Connections != 2 {
		t.Errorf("getnetworkinfo: %+v", ni)
	}
	if mi.Blocks != int64(st.Count) || mi.Difficulty != 1 || mi.GenProcLimit != 2 || mi.HashesPerSec != 1234 || mi.TestNet ||
		bmi.HashesPerSec != 1234 {
		t.Errorf("getmininginfo: soterd's %+v, btcd's %+v", mi, bmi)
	}
	if gi.Version != 1020300 || int(gi.Blocks) != st.Count || gi.Connections != 2 || gi.Difficulty != 1 {
		t.Errorf("getinfo: %+v", gi)
	}
	if ver["dagnode"].VersionString != "1.2.3" || ver["dagnodejsonrpcapi"].VersionString != APIVersion {
		t.Errorf("version: %+v", ver)
	}
	if count != int64(st.Count) || conns != 2 || hps != 1234 || diff != 1 || help == "" || !slices.Contains(hs, nb.Hash().String()) ||
		len(gh) != 1 || stop == "" {
		t.Errorf("scalars: count %d conns %d hps %d diff %v hashes %v generated %v stop %q", count, conns, hps, diff, hs, gh, stop)
	}
}

// TestNoUnsafeNumbers calls every method (and getblock and getblockheader
// on a block whose nonce is past 2^53) and fails on any JSON integer that
// JavaScript cannot hold exactly (beyond ±(2^53-1)).
func TestNoUnsafeNumbers(t *testing.T) {
	if err := checkSafeNumbers([]byte(`{"a":[1,-9007199254740991,{"b":9007199254740991.5}]}`)); err != nil {
		t.Fatalf("safe numbers rejected: %v", err)
	}
	for _, bad := range []string{`[9007199254740992]`, `{"a":{"b":-18446744073709551615}}`, `6549850819345470925`} {
		if checkSafeNumbers([]byte(bad)) == nil {
			t.Fatalf("%s passed", bad)
		}
	}

	e := startServer(t, nil)
	nb := addBigNonceBlock(t, e.chain.dag).Hash().String()
	type call struct {
		method string
		params []any
	}
	calls := []call{{"getblock", []any{nb}}, {"getblockheader", []any{nb}}}
	every := everyMethodCall(e)
	for _, m := range methodsSorted {
		calls = append(calls, call{m.name, every[m.name]})
	}
	for _, c := range calls {
		r := e.call(t, c.method, c.params...)
		if r.Error != nil {
			t.Fatalf("%s %v: %v", c.method, c.params, r.Error)
		}
		if err := checkSafeNumbers(r.Result); err != nil {
			t.Errorf("%s %v: %v in %s", c.method, c.params, err, r.Result)
		}
	}
}

// checkSafeNumbers fails on an integer literal in raw beyond ±(2^53-1).
func checkSafeNumbers(raw []byte) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return err
	}
	limit := new(big.Int).Lsh(big.NewInt(1), 53)
	limit.Sub(limit, big.NewInt(1))
	var walk func(path string, v any) error
	walk = func(path string, v any) error {
		switch x := v.(type) {
		case json.Number:
			n, ok := new(big.Int).SetString(string(x), 10)
			if ok && n.CmpAbs(limit) > 0 {
				return errors.New(path + " is " + string(x) + ", past 2^53")
			}
		case []any:
			for i, y := range x {
				if err := walk(path+"["+strconv.Itoa(i)+"]", y); err != nil {
					return err
				}
			}
		case map[string]any:
			for k, y := range x {
				if err := walk(path+"."+k, y); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk("result", v)
}

// addBigNonceBlock adds to d a block on all its tips whose nonce is past
// 2^53 (the first that solves from bigNonce on).
func addBigNonceBlock(t *testing.T, d *dag.DAG) *dag.Block {
	t.Helper()
	tmpl := d.Template()
	b := &dag.Block{Body: dag.Body{MinerAddr: dagtest.Addr(dag.RegTestParams), Payload: []byte("big nonce")}}
	b.Header = dag.Header{
		Version:   dag.BlockVersion,
		Net:       dag.RegTestParams.Net,
		Parents:   tmpl.Parents,
		Timestamp: max(tmpl.MinTimestamp, time.Now().UnixMilli()),
		Bits:      tmpl.Bits,
		BodyHash:  b.Body.Hash(),
		Nonce:     bigNonce,
	}
	dagtest.Solve(&b.Header)
	if err := d.ProcessBlock(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return b
}
