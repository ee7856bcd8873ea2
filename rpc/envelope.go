package rpc

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// version is the envelope version of a request, which its response follows.
type version int

const (
	// v1 is btcd's and Bitcoin Core's JSON-RPC 1.0: "jsonrpc" absent or
	// "1.0"; the response always has result, error (null on success) and id.
	v1 version = 1
	// v2 is JSON-RPC 2.0: "jsonrpc":"2.0"; the response has jsonrpc, id and
	// either result or error.
	v2 version = 2
)

// nullID is the id of a response to a request whose id is unknown.
var nullID = json.RawMessage("null")

// call is one request of a body, checked for shape but not yet run.
type call struct {
	version      version
	id           json.RawMessage // as sent (string, number or null)
	notification bool            // 2.0 without id: run, never answered
	method       string
	params       json.RawMessage
	err          *Error // set when the request is malformed: answered with it
}

// rawRequest is a request object before checking. RawMessage fields are nil
// when absent and "null" when null.
type rawRequest struct {
	Jsonrpc json.RawMessage `json:"jsonrpc"`
	Method  json.RawMessage `json:"method"`
	Params  json.RawMessage `json:"params"`
	ID      json.RawMessage `json:"id"`
}

// parseBody splits a body into calls. single reports a lone request (not a
// batch). A body that is not JSON, or an empty or oversize batch, gives one
// error answered for the whole body.
func parseBody(body []byte) (calls []*call, single bool, err *Error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, false, errorf(CodeParseError, "parse error: empty request body")
	}
	if !json.Valid(body) {
		var v any
		jerr := json.Unmarshal(body, &v)
		return nil, false, errorf(CodeParseError, "parse error: %v", jerr)
	}
	if body[0] != '[' {
		return []*call{parseRequest(body)}, true, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, false, errorf(CodeParseError, "parse error: %v", err)
	}
	if len(items) == 0 {
		return nil, false, errorf(CodeInvalidRequest, "invalid request: empty batch")
	}
	if len(items) > MaxBatchLength {
		return nil, false, errorf(CodeInvalidRequest, "invalid request: batch of %d calls, the limit is %d", len(items), MaxBatchLength)
	}
	calls = make([]*call, len(items))
	for i, it := range items {
		calls[i] = parseRequest(it)
	}
	return calls, false, nil
}

// parseRequest checks one request object.
func parseRequest(raw json.RawMessage) *call {
	c := &call{version: v2, id: nullID}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		c.err = errorf(CodeInvalidRequest, "invalid request: a request must be a JSON object")
		return c
	}
	var r rawRequest
	if err := json.Unmarshal(raw, &r); err != nil {
		c.err = errorf(CodeInvalidRequest, "invalid request: %v", err)
		return c
	}
	switch string(bytes.TrimSpace(r.Jsonrpc)) {
	case "", "null", `"1.0"`:
		c.version = v1
	case `"2.0"`:
	default:
		c.err = errorf(CodeInvalidRequest, `invalid request: unsupported jsonrpc version %s (use "2.0", or omit it for 1.0)`, truncate(string(r.Jsonrpc), 20))
		return c
	}
	id := bytes.TrimSpace(r.ID)
	switch {
	case len(id) == 0:
		// JSON-RPC 2.0: a notification. 1.0: answered with id null, as
		// Bitcoin Core does (btcd would not answer at all).
		c.notification = c.version == v2
	case id[0] == '"' || id[0] == '-' || (id[0] >= '0' && id[0] <= '9') || string(id) == "null":
		c.id = json.RawMessage(id)
	default:
		c.err = errorf(CodeInvalidRequest, "invalid request: id must be a string, a number or null")
		return c
	}
	if len(r.Method) == 0 || string(r.Method) == "null" {
		c.err = errorf(CodeInvalidRequest, "invalid request: missing method")
		return c
	}
	if err := json.Unmarshal(r.Method, &c.method); err != nil {
		c.err = errorf(CodeInvalidRequest, "invalid request: method must be a string")
		return c
	}
	c.params = r.Params
	return c
}

// marshalResponse encodes the response to a call of version ver:
//
//	1.0: {"result":R,"error":E,"id":I}   (result null on error, error null on success)
//	2.0: {"jsonrpc":"2.0","result":R,"id":I} or {"jsonrpc":"2.0","error":E,"id":I}
//
// Errors whose request version is unknown (unparsable body) use 2.0, which
// 1.0 clients read too (error and id present, result absent means null).
// The result (from json.Marshal) and the id (checked when parsed) are valid
// JSON and are copied as they are, not encoded again.
func marshalResponse(ver version, id, result json.RawMessage, rerr *Error) []byte {
	if len(result) == 0 {
		result = nullID
	}
	errJSON := nullID
	if rerr != nil {
		b, err := json.Marshal(rerr)
		if err != nil {
			b = fmt.Appendf(nil, `{"code":%d,"message":"internal error"}`, CodeInternal)
		}
		errJSON = b
	}
	out := make([]byte, 0, len(result)+len(errJSON)+len(id)+48)
	if ver == v1 {
		if rerr != nil {
			result = nullID
		}
		out = append(out, `{"result":`...)
		out = append(out, result...)
		out = append(out, `,"error":`...)
		out = append(out, errJSON...)
	} else {
		out = append(out, `{"jsonrpc":"2.0",`...)
		if rerr != nil {
			out = append(out, `"error":`...)
			out = append(out, errJSON...)
		} else {
			out = append(out, `"result":`...)
			out = append(out, result...)
		}
	}
	out = append(out, `,"id":`...)
	out = append(out, id...)
	return append(out, '}')
}

// joinBatch encodes the responses of a batch as one array.
func joinBatch(out [][]byte) []byte {
	n := 2
	for _, o := range out {
		n += len(o) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, o := range out {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, o...)
	}
	return append(b, ']')
}
