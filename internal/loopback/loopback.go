// Package loopback tells whether listeners and HTTP Host headers name this
// machine, for the servers that treat loopback differently (the RPC server
// and the dashboard: TLS off loopback, DNS-rebinding checks on it).
//
// It imports only the standard library and must stay a leaf: dag, keys and
// metrics may not import it, but every server may.
package loopback

import (
	"net"
	"strings"
)

// Addr reports whether a listener's address is a loopback address.
func Addr(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Host reports whether an HTTP Host names this machine: localhost or a
// loopback address, with or without a port.
func Host(h string) bool {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
