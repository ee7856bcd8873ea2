package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/rpc"
)

// FuzzCLIParams feeds arbitrary command lines (one word per line) to the
// parsing half of `dagnode rpc`: the flags, then METHOD and PARAMS through
// rpc.ParseCLIParams. It must never panic. Words that ParseCLIParams
// accepts for a method must mean the same params on the command line, and
// params the command line accepts must pass the server's param checks (an
// in-process server over a regtest DAG answers them; it never says
// "invalid params").
//
// Flags come before METHOD: from METHOD on, words starting with '-' are
// params (setgenerate true -1).
func FuzzCLIParams(f *testing.F) {
	d, err := dag.Open(context.Background(), dssync.MutexWrap(ds.NewMapDatastore()), dag.RegTestParams,
		dag.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		f.Fatal(err)
	}
	srv, err := rpc.New(rpc.Config{Chain: d, User: "u", Pass: "p", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	g := dag.RegTestParams.GenesisHash.String()
	for _, s := range []string{
		"getblockcount", "getblockhash\n0", "getblockhash\n 7 ", "getblock\n" + g, "getblock\n" + g + "\nfalse",
		"getblockheader\n" + strings.ToUpper(g) + "\nT", "renderdag\n3", "generate\n5", "setgenerate\ntrue\n-1",
		"setgenerate\n0", "addnode\n/ip4/10.0.0.1/tcp/9700/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8\nonetry",
		"ban\n12D3KooWPeer\n60", "help\ngetblock", "--network\nregtest\n--timeout\n5s\nuptime", "--\ngetblockhash\n-1",
		"nosuchmethod", "getblockhash\n9223372036854775808", "ban\nx\n0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words := strings.Split(line, "\n")
		// The command line as given.
		rc := rpcConfig{Network: "mainnet", Timeout: "10m"}
		if rest, err := parseRPCFlags(&rc, words, io.Discard); err == nil && len(rest) > 0 {
			cfg := config{Network: rc.Network, DataDir: rc.DataDir, LogLevel: "info"}
			_ = cfg.validate()
			if params, err := rpc.ParseCLIParams(rest[0], rest[1:]); err == nil {
				checkServerAccepts(t, srv, rest[0], params)
			}
		}
		// The words as METHOD PARAMS: what ParseCLIParams accepts, the
		// command line passes on unchanged.
		direct, err := rpc.ParseCLIParams(words[0], words[1:])
		if err != nil {
			return
		}
		args := words
		rc = rpcConfig{Network: "mainnet", Timeout: "10m"}
		rest, err := parseRPCFlags(&rc, args, io.Discard)
		if err != nil || !slices.Equal(rest, words) {
			t.Fatalf("params %q: the command line %q gives %q, %v", words[1:], args, rest, err)
		}
		viaCLI, err := rpc.ParseCLIParams(rest[0], rest[1:])
		if err != nil || !equalJSON(t, direct, viaCLI) {
			t.Fatalf("params %q: %v vs %v (%v)", words[1:], direct, viaCLI, err)
		}
		checkServerAccepts(t, srv, words[0], direct)
	})
}

func equalJSON(t *testing.T, a, b any) bool {
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

// checkServerAccepts sends params as the client would and fails if the
// server calls them invalid.
func checkServerAccepts(t *testing.T, srv *rpc.Server, method string, params []any) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"jsonrpc": "1.0", "method": method, "params": params, "id": 1})
	if err != nil {
		t.Fatalf("params %v do not encode: %v", params, err)
	}
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.SetBasicAuth("u", "p")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", body, rec.Code, rec.Body.Bytes())
	}
	var resp struct {
		Error *rpc.Error `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("%s: answer %s: %v", body, rec.Body.Bytes(), err)
	}
	if resp.Error != nil && resp.Error.Code == rpc.CodeInvalidParams {
		t.Fatalf("the CLI accepted %s but the server says: %s", body, resp.Error.Message)
	}
}

// TestRPCParamsMayStartWithDash: flags come before METHOD, and a param such
// as setgenerate's -1 (one worker per core) is a param, not a flag.
func TestRPCParamsMayStartWithDash(t *testing.T) {
	rc := rpcConfig{Network: "mainnet", Timeout: "10m"}
	rest, err := parseRPCFlags(&rc, []string{"--network", "regtest", "setgenerate", "true", "-1"}, io.Discard)
	if err != nil || !slices.Equal(rest, []string{"setgenerate", "true", "-1"}) || rc.Network != "regtest" {
		t.Fatalf("rest %q, network %q, %v", rest, rc.Network, err)
	}
	if params, err := rpc.ParseCLIParams(rest[0], rest[1:]); err != nil || len(params) != 2 || params[1] != int64(-1) {
		t.Fatalf("params %v, %v", params, err)
	}
}
