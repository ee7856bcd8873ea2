package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

// Client limits.
const (
	// maxResponseBytes bounds a response the client reads (a full renderdag
	// or getblockmetrics is well under it).
	maxResponseBytes = 64 << 20
	// maxCookieBytes bounds a cookie file.
	maxCookieBytes = 1 << 10
)

// ErrUnauthorized is returned by Call when the server refuses the
// credentials (HTTP 401).
var ErrUnauthorized = errors.New("rpc: unauthorized (wrong user/password, or a stale cookie)")

// Client calls a dagnode (or any btcd-family) JSON-RPC server with 1.0-style
// requests and positional params, as btcctl does. It is safe for concurrent
// use.
type Client struct {
	url        string
	user, pass string
	// HTTPClient sends the requests; nil means a plain http.Client. Deadlines
	// come from Call's context.
	HTTPClient *http.Client
	// TLS is set by NewTLSClient.
	TLS bool
	id  atomic.Uint64
}

// NewClient returns a client of the server at url ("http://host:port"; a bare
// "host:port" gets "http://") authenticating with user and pass.
func NewClient(url, user, pass string) *Client {
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	return &Client{url: url, user: user, pass: pass}
}

// NewTLSClient is NewClient over TLS with the given configuration (see
// TLSClientConfig): a bare "host:port" gets "https://".
func NewTLSClient(url, user, pass string, tc *tls.Config) *Client {
	if !strings.Contains(url, "://") {
		url = "https://" + url
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &Client{url: url, user: user, pass: pass, TLS: true, HTTPClient: &http.Client{Transport: tr}}
}

// Credentials returns the user and password the client sends.
func (c *Client) Credentials() (user, pass string) { return c.user, c.pass }

// URL is the server's URL.
func (c *Client) URL() string { return c.url }

// ReadCookie reads the cookie file a server wrote ("__cookie__:<hex>") and
// returns its user and password.
func ReadCookie(path string) (user, pass string, err error) {
	b, err := readBounded(path, maxCookieBytes)
	if err != nil {
		return "", "", fmt.Errorf("rpc: reading cookie: %w", err)
	}
	user, pass, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok || user == "" || pass == "" {
		return "", "", fmt.Errorf("rpc: cookie file %s is not user:password", path)
	}
	return user, pass, nil
}

// clientRequest is a btcd-style 1.0 request.
type clientRequest struct {
	Jsonrpc string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
	ID      uint64 `json:"id"`
}

// clientResponse reads both 1.0 and 2.0 responses.
type clientResponse struct {
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
	ID     json.RawMessage `json:"id"`
}

// Call calls method with positional params and returns the raw result. An
// error response is returned as *Error; HTTP failures as other errors
// (ErrUnauthorized for 401).
func (c *Client) Call(ctx context.Context, method string, params ...any) (json.RawMessage, error) {
	if params == nil {
		params = []any{}
	}
	id := c.id.Add(1)
	body, err := json.Marshal(clientRequest{Jsonrpc: "1.0", Method: method, Params: params, ID: id})
	if err != nil {
		return nil, fmt.Errorf("rpc: encoding params: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("rpc: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(c.user, c.pass)
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("rpc: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("rpc: reading response: %w", err)
	}
	if len(data) > maxResponseBytes {
		return nil, fmt.Errorf("rpc: response larger than %d bytes", maxResponseBytes)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, ErrUnauthorized
	}
	var r clientResponse
	if jerr := json.Unmarshal(data, &r); jerr != nil || (r.Error == nil && r.Result == nil && resp.StatusCode != http.StatusOK) {
		return nil, fmt.Errorf("rpc: HTTP %s: %s", resp.Status, truncate(strings.TrimSpace(string(data)), 200))
	}
	if r.Error != nil {
		return nil, r.Error
	}
	if string(r.ID) != strconv.FormatUint(id, 10) {
		return nil, fmt.Errorf("rpc: response id %s does not match request id %d", truncate(string(r.ID), 40), id)
	}
	if r.Result == nil {
		r.Result = json.RawMessage("null")
	}
	return r.Result, nil
}

// ParseCLIParams converts command-line words to the params of method by its
// param spec: integers and booleans become numbers and booleans, the rest
// stay strings; so "generate 5" sends 5, not "5". It checks the count and
// every value as the server would.
func ParseCLIParams(method string, words []string) ([]any, error) {
	m := methods[method]
	if m == nil {
		return nil, fmt.Errorf("unknown method %q (dagnode rpc help lists them)", method)
	}
	if e := checkCount(m, len(words)); e != nil {
		return nil, errors.New(e.Message)
	}
	out := make([]any, len(words))
	for i, w := range words {
		p := &m.params[i]
		var v any
		var e *Error
		switch p.kind {
		case kindInt:
			v, e = p.checkInt(m, i, strings.TrimSpace(w))
		case kindBool:
			b, err := strconv.ParseBool(strings.TrimSpace(w))
			if err != nil {
				return nil, fmt.Errorf("%s: param %d (%s) must be true or false, got %q (usage: %s)", m.name, i+1, p.name, w, usage(m))
			}
			v = b
		default:
			if _, e = p.checkString(m, i, w); e == nil {
				v = w
			}
		}
		if e != nil {
			return nil, fmt.Errorf("%s (usage: %s)", e.Message, usage(m))
		}
		out[i] = v
	}
	return out, nil
}
