package rpc

import (
	"encoding/json"
	"testing"
)

// FuzzEnvelope feeds arbitrary bodies to the envelope and param layers: they
// must never panic, and every response they produce must be valid JSON of
// the request's version.
func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"method":"getblockhash","params":[1],"id":1}`,
		`{"jsonrpc":"2.0","method":"getblock","params":{"hash":"00","verbose":false},"id":"a"}`,
		`[{"method":"generate","params":[1e3]},{"jsonrpc":"2.0","method":"ban","params":["x",-5],"id":null},7]`,
		`{"jsonrpc":"1.0","method":"setgenerate","params":[true,null],"id":-0.5}`,
		`{"method":"addnode","params":["a","remove"],"id":[]}`,
		`[]`, `{`, `"x"`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		calls, _, err := parseBody(body)
		if err != nil {
			if b := marshalResponse(v2, nullID, nil, err); !json.Valid(b) {
				t.Fatalf("invalid JSON for a body error: %s", b)
			}
			return
		}
		for _, c := range calls {
			rerr := c.err
			if rerr == nil {
				if m := methods[c.method]; m != nil {
					_, rerr = parseParams(m, c.params)
				}
			}
			b := marshalResponse(c.version, c.id, json.RawMessage(`1`), rerr)
			if !json.Valid(b) {
				t.Fatalf("invalid response JSON %s for %q", b, body)
			}
			var r map[string]json.RawMessage
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			if _, ok := r["id"]; !ok {
				t.Fatalf("response without id: %s", b)
			}
			if _, v2 := r["jsonrpc"]; v2 == (c.version == v1) {
				t.Fatalf("version %d answered as %s", c.version, b)
			}
		}
	})
}
