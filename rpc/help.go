package rpc

import (
	"context"
	"fmt"
	"strings"
)

// usage is a method's one-line usage: required params bare (strings quoted),
// optional ones in parentheses with their default.
func usage(m *method) string {
	var b strings.Builder
	b.WriteString(m.name)
	for _, p := range m.params {
		b.WriteByte(' ')
		name := p.name
		if p.kind == kindString || p.kind == kindHash {
			name = `"` + name + `"`
		}
		if len(p.enum) > 0 {
			name = `"` + strings.Join(p.enum, "|") + `"`
		}
		switch {
		case !p.optional:
			b.WriteString(name)
		case p.def != nil:
			fmt.Fprintf(&b, "(%s=%v)", name, p.def)
		default:
			fmt.Fprintf(&b, "(%s)", name)
		}
	}
	return b.String()
}

// helpAll lists every method, one usage line each, grouped by topic.
func helpAll() string {
	var b strings.Builder
	cat := ""
	for _, m := range methodsSorted {
		if m.category != cat {
			if cat != "" {
				b.WriteByte('\n')
			}
			cat = m.category
			fmt.Fprintf(&b, "== %s ==\n", cat)
		}
		b.WriteString(usage(m))
		b.WriteByte('\n')
	}
	b.WriteString("\nhelp METHOD describes one method.")
	return b.String()
}

// helpMethod describes one method: usage, summary, params, result.
func helpMethod(m *method) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n%s\n", usage(m), m.summary)
	if len(m.params) > 0 {
		b.WriteString("\nArguments:\n")
		for i, p := range m.params {
			var attrs []string
			attrs = append(attrs, p.kind.String())
			if p.optional {
				attrs = append(attrs, "optional")
				if p.def != nil {
					attrs = append(attrs, fmt.Sprintf("default %v", p.def))
				}
			} else {
				attrs = append(attrs, "required")
			}
			if p.kind == kindInt {
				attrs = append(attrs, fmt.Sprintf("%d to %d", p.min, p.max))
			}
			if len(p.enum) > 0 {
				attrs = append(attrs, "one of "+strings.Join(p.enum, ", "))
			}
			fmt.Fprintf(&b, "%d. %s (%s): %s\n", i+1, p.name, strings.Join(attrs, ", "), p.help)
		}
	}
	fmt.Fprintf(&b, "\nResult:\n%s", m.result)
	return b.String()
}

func (s *Server) handleHelp(_ context.Context, a args) (any, error) {
	if !a.given(0) || a.str(0) == "" {
		return helpAll(), nil
	}
	m := methods[a.str(0)]
	if m == nil {
		return nil, errorf(CodeInvalidParameter, "unknown method: %q (help lists them)", truncate(a.str(0), 80))
	}
	return helpMethod(m), nil
}
