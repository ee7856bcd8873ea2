package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/dagnode/dagnode/dag"
)

func TestClientRoundTrip(t *testing.T) {
	e := startServer(t, nil)
	c := NewClient(strings.TrimPrefix(e.url, "http://"), testUser, testPass)
	ctx := context.Background()

	res, err := c.Call(ctx, "getblockcount")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := json.Unmarshal(res, &n); err != nil || n != e.chain.dag.Status().Count {
		t.Errorf("getblockcount = %s (%v)", res, err)
	}
	res, err = c.Call(ctx, "getblockhash", 0)
	if err != nil || !strings.Contains(string(res), dag.RegTestParams.GenesisHash.String()) {
		t.Errorf("getblockhash 0 = %s, %v", res, err)
	}
	// A null result.
	res, err = c.Call(ctx, "setgenerate", false)
	if err != nil || string(res) != "null" {
		t.Errorf("setgenerate = %s, %v", res, err)
	}

	// RPC errors come back as *Error with their code.
	_, err = c.Call(ctx, "getblock", strings.Repeat("ab", 32))
	var rerr *Error
	if !errors.As(err, &rerr) || rerr.Code != CodeBlockNotFound {
		t.Errorf("unknown block: %v, want *Error -5", err)
	}
	_, err = c.Call(ctx, "nosuch")
	if !errors.As(err, &rerr) || rerr.Code != CodeMethodNotFound {
		t.Errorf("unknown method: %v, want *Error -32601", err)
	}
	_, err = c.Call(ctx, "generate", "5")
	if !errors.As(err, &rerr) || rerr.Code != CodeInvalidParams {
		t.Errorf("string for an integer: %v, want *Error -32602", err)
	}

	// HTTP failures are plain errors.
	if _, err := NewClient(e.url, testUser, "wrong").Call(ctx, "getblockcount"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong password: %v, want ErrUnauthorized", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Call(cctx, "getblockcount"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}

	// Concurrent calls have distinct ids and all succeed.
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := c.Call(ctx, "getdagtips")
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestClientOversizeError(t *testing.T) {
	e := startServer(t, func(c *Config) { c.MaxBodyBytes = 100 })
	_, err := NewClient(e.url, testUser, testPass).Call(context.Background(), "help", strings.Repeat("x", 200))
	var rerr *Error
	if !errors.As(err, &rerr) || rerr.Code != CodeInvalidRequest || !strings.Contains(rerr.Message, "too large") {
		t.Errorf("oversize: %v", err)
	}
}

func TestParseCLIParams(t *testing.T) {
	hash := strings.Repeat("0a", 32)
	for _, tc := range []struct {
		method string
		args   []string
		want   []any
	}{
		{"generate", []string{"5"}, []any{int64(5)}},
		{"getblockcount", nil, []any{}},
		{"setgenerate", []string{"true", "2"}, []any{true, int64(2)}},
		{"setgenerate", []string{"0"}, []any{false}},
		{"setgenerate", []string{"false", "-1"}, []any{false, int64(-1)}},
		{"getblock", []string{hash, "false"}, []any{hash, false}},
		{"getblockhash", []string{" 12 "}, []any{int64(12)}},
		{"addnode", []string{"/ip4/1.2.3.4/tcp/9700/p2p/X", "onetry"}, []any{"/ip4/1.2.3.4/tcp/9700/p2p/X", "onetry"}},
		{"help", []string{"getblock"}, []any{"getblock"}},
		{"ban", []string{"12D3KooWX", "3600"}, []any{"12D3KooWX", int64(3600)}},
		{"renderdag", []string{"4"}, []any{int64(4)}},
	} {
		got, err := ParseCLIParams(tc.method, tc.args)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCLIParams(%s, %q) = %#v, %v; want %#v", tc.method, tc.args, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		method string
		args   []string
		msg    string
	}{
		{"nosuch", nil, `unknown method "nosuch"`},
		{"generate", nil, "wrong number of params for generate: got 0, want 1"},
		{"generate", []string{"1", "2"}, "got 2, want 1"},
		{"generate", []string{"five"}, "must be an integer, got five"},
		{"generate", []string{"0"}, "out of range: 0 (must be 1 to 10000)"},
		{"setgenerate", []string{"yes"}, `must be true or false, got "yes"`},
		{"getblock", []string{"abc"}, "is not a block hash"},
		{"addnode", []string{"x", "maybe"}, "must be one of add, remove, onetry"},
	} {
		_, err := ParseCLIParams(tc.method, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseCLIParams(%s, %q) error %v, want %q", tc.method, tc.args, err, tc.msg)
		}
	}

	// What ParseCLIParams returns, the server accepts.
	e := startServer(t, nil)
	c := NewClient(e.url, testUser, testPass)
	params, err := ParseCLIParams("getblockhash", []string{"0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(context.Background(), "getblockhash", params...); err != nil {
		t.Errorf("getblockhash via ParseCLIParams: %v", err)
	}
}
