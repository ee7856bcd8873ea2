package netbed

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
)

// NAT is the kind of address translation a home router does.
type NAT int

const (
	// EndpointIndependent is Linux's default masquerade, which keeps the source port when it can: one
	// internal address and port maps to the same external port whatever the destination
	// (endpoint-independent mapping, RFC 4787). Filtering is address-and-port-dependent, as conntrack
	// only lets in replies to flows the home host opened.
	EndpointIndependent NAT = iota
	// Symmetric is masquerade fully-random: every new flow, so every new destination, gets a new random
	// external port (address-and-port-dependent mapping). Hole punching through two of them fails.
	Symmetric
)

// String returns the NAT kind's name.
func (n NAT) String() string {
	switch n {
	case EndpointIndependent:
		return "endpoint-independent"
	case Symmetric:
		return "symmetric"
	}
	return "NAT(" + strconv.Itoa(int(n)) + ")"
}

// homeConfig holds AddHome's optional settings.
type homeConfig struct {
	upnp bool
}

// HomeOption tunes AddHome.
type HomeOption func(*homeConfig)

// UPnP runs miniupnpd on the home router when enabled (default: disabled): UPnP IGD and NAT-PMP on the
// LAN, mapping ports 1024-65535 for the home host only (secure mode). Check MiniUPnPdAvailable first.
func UPnP(enabled bool) HomeOption {
	return func(c *homeConfig) { c.upnp = enabled }
}

// Home is a home network: a router namespace between the internet bridge and a LAN, and the home host
// (the embedded Host) on that LAN.
type Home struct {
	*Host
	// Router is the router's namespace; its IP is the WAN (public) address.
	Router *Host

	name    string
	nat     NAT
	lanNet  int // N in 192.168.N.0/24
	gateway net.IP
	upnp    *daemon

	mu    sync.Mutex
	hosts int // hosts on the LAN, the embedded one included
}

// PublicIP returns the router's current WAN address.
func (h *Home) PublicIP() net.IP { return h.Router.IP() }

// Gateway returns the router's LAN address (192.168.N.1), the home host's default gateway and, with
// UPnP, the NAT-PMP server and UPnP IGD address.
func (h *Home) Gateway() net.IP { return append(net.IP(nil), h.gateway...) }

// NAT returns the kind of translation the router does.
func (h *Home) NAT() NAT { return h.nat }

// UPnPLog returns what miniupnpd has logged so far, or "" without UPnP. The bed also prints it when
// the test fails.
func (h *Home) UPnPLog() string {
	if h.upnp == nil {
		return ""
	}
	return h.upnp.log.String()
}

// AddHome adds a home network: a router namespace (WAN on the bridge with the next public address,
// 11.0.1.1, 11.0.1.2, ...; LAN bridge "lan" on 192.168.N.1/24) and a host namespace behind it
// (192.168.N.2/24, default route via the router), N counting homes from 1. Home.AddHost puts more hosts
// on the same LAN.
//
// The router forwards with masquerade on the WAN of the given kind and a stateful nftables firewall:
// forwarding is dropped except established/related flows, new LAN-to-WAN flows and (with UPnP) mapped
// ports; input from the WAN is dropped unless established/related, input from the LAN is accepted.
// Unsolicited inbound traffic to the home host is therefore dropped, never rejected.
func (b *Bed) AddHome(name string, nat NAT, opts ...HomeOption) *Home {
	b.t.Helper()
	var cfg homeConfig
	for _, o := range opts {
		o(&cfg)
	}
	h, err := b.addHome(name, nat, cfg)
	if err != nil {
		b.t.Fatalf("netbed.AddHome(%q): %v", name, err)
	}
	b.t.Logf("netbed: home %s (%s NAT, UPnP %t): router %s in %s, host %s in %s",
		name, nat, cfg.upnp, h.PublicIP(), h.Router.Name(), h.IP(), h.Name())
	return h
}

func (b *Bed) addHome(name string, nat NAT, cfg homeConfig) (*Home, error) {
	if nat != EndpointIndependent && nat != Symmetric {
		return nil, fmt.Errorf("unknown NAT kind %d", int(nat))
	}
	if cfg.upnp {
		if err := MiniUPnPdAvailable(); err != nil {
			return nil, err
		}
	}
	if err := b.reserve(name); err != nil {
		return nil, err
	}
	b.mu.Lock()
	if b.homes >= maxHomes {
		b.mu.Unlock()
		return nil, fmt.Errorf("more than %d homes", maxHomes)
	}
	b.homes++
	n := b.homes
	b.mu.Unlock()
	wan, err := b.nextWAN()
	if err != nil {
		return nil, err
	}

	h := &Home{
		name:    name,
		nat:     nat,
		lanNet:  n,
		gateway: net.IPv4(192, 168, byte(n), 1).To4(),
		hosts:   1,
	}
	h.Router = newHost(b, b.tag+"-rtr-"+name, wan)
	h.Host = newHost(b, b.tag+"-home-"+name, net.IPv4(192, 168, byte(n), 2).To4())
	port := "r" + strconv.Itoa(n)
	lan := fmt.Sprintf("192.168.%d.1/24", n)

	if err := b.addNamespaces(h.Router.ns); err != nil {
		return nil, err
	}
	if err := b.isolate(h.Router.ns); err != nil {
		return nil, err
	}
	if err := b.step("home-host"); err != nil {
		return nil, err
	}
	if err := b.addNamespaces(h.Host.ns); err != nil {
		return nil, err
	}
	if err := b.isolate(h.Host.ns); err != nil {
		return nil, err
	}
	if err := b.ipRoot(
		fmt.Sprintf("link add %s netns %s type veth peer name wan netns %s", port, b.netNS, h.Router.ns),
	); err != nil {
		return nil, err
	}
	// The firewall goes in before forwarding is switched on, so nothing passes unfiltered.
	if err := b.nftIn(h.Router.ns, routerRules(nat)); err != nil {
		return nil, err
	}
	if err := writeSysctl(nsPath(h.Router.ns), "net/ipv4/ip_forward", "1"); err != nil {
		return nil, fmt.Errorf("router %s: %w", h.Router.ns, err)
	}
	// LAN traffic between home hosts is switched by the bridge, never
	// routed: keep it out of the router's firewall even where br_netfilter
	// is loaded (its sysctls are per namespace).
	for _, key := range []string{"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-arptables"} {
		if err := writeSysctl(nsPath(h.Router.ns), key, "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("router %s: %w", h.Router.ns, err)
		}
	}
	if err := b.ipIn(h.Router.ns,
		"link set lo up",
		"link set wan up",
		// The LAN is a bridge (a home switch): multicast (mDNS) is flooded
		// to every port, as no IGMP querier runs.
		"link add lan type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
		"link set lan up",
		fmt.Sprintf("addr add %s/%d dev wan", wan, internetPrefix),
		"addr add "+lan+" dev lan",
		fmt.Sprintf("route add default via %s dev wan", gatewayIP),
	); err != nil {
		return nil, err
	}
	if err := h.attach(h.Host, 1); err != nil {
		return nil, err
	}
	if err := b.ipIn(b.netNS, "link set "+port+" master "+bridgeName, "link set "+port+" up"); err != nil {
		return nil, err
	}
	if cfg.upnp {
		d, err := b.startMiniUPnPd(h)
		if err != nil {
			return nil, err
		}
		h.upnp = d
	}
	return h, nil
}

// attach connects host to the LAN bridge (port lan<i> on the router, eth0 in the host) with its address
// and a default route via the router.
func (h *Home) attach(host *Host, i int) error {
	b := h.Router.bed
	lanPort := "lan" + strconv.Itoa(i)
	if err := b.ipRoot(fmt.Sprintf("link add %s netns %s type veth peer name eth0 netns %s", lanPort, h.Router.ns, host.ns)); err != nil {
		return err
	}
	if err := b.ipIn(h.Router.ns, "link set "+lanPort+" master lan", "link set "+lanPort+" up"); err != nil {
		return err
	}
	return b.ipIn(host.ns,
		"link set lo up",
		"link set eth0 up",
		fmt.Sprintf("addr add %s/24 dev eth0", host.IP()),
		fmt.Sprintf("route add default via %s dev eth0", h.gateway),
	)
}

// AddHost adds another host to the home's LAN, behind the same router and NAT: 192.168.N.3, .4, ...
// (at most maxLANHosts hosts per home). Hosts on one LAN reach each other directly on their private
// addresses, and see each other's multicast (mDNS). UPnP mappings, if any, are only for the first host.
func (h *Home) AddHost(name string) *Host {
	b := h.Router.bed
	b.t.Helper()
	host, err := h.addHost(name)
	if err != nil {
		b.t.Fatalf("netbed: AddHost(%q) to home %s: %v", name, h.name, err)
	}
	b.t.Logf("netbed: home %s: host %s %s in %s", h.name, name, host.IP(), host.Name())
	return host
}

func (h *Home) addHost(name string) (*Host, error) {
	b := h.Router.bed
	if err := b.reserve(name); err != nil {
		return nil, err
	}
	h.mu.Lock()
	if h.hosts >= maxLANHosts {
		h.mu.Unlock()
		return nil, fmt.Errorf("more than %d hosts on one LAN", maxLANHosts)
	}
	h.hosts++
	i := h.hosts
	h.mu.Unlock()
	host := newHost(b, b.tag+"-home-"+name, net.IPv4(192, 168, byte(h.lanNet), byte(1+i)).To4())
	if err := b.addNamespaces(host.ns); err != nil {
		return nil, err
	}
	if err := b.isolate(host.ns); err != nil {
		return nil, err
	}
	if err := h.attach(host, i); err != nil {
		return nil, err
	}
	return host, nil
}

// maxLANHosts bounds the hosts on one home LAN.
const maxLANHosts = 16

// routerRules is a home router's nftables rule set. It lives in table inet "filter" with the chain names
// miniupnpd 2.3's nftables backend uses by default (it adds rules to, but never creates, the chains
// miniupnpd, prerouting_miniupnpd and postrouting_miniupnpd of table inet filter); without UPnP those
// chains just stay empty.
func routerRules(nat NAT) string {
	masq := "masquerade"
	if nat == Symmetric {
		masq = "masquerade fully-random"
	}
	return `table inet filter {
	chain miniupnpd {
	}
	chain prerouting_miniupnpd {
	}
	chain postrouting_miniupnpd {
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump prerouting_miniupnpd
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		jump postrouting_miniupnpd
		oifname "wan" ` + masq + `
	}
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state established,related accept
		ct state invalid drop
		iifname "lan" accept
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname "lan" oifname "wan" accept
		iifname "lan" oifname "lan" accept
		iifname "wan" oifname "lan" jump miniupnpd
	}
}
`
}

// ChangePublicIP gives the router a new WAN address (the next free public one), as an ISP re-assigning a
// home's address would: the old address is removed, NAT and firewall keep working (their rules name
// interfaces, not addresses), and the router's conntrack table is flushed, so existing flows through
// the NAT break. It returns the new address.
func (h *Home) ChangePublicIP() net.IP {
	b := h.Router.bed
	b.t.Helper()
	ip, err := h.changePublicIP()
	if err != nil {
		b.t.Fatalf("netbed: ChangePublicIP of home %s: %v", h.name, err)
	}
	return ip
}

func (h *Home) changePublicIP() (net.IP, error) {
	b := h.Router.bed
	old := h.Router.IP()
	ip, err := b.nextWAN()
	if err != nil {
		return nil, err
	}
	if err := b.ipIn(h.Router.ns,
		fmt.Sprintf("addr del %s/%d dev wan", old, internetPrefix),
		fmt.Sprintf("addr add %s/%d dev wan", ip, internetPrefix),
		fmt.Sprintf("route replace default via %s dev wan", gatewayIP),
	); err != nil {
		return nil, err
	}
	h.Router.setIP(ip)
	conntrack, err := findTool("conntrack")
	if err != nil {
		// Masquerade already dropped the flows translated to the removed address.
		b.t.Logf("netbed: home %s: conntrack table not flushed: %v", h.name, err)
	} else if err := runTool("", b.tools.ip, "netns", "exec", h.Router.ns, conntrack, "-F"); err != nil {
		return nil, err
	}
	b.t.Logf("netbed: home %s: public address %s -> %s", h.name, old, ip)
	return ip, nil
}
