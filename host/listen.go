package host

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// PortInUseError reports a listen address whose port another process holds.
type PortInUseError struct {
	// Addr is the listen multiaddr as configured (or defaulted).
	Addr multiaddr.Multiaddr
	// Network is "tcp" or "udp"; Port the port number.
	Network string
	Port    int
	// Err is the operating system's error.
	Err error
}

// Error names the port, so the operator knows what to change.
func (e *PortInUseError) Error() string {
	return fmt.Sprintf("listen address %s: %s port %d is already in use by another process", e.Addr, e.Network, e.Port)
}

// Unwrap returns the operating system's error.
func (e *PortInUseError) Unwrap() error { return e.Err }

// ListenAddrs returns the multiaddrs a host of network would listen on
// given cfgAddrs (Config.ListenAddrs): those, or the network's defaults
// when empty.
func ListenAddrs(network string, cfgAddrs []string) ([]multiaddr.Multiaddr, error) {
	port := DefaultPort(network)
	if port == 0 {
		return nil, fmt.Errorf("host: unknown network %q (want mainnet, testnet, simnet or regtest)", network)
	}
	listen := cfgAddrs
	if len(listen) == 0 {
		listen = []string{
			fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", port),
			fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", port),
			fmt.Sprintf("/ip6/::/tcp/%d", port),
			fmt.Sprintf("/ip6/::/udp/%d/quic-v1", port),
		}
	}
	out := make([]multiaddr.Multiaddr, 0, len(listen))
	for _, a := range listen {
		m, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("host: listen address %q: %w", a, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// CheckListenPorts tries each listen address with a nonzero port the way
// the OS would see the node's listener (a plain TCP listen or UDP bind on
// that IP and port, without SO_REUSEPORT) and closes it at once. It returns
// a *PortInUseError for the first port another process holds, so the node
// can refuse to start before it writes anything: libp2p itself listens with
// SO_REUSEPORT, and two nodes sharing a port would start silently. Other
// bind errors (an address not on this machine, for example) are left to
// the host, which reports them when it listens. Addresses without an IP and
// a TCP or UDP port (port 0 included) are skipped.
func CheckListenPorts(addrs []multiaddr.Multiaddr) error {
	for _, a := range addrs {
		netw, hostport, err := manet.DialArgs(firstTransport(a))
		if err != nil {
			continue
		}
		host, portStr, err := net.SplitHostPort(hostport)
		if err != nil {
			continue
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port == 0 {
			continue
		}
		var berr error
		switch netw {
		case "tcp", "tcp4", "tcp6":
			l, err := net.Listen(netw, net.JoinHostPort(host, portStr))
			if err == nil {
				l.Close()
			}
			berr = err
			netw = "tcp"
		case "udp", "udp4", "udp6":
			c, err := net.ListenPacket(netw, net.JoinHostPort(host, portStr))
			if err == nil {
				c.Close()
			}
			berr = err
			netw = "udp"
		default:
			continue
		}
		if errors.Is(berr, syscall.EADDRINUSE) {
			return &PortInUseError{Addr: a, Network: netw, Port: port, Err: berr}
		}
	}
	return nil
}

// firstTransport cuts a after its first tcp or udp component
// (/ip4/x/udp/p/quic-v1 -> /ip4/x/udp/p), which is what manet.DialArgs
// understands.
func firstTransport(a multiaddr.Multiaddr) multiaddr.Multiaddr {
	for i, c := range a {
		switch c.Protocol().Code {
		case multiaddr.P_TCP, multiaddr.P_UDP:
			return a[:i+1]
		}
	}
	return a
}
