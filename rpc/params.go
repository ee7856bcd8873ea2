package rpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/dagnode/dagnode/dag"
)

// kind is the JSON type of a param.
type kind int

const (
	kindString kind = iota
	kindInt
	kindBool
	kindHash // a string of 64 hex digits, handed to handlers as a dag.Hash
)

func (k kind) String() string {
	switch k {
	case kindInt:
		return "integer"
	case kindBool:
		return "boolean"
	default: // kindString, kindHash
		return "string"
	}
}

func (k kind) withArticle() string {
	if k == kindInt {
		return "an integer"
	}
	return "a " + k.String()
}

// param describes one positional param of a method. The table of methods
// holds these; the server checks requests against them and ParseCLIParams
// converts command-line words with them.
type param struct {
	name     string
	kind     kind
	optional bool
	// def is the value a handler sees when an optional param is omitted or
	// null; nil means the handler checks args.given.
	def any
	// min and max bound an integer, inclusive.
	min, max int64
	// enum lists the allowed values of a string.
	enum []string
	help string
}

func reqString(name, help string) param { return param{name: name, kind: kindString, help: help} }
func reqHash(name, help string) param   { return param{name: name, kind: kindHash, help: help} }
func reqBool(name, help string) param   { return param{name: name, kind: kindBool, help: help} }

func reqInt(name string, lo, hi int64, help string) param {
	return param{name: name, kind: kindInt, min: lo, max: hi, help: help}
}

func reqEnum(name string, values []string, help string) param {
	return param{name: name, kind: kindString, enum: values, help: help}
}

func optString(name, help string) param {
	return param{name: name, kind: kindString, optional: true, help: help}
}

func optBool(name string, def bool, help string) param {
	return param{name: name, kind: kindBool, optional: true, def: def, help: help}
}

// optInt is an optional integer; def may be nil (the handler checks given).
func optInt(name string, def any, lo, hi int64, help string) param {
	return param{name: name, kind: kindInt, optional: true, def: def, min: lo, max: hi, help: help}
}

// args are a call's params after checking: string, int64, bool or dag.Hash
// values, nil for an omitted optional param without a default.
type args []any

func (a args) given(i int) bool { return i < len(a) && a[i] != nil }

func (a args) str(i int) string {
	s, _ := a[i].(string)
	return s
}

func (a args) int(i int) int64 {
	n, _ := a[i].(int64)
	return n
}

func (a args) bool(i int) bool {
	b, _ := a[i].(bool)
	return b
}

func (a args) hash(i int) dag.Hash {
	h, _ := a[i].(dag.Hash)
	return h
}

// parseParams checks raw params (absent, null, an array, or an object of
// named params) against m's spec.
func parseParams(m *method, raw json.RawMessage) (args, *Error) {
	raw = bytes.TrimSpace(raw)
	var list []json.RawMessage
	switch {
	case len(raw) == 0 || string(raw) == "null":
	case raw[0] == '[':
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, errorf(CodeInvalidParams, "%s: params: %v", m.name, err)
		}
	case raw[0] == '{':
		var named map[string]json.RawMessage
		if err := json.Unmarshal(raw, &named); err != nil {
			return nil, errorf(CodeInvalidParams, "%s: params: %v", m.name, err)
		}
		list = make([]json.RawMessage, len(m.params))
		for name, v := range named {
			i := m.paramIndex(name)
			if i < 0 {
				return nil, errorf(CodeInvalidParams, "%s has no param %q (usage: %s)", m.name, name, usage(m))
			}
			list[i] = v
		}
		for len(list) > 0 && list[len(list)-1] == nil {
			list = list[:len(list)-1]
		}
	default:
		return nil, errorf(CodeInvalidParams, "%s: params must be an array or an object", m.name)
	}
	if err := checkCount(m, len(list)); err != nil {
		return nil, err
	}
	out := make(args, len(m.params))
	for i, p := range m.params {
		var v json.RawMessage
		if i < len(list) {
			v = bytes.TrimSpace(list[i])
		}
		if len(v) == 0 || string(v) == "null" {
			if !p.optional {
				return nil, errorf(CodeInvalidParams, "%s: param %d (%s) is required (usage: %s)", m.name, i+1, p.name, usage(m))
			}
			out[i] = p.def
			continue
		}
		val, err := p.decode(m, i, v)
		if err != nil {
			return nil, err
		}
		out[i] = val
	}
	return out, nil
}

func checkCount(m *method, n int) *Error {
	required := 0
	for _, p := range m.params {
		if !p.optional {
			required++
		}
	}
	if n >= required && n <= len(m.params) {
		return nil
	}
	var want string
	switch {
	case required == len(m.params):
		want = strconv.Itoa(required)
	default:
		want = fmt.Sprintf("%d to %d", required, len(m.params))
	}
	return errorf(CodeInvalidParams, "wrong number of params for %s: got %d, want %s (usage: %s)", m.name, n, want, usage(m))
}

// decode converts the JSON value v of param i.
func (p *param) decode(m *method, i int, v json.RawMessage) (any, *Error) {
	typeErr := func() *Error {
		return errorf(CodeInvalidParams, "%s: param %d (%s) must be %s, got %s", m.name, i+1, p.name, p.kind.withArticle(), jsonType(v))
	}
	switch p.kind {
	case kindBool:
		switch string(v) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, typeErr()
	case kindInt:
		if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
			return nil, typeErr()
		}
		return p.checkInt(m, i, string(v))
	default: // kindString, kindHash
		if v[0] != '"' {
			return nil, typeErr()
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, typeErr()
		}
		return p.checkString(m, i, s)
	}
}

// checkInt parses the integer text s and checks its range.
func (p *param) checkInt(m *method, i int, s string) (any, *Error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return nil, errorf(CodeOutOfRange, "%s: param %d (%s) out of range: %s (must be %d to %d)", m.name, i+1, p.name, s, p.min, p.max)
		}
		return nil, errorf(CodeInvalidParams, "%s: param %d (%s) must be an integer, got %s", m.name, i+1, p.name, s)
	}
	if n < p.min || n > p.max {
		return nil, errorf(CodeOutOfRange, "%s: param %d (%s) out of range: %d (must be %d to %d)", m.name, i+1, p.name, n, p.min, p.max)
	}
	return n, nil
}

// checkString checks a string against the param's kind and choices.
func (p *param) checkString(m *method, i int, s string) (any, *Error) {
	if p.kind == kindHash {
		h, err := dag.ParseHash(s)
		if err != nil {
			return nil, errorf(CodeInvalidParameter, "%s: param %d (%s) is not a block hash (want 64 hex digits): %q", m.name, i+1, p.name, truncate(s, 80))
		}
		return h, nil
	}
	if len(p.enum) > 0 {
		for _, e := range p.enum {
			if s == e {
				return s, nil
			}
		}
		return nil, errorf(CodeInvalidParameter, "%s: param %d (%s) must be one of %s, got %q", m.name, i+1, p.name, strings.Join(p.enum, ", "), truncate(s, 80))
	}
	return s, nil
}

// jsonType names the JSON type of a value for error messages.
func jsonType(v json.RawMessage) string {
	switch v[0] {
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case '[':
		return "array"
	case '{':
		return "object"
	case 'n':
		return "null"
	default:
		if strings.ContainsAny(string(v), ".eE") {
			return "number " + truncate(string(v), 40)
		}
		return "integer"
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
