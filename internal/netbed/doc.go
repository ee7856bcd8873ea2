// Package netbed builds NAT test beds out of Linux network namespaces, so that tests can prove NAT
// traversal (AutoNAT, circuit relay, DCUtR hole punching, UPnP/NAT-PMP) between real processes.
//
// # The bed
//
// New creates "the internet": a namespace holding bridge br0 on 11.0.0.1/16. 11.0.0.0/8 is public
// address space to libp2p (manet.IsPublicAddr), unlike private, shared or documentation ranges, so nodes
// in the bed see each other's addresses as public. The internet namespace forwards nothing and has no
// route out: it is the default gateway of the bed's public hosts and routers only so that traffic to
// any address outside the bed dies there.
//
//	AddPublic  host namespace on the bridge: 11.0.0.10, 11.0.0.11, ...
//	AddHome    router namespace (WAN 11.0.1.N on the bridge, LAN bridge 192.168.N.1/24) and a home host
//	           namespace behind it (192.168.N.2/24, default route via the router)
//	AddHost    another host on a home's LAN (192.168.N.3, .4, ...), behind the same router; hosts of
//	           one LAN reach each other directly and see each other's multicast (mDNS)
//	AddTUN     host namespace with the next public address whose eth0 is a TUN device, not a veth on
//	           the bridge: the returned file carries its packets, so a program reading and writing
//	           several such files is their network (a WAN with delay and rate per link, without
//	           sch_netem: package wire, which test/netbench and dagnode devnet --latency run)
//
// A router masquerades on its WAN, either keeping source ports (EndpointIndependent, Linux's default) or
// with a fresh random port per flow (Symmetric), behind a stateful nftables firewall that drops (never
// rejects) unsolicited inbound traffic. UPnP(true) runs miniupnpd on the router (UPnP IGD and NAT-PMP on
// the LAN, HTTP on port UPnPHTTPPort) whose mappings really forward inbound traffic to the home host.
// Home.ChangePublicIP re-addresses a router as an ISP would. All namespaces are IPv4-only.
//
// # Using it
//
// Tests skip when Available (or MiniUPnPdAvailable) returns an error: beds need root, iproute2 and
// nftables. Processes run in a namespace via Host.Command and Bed.Track; in-process sockets via
// Host.DialContext, Host.Listen, Host.ListenPacket and Host.HTTPClient, which create the socket on a
// thread that has entered the namespace (the socket stays there, so it is then used normally). Those
// take literal IP addresses only, since name resolution would run outside the namespace.
//
// A program rather than a test (dagnode devnet --latency) builds a bed of TUN hosts with Open and
// OpenTUN, which return errors instead of failing a test and need only root, iproute2 and
// /dev/net/tun (TUNAvailable says what is missing), and tears it down with Close.
//
// New registers a cleanup that stops tracked processes and miniupnpd (SIGTERM, SIGKILL after 5 s) and
// deletes every namespace of the bed, which removes its veths and bridge, also when the test fails or a
// constructor fails halfway. Bed names carry the process id, so beds run in parallel, in one process or
// many.
//
// # What it must not do
//
// netbed never changes the root namespace's network configuration: veths are created directly in their
// target namespaces (ip link add A netns X type veth peer name B netns Y), sysctls and firewall rules are
// only set inside the bed's namespaces, and no route leads out of the bed, so test traffic never leaves
// it. It only ends processes it started or was given with Track, by their process handles. The only
// mark left on the host is /run/netns, which `ip netns add` itself manages.
package netbed
