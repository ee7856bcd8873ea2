package rpc

import (
	"context"
	"encoding/json"
	"runtime/debug"
	"slices"
)

// part names an optional part of the node a method needs.
type part int

const (
	partNone part = iota
	partSubmitter
	partMiner
	partMetrics
	partPeers
	partNet
	partSync
	partStop
)

// what says, for the "not available" message, what the node runs without.
func (p part) what() string {
	switch p {
	case partSubmitter:
		return "a block submission path"
	case partMiner:
		return "a miner"
	case partMetrics:
		return "metrics"
	case partPeers, partNet:
		return "networking"
	case partSync:
		return "a sync manager"
	case partStop:
		return "a stop hook"
	}
	return "it"
}

// method is one entry of the method table: its name, params, help and
// handler. Handlers get params already checked against the spec.
type method struct {
	name     string
	category string
	params   []param
	// summary is the one-line description; result describes the result for
	// help METHOD.
	summary string
	result  string
	// needs is the optional part of Config the method cannot run without.
	needs part
	// long methods (generate) run under Config.GenerateTimeout instead of
	// Config.RequestTimeout.
	long bool
	run  func(s *Server, ctx context.Context, a args) (any, error)
}

func (m *method) paramIndex(name string) int {
	for i, p := range m.params {
		if p.name == name {
			return i
		}
	}
	return -1
}

// Method categories, in the order help lists them.
var categories = []string{"control", "dag", "mining", "network", "sync"}

// methodList is every method, grouped by topic (each methods_*.go file
// contributes its own).
func methodList() []*method {
	var ms []*method
	for _, group := range [][]*method{nodeMethods(), chainMethods(), miningMethods(), netMethods(), syncMethods()} {
		ms = append(ms, group...)
	}
	slices.SortStableFunc(ms, func(a, b *method) int {
		if c := slices.Index(categories, a.category) - slices.Index(categories, b.category); c != 0 {
			return c
		}
		if a.name < b.name {
			return -1
		}
		if a.name > b.name {
			return 1
		}
		return 0
	})
	return ms
}

// The method table, built once by init (help's handler reads it, so it
// cannot be a variable initializer) and never modified: methodsSorted in help
// order, methods by name.
var (
	methodsSorted []*method
	methods       map[string]*method
)

func init() {
	methodsSorted = methodList()
	methods = indexMethods(methodsSorted)
}

func indexMethods(ms []*method) map[string]*method {
	idx := make(map[string]*method, len(ms))
	for _, m := range ms {
		if _, dup := idx[m.name]; dup {
			panic("rpc: duplicate method " + m.name)
		}
		idx[m.name] = m
	}
	return idx
}

// has reports whether the part p of the node is wired.
func (s *Server) has(p part) bool {
	switch p {
	case partSubmitter:
		return s.cfg.Submitter != nil
	case partMiner:
		return s.cfg.Miner != nil
	case partMetrics:
		return s.cfg.Metrics != nil
	case partPeers:
		return s.cfg.Peers != nil
	case partNet:
		return s.cfg.Net != nil
	case partSync:
		return s.cfg.Sync != nil
	case partStop:
		return s.cfg.Stop != nil
	}
	return true
}

// invoke runs one call: look up, check params, run the handler (recovering
// from a panic) and marshal its result.
func (s *Server) invoke(ctx context.Context, name string, rawParams json.RawMessage) (result json.RawMessage, rpcErr *Error) {
	m := methods[name]
	if m == nil {
		return nil, errorf(CodeMethodNotFound, "method not found: %q (see help)", truncate(name, 80))
	}
	a, perr := parseParams(m, rawParams)
	if perr != nil {
		return nil, perr
	}
	if !s.has(m.needs) {
		return nil, notAvailable(m.name, m.needs.what())
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("rpc handler panicked", "method", m.name, "panic", r, "stack", string(debug.Stack()))
			result, rpcErr = nil, errorf(CodeInternal, "internal error in %s", m.name)
		}
	}()
	res, err := m.run(s, ctx, a)
	if err != nil {
		return nil, toError(err, CodeInternal)
	}
	if raw, ok := res.(json.RawMessage); ok {
		return raw, nil // already encoded by its source (getblockmetrics' snapshot), valid JSON
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, errorf(CodeInternal, "internal error: encoding the result of %s: %v", m.name, err)
	}
	return b, nil
}
