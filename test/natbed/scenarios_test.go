package natbed

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dagnode/dagnode/internal/netbed"
)

// Step deadlines. AutoNAT's verdict "private" waits for a dial-back that the
// NAT drops (the service's dial timeout is 15 s); a hole punch may take a
// direct dial (10 s) and three rounds.
const (
	reachDeadline = 40 * time.Second
	relayDeadline = 90 * time.Second
	punchDeadline = 90 * time.Second
	blockDeadline = 30 * time.Second
)

// startPublic starts the bed's public node: the network's first node, with
// default flags (no --reachability). It learns that it is public once home
// nodes have connected: their AutoNAT v2 servers dial its address back
// (publicServes waits for that).
func startPublic(t testing.TB, bed *netbed.Bed, h *netbed.Host) *daemon {
	return startDaemon(t, bed, h, "public")
}

// startPublicForced starts a public node with --reachability public, for
// the scenarios with a single home node: that node is the public node's
// only AutoNAT v2 server, which libp2p asks once every 2 minutes, so with
// the defaults the public node would need over 2 minutes (two agreeing
// dial-backs) before it serves a relay. Those scenarios are about the home
// node; learning without the flag is shown by homePair and the LAN
// scenario, with two or more home nodes.
func startPublicForced(t testing.TB, bed *netbed.Bed, h *netbed.Host) *daemon {
	p := startDaemon(t, bed, h, "public", "--reachability", "public")
	deadline := time.Now().Add(10 * time.Second)
	for ok, st := reach(p, "public")(); !ok; ok, st = reach(p, "public")() {
		if time.Now().After(deadline) {
			t.Fatalf("public node: %s", st)
		}
		time.Sleep(50 * time.Millisecond) // the event reaches the node's monitor asynchronously
	}
	return p
}

// publicServes is a step condition: d reports reachability public, and so
// serves the relay and the DHT.
func publicServes(d *daemon) func() (bool, string) {
	return func() (bool, string) {
		ni, err := d.netInfo()
		if err != nil {
			return false, err.Error()
		}
		ok := ni.Reachability == "public" && ni.RelayService == "serving" && ni.DHTMode == "server"
		return ok, fmt.Sprintf("reachability %s (%s), relay service %q, DHT %q, reachable %v",
			ni.Reachability, ni.ReachabilityBasis, ni.RelayService, ni.DHTMode, ni.ReachableAddrs)
	}
}

// bootstrapArgs returns --bootstrap flags with p's public addresses.
func bootstrapArgs(t testing.TB, p *daemon) []string {
	t.Helper()
	ni, err := p.netInfo()
	if err != nil {
		t.Fatal(err)
	}
	addrs := addrsWith(ni.ListenAddrs, "/ip4/"+p.host.IP().String()+"/")
	if len(addrs) == 0 {
		t.Fatalf("public node lists no address on %s: %v", p.host.IP(), ni.ListenAddrs)
	}
	var args []string
	for _, a := range addrs {
		args = append(args, "--bootstrap", a)
	}
	return args
}

// reach is a step condition: d's reachability is want.
func reach(d *daemon, want string) func() (bool, string) {
	return func() (bool, string) {
		ni, err := d.netInfo()
		if err != nil {
			return false, err.Error()
		}
		return ni.Reachability == want, fmt.Sprintf("reachability %s (confidence %d)", ni.Reachability, ni.ReachabilityConfidence)
	}
}

// relayAddr is a step condition: d holds a relay address; it is stored in
// *out.
func relayAddr(d *daemon, out *string) func() (bool, string) {
	return func() (bool, string) {
		ni, err := d.netInfo()
		if err != nil {
			return false, err.Error()
		}
		if len(ni.RelayAddrs) == 0 {
			return false, fmt.Sprintf("no relay address; reachability %s", ni.Reachability)
		}
		*out = ni.RelayAddrs[0]
		return true, ""
	}
}

// connected is a step condition: from has a connection to to; relayed
// says which kind ("" for any).
func connected(from, to *daemon, kind string) func() (bool, string) {
	return func() (bool, string) {
		p, ok, err := from.peer(to.peerID)
		switch {
		case err != nil:
			return false, err.Error()
		case !ok:
			return false, "not connected"
		}
		return kind == "" || p.Connection == kind, fmt.Sprintf("connection %s %+v", p.Connection, p.Connections)
	}
}

// mine has d generate n blocks and returns their hashes.
func mine(t testing.TB, d *daemon, n int) []string {
	t.Helper()
	var hashes []string
	d.mustCall(&hashes, "generate", n)
	if len(hashes) != n {
		t.Fatalf("%s: generate %d returned %d blocks", d.name, n, len(hashes))
	}
	return hashes
}

// hasBlocks is a step condition: d has every block of hashes.
func hasBlocks(d *daemon, hashes []string) func() (bool, string) {
	return func() (bool, string) {
		for i, h := range hashes {
			if !d.hasBlock(h) {
				return false, fmt.Sprintf("%d of %d blocks", i, len(hashes))
			}
		}
		return true, ""
	}
}

// homePair starts a public node and two home nodes behind NATs of kind nat,
// waits until both know they are private and hold a relay address, and
// returns them with A's relay address.
func homePair(t testing.TB, tag string, nat netbed.NAT, homeArgs ...string) (s *steps, p, a, b *daemon, ha, hb *netbed.Home, relayA string) {
	bed := netbed.New(t, tag)
	pub := bed.AddPublic("pub")
	ha = bed.AddHome("a", nat)
	hb = bed.AddHome("b", nat)
	s = newSteps(t)
	p = startPublic(t, bed, pub)
	boot := append(bootstrapArgs(t, p), homeArgs...)
	a = startDaemon(t, bed, ha.Host, "homeA", boot...)
	b = startDaemon(t, bed, hb.Host, "homeB", boot...)
	s.wait("public node: public, serving relay and DHT", reachDeadline, publicServes(p))
	s.wait("home A: private detected", reachDeadline, reach(a, "private"))
	s.wait("home B: private detected", reachDeadline, reach(b, "private"))
	s.wait("home A: relay address", relayDeadline, relayAddr(a, &relayA))
	var relayB string
	s.wait("home B: relay address", relayDeadline, relayAddr(b, &relayB))
	if !strings.Contains(relayA, "/p2p-circuit") || !strings.Contains(relayA, p.peerID) {
		t.Fatalf("A's relay address %s is not a circuit through the public node", relayA)
	}
	return s, p, a, b, ha, hb, relayA
}

// TestHolePunchThroughEndpointIndependentNATs is scenario 1: two home nodes
// behind endpoint-independent NATs reach each other through the public
// node's relay, then hole punching gives them a direct connection that
// carries blocks even once the public node is gone.
func TestHolePunchThroughEndpointIndependentNATs(t *testing.T) {
	needBed(t)
	t.Parallel()
	s, p, a, b, ha, _, relayA := homePair(t, "eim", netbed.EndpointIndependent)

	b.mustCall(nil, "addnode", relayA, "onetry")
	s.wait("B reaches A through the relay", blockDeadline, connected(b, a, ""))
	s.wait("direct connection A-B (hole punch)", punchDeadline, connected(b, a, "direct"))
	pa, _, err := b.peer(a.peerID)
	if err != nil {
		t.Fatal(err)
	}
	if len(pa.Connections) == 0 || pa.Connections[0].Relayed || !strings.Contains(pa.Connections[0].Addr, "/ip4/"+ha.PublicIP().String()+"/") {
		t.Fatalf("B's direct connection to A is not to A's router: %+v", pa.Connections)
	}
	if pb, _, err := a.peer(b.peerID); err == nil && pb.HolePunch != nil {
		t.Logf("A's hole punch with B, as A measured it: %+v", *pb.HolePunch)
	}
	var punched uint64
	for _, d := range []*daemon{a, b} {
		ni, err := d.netInfo()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s hole punch totals: %+v", d.name, ni.HolePunch)
		punched += ni.HolePunch.Succeeded
	}
	if punched == 0 {
		t.Fatal("the direct connection exists but no hole punch succeeded: it did not come from DCUtR")
	}

	s.wait("block mined at A reaches B", blockDeadline, hasBlocks(b, mine(t, a, 1)))

	// Without the public node, only the hole-punched connection joins A and B.
	p.stop()
	s.wait("B keeps a direct connection to A", blockDeadline, connected(b, a, "direct"))
	s.wait("5 blocks reach B over the direct link alone", blockDeadline, hasBlocks(b, mine(t, a, 5)))
	// Their only link is direct (sync never uses a relay): a status from A
	// on B came over the hole-punched connection.
	s.wait("B has A's status (sync protocol over the direct link)", blockDeadline, func() (bool, string) {
		pa, ok, err := b.peer(a.peerID)
		if err != nil || !ok {
			return false, fmt.Sprint("peer A: ", ok, err)
		}
		return pa.CurrentHeight >= 1, fmt.Sprintf("A's announced height %d", pa.CurrentHeight)
	})
}

// TestSymmetricNATsStayRelayed is scenario 2: behind symmetric NATs hole
// punching fails, the nodes say so, and blocks still reach both through the
// public node.
func TestSymmetricNATsStayRelayed(t *testing.T) {
	needBed(t)
	t.Parallel()
	s, _, a, b, _, _, relayA := homePair(t, "sym", netbed.Symmetric)

	b.mustCall(nil, "addnode", relayA, "onetry")
	s.wait("B reaches A through the relay", blockDeadline, connected(b, a, "relayed"))
	s.wait("hole punch fails", punchDeadline, func() (bool, string) {
		var failed, succeeded uint64
		for _, d := range []*daemon{a, b} {
			ni, err := d.netInfo()
			if err != nil {
				return false, err.Error()
			}
			failed += ni.HolePunch.Failed
			succeeded += ni.HolePunch.Succeeded + ni.HolePunch.DirectDials
		}
		if succeeded > 0 {
			t.Fatalf("a hole punch through symmetric NATs succeeded (%d)", succeeded)
		}
		return failed > 0, "no hole punch ended yet"
	})
	// The truth, as reported: still relayed (or dropped by the relay's
	// limits), still private.
	if pa, ok, err := b.peer(a.peerID); err != nil || (ok && (pa.Connection != "relayed" || !pa.Relayed)) {
		t.Fatalf("B reports its link to A as %+v (err %v), want relayed", pa, err)
	}
	for _, d := range []*daemon{a, b} {
		if ok, st := reach(d, "private")(); !ok {
			t.Fatalf("%s: %s after the failed hole punch", d.name, st)
		}
	}
	if pa, _, _ := a.peer(b.peerID); pa.HolePunch != nil {
		t.Logf("A's hole punch record for B: %+v", *pa.HolePunch)
	}
	s.wait("block mined at A reaches B (through the public node)", blockDeadline, hasBlocks(b, mine(t, a, 1)))
	s.wait("block mined at B reaches A (through the public node)", blockDeadline, hasBlocks(a, mine(t, b, 1)))
}

// TestNewPublicAddress is scenario 3: a home node restarts after its router
// got a new public address; it learns its reachability again, takes a new
// relay reservation, and keeps getting blocks.
func TestNewPublicAddress(t *testing.T) {
	needBed(t)
	t.Parallel()
	bed := netbed.New(t, "newip")
	pub := bed.AddPublic("pub")
	ha := bed.AddHome("a", netbed.EndpointIndependent)
	p := startPublicForced(t, bed, pub)
	s := newSteps(t)
	a := startDaemon(t, bed, ha.Host, "homeA", bootstrapArgs(t, p)...)
	var relay1 string
	s.wait("home A: private detected", reachDeadline, reach(a, "private"))
	s.wait("home A: relay address", relayDeadline, relayAddr(a, &relay1))
	oldIP := ha.PublicIP().String()
	s.wait("home A: observed at its public address", reachDeadline, observedAt(a, oldIP))

	a.stop()
	newIP := ha.ChangePublicIP().String()
	if newIP == oldIP {
		t.Fatalf("the router kept its address %s", oldIP)
	}
	s.mark("router " + oldIP + " -> " + newIP + ", A restarted")
	a.start()
	s.wait("home A: private detected again", reachDeadline, reach(a, "private"))
	var relay2 string
	s.wait("home A: new relay address", relayDeadline, relayAddr(a, &relay2))
	s.wait("home A: observed at the new address", reachDeadline, observedAt(a, newIP))
	if ni, err := a.netInfo(); err == nil && len(addrsWith(ni.ObservedAddrs, "/ip4/"+oldIP+"/")) > 0 {
		t.Fatalf("A still reports its old address: %v", ni.ObservedAddrs)
	}
	s.wait("block mined at the public node reaches A", blockDeadline, hasBlocks(a, mine(t, p, 1)))
	s.wait("block mined at A reaches the public node", blockDeadline, hasBlocks(p, mine(t, a, 1)))
}

// observedAt is a step condition: d is observed at ip.
func observedAt(d *daemon, ip string) func() (bool, string) {
	return func() (bool, string) {
		ni, err := d.netInfo()
		if err != nil {
			return false, err.Error()
		}
		return len(addrsWith(ni.ObservedAddrs, "/ip4/"+ip+"/")) > 0, fmt.Sprintf("observed %v", ni.ObservedAddrs)
	}
}

// TestUPnPMakesHomeNodePublic is scenario 4: with miniupnpd on the router,
// the home node maps its port and AutoNAT finds it publicly reachable, so
// it needs no relay and serves one. (Scenarios 1-3 run with port mapping
// on and no UPnP daemon: nothing breaks without it.)
func TestUPnPMakesHomeNodePublic(t *testing.T) {
	needBed(t)
	if err := netbed.MiniUPnPdAvailable(); err != nil {
		t.Skipf("UPnP scenario: %v", err)
	}
	t.Parallel()
	bed := netbed.New(t, "upnp")
	pub := bed.AddPublic("pub")
	ha := bed.AddHome("a", netbed.EndpointIndependent, netbed.UPnP(true))
	p := startPublicForced(t, bed, pub)
	s := newSteps(t)
	a := startDaemon(t, bed, ha.Host, "homeA", bootstrapArgs(t, p)...)
	ip := ha.PublicIP().String()
	s.wait("home A: mapped address on the router", reachDeadline, func() (bool, string) {
		ni, err := a.netInfo()
		if err != nil {
			return false, err.Error()
		}
		return len(addrsWith(ni.ListenAddrs, "/ip4/"+ip+"/")) > 0, fmt.Sprintf("listen addrs %v", ni.ListenAddrs)
	})
	s.wait("home A: reachability public", 180*time.Second, reach(a, "public"))
	ni, err := a.netInfo()
	if err != nil {
		t.Fatal(err)
	}
	if ni.RelayService != "serving" {
		t.Fatalf("A is public but its relay service is %q", ni.RelayService)
	}
	t.Logf("router log:\n%s", ha.UPnPLog())
	s.wait("block mined at A reaches the public node", blockDeadline, hasBlocks(p, mine(t, a, 1)))
}

// linked is a step condition: x and y are connected (either side's view).
func linked(x, y *daemon) func() (bool, string) {
	return func() (bool, string) {
		if ok, _ := connected(x, y, "")(); ok {
			return true, ""
		}
		ok, st := connected(y, x, "")()
		return ok, st
	}
}

// lanBootstrapArgs returns --bootstrap flags with d's LAN (192.168.x.x)
// addresses.
func lanBootstrapArgs(t testing.TB, d *daemon) []string {
	t.Helper()
	ni, err := d.netInfo()
	if err != nil {
		t.Fatal(err)
	}
	addrs := addrsWith(ni.ListenAddrs, "/ip4/"+d.host.IP().String()+"/")
	if len(addrs) == 0 {
		t.Fatalf("%s lists no address on %s: %v", d.name, d.host.IP(), ni.ListenAddrs)
	}
	var args []string
	for _, a := range addrs {
		args = append(args, "--bootstrap", a)
	}
	return args
}

// lanDeadline bounds the steps of the LAN scenarios.
const lanDeadline = 30 * time.Second

// TestLANNodesFindEachOther: three home nodes on one LAN behind one router,
// mDNS off, with default flags: A knows only the public node, B and C only
// A. All three find each other (the DHT serves until each learns it is
// private; the rendezvous record lists LAN addresses), the public node,
// started without --reachability, learns that it is public, and a block
// mined at B reaches C and the public node.
func TestLANNodesFindEachOther(t *testing.T) {
	needBed(t)
	t.Parallel()
	bed := netbed.New(t, "lan")
	pub := bed.AddPublic("pub")
	home := bed.AddHome("h", netbed.EndpointIndependent)
	hb, hc := home.AddHost("hb"), home.AddHost("hc")
	s := newSteps(t)
	p := startPublic(t, bed, pub)
	a := startDaemon(t, bed, home.Host, "lanA", bootstrapArgs(t, p)...)
	boot := lanBootstrapArgs(t, a)
	b := startDaemon(t, bed, hb, "lanB", boot...)
	c := startDaemon(t, bed, hc, "lanC", boot...)
	s.wait("A connected to the public node", lanDeadline, linked(a, p))
	s.wait("B and C connected to A", lanDeadline, func() (bool, string) {
		okB, stB := linked(a, b)()
		okC, stC := linked(a, c)()
		return okB && okC, "B: " + stB + "; C: " + stC
	})
	s.wait("B and C found each other", lanDeadline, linked(b, c))
	s.wait("public node: public, serving relay and DHT", reachDeadline, publicServes(p))
	if ni, err := p.netInfo(); err == nil {
		t.Logf("public node: reachability %s (basis %s), reachable addrs %v", ni.Reachability, ni.ReachabilityBasis, ni.ReachableAddrs)
	}
	for _, d := range []*daemon{a, b, c} {
		if ni, err := d.netInfo(); err == nil {
			t.Logf("%s: reachability %s (basis %s), DHT %s", d.name, ni.Reachability, ni.ReachabilityBasis, ni.DHTMode)
		}
	}
	hashes := mine(t, b, 1)
	s.wait("block mined at B reaches C", blockDeadline, hasBlocks(c, hashes))
	s.wait("block mined at B reaches the public node", blockDeadline, hasBlocks(p, hashes))
}

// TestLANNodesFindEachOtherByMDNS: three home nodes on one LAN, mDNS on,
// no bootstrap address at all: they find each other by mDNS alone.
func TestLANNodesFindEachOtherByMDNS(t *testing.T) {
	needBed(t)
	t.Parallel()
	bed := netbed.New(t, "mdns")
	home := bed.AddHome("h", netbed.EndpointIndependent)
	hb, hc := home.AddHost("hb"), home.AddHost("hc")
	s := newSteps(t)
	a := startDaemon(t, bed, home.Host, "mdnsA", "--mdns")
	b := startDaemon(t, bed, hb, "mdnsB", "--mdns")
	c := startDaemon(t, bed, hc, "mdnsC", "--mdns")
	s.wait("A and B found each other", lanDeadline, linked(a, b))
	s.wait("A and C found each other", lanDeadline, linked(a, c))
	s.wait("B and C found each other", lanDeadline, linked(b, c))
	s.wait("block mined at C reaches A", blockDeadline, hasBlocks(a, mine(t, c, 1)))
}
