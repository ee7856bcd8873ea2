package netbed

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
)

// tunPath is the TUN clone device.
const tunPath = "/dev/net/tun"

// TUNAvailable returns nil when a bed of TUN hosts (Open and OpenTUN) can be built here, otherwise an
// error naming everything that is missing: root, iproute2, /dev/net/tun, or the kernel's support for
// creating and entering a network namespace. It needs no nftables (Available does). The probe runs
// once per process.
func TUNAvailable() error {
	_, err := probeTUNOnce()
	return err
}

// probeTUN checks what Open needs. The cheap checks are all made and reported together, so that an
// operator learns at once everything to fix.
func probeTUN() (tools, error) {
	var missing []error
	if err := platformError(); err != nil {
		return tools{}, err
	}
	if uid := os.Geteuid(); uid != 0 {
		missing = append(missing, fmt.Errorf("netbed: needs root to create network namespaces (running as uid %d)", uid))
	}
	if _, err := findTool("ip"); err != nil {
		missing = append(missing, fmt.Errorf("netbed: iproute2 missing: %w", err))
	}
	if _, err := os.Stat(tunPath); err != nil {
		missing = append(missing, fmt.Errorf("netbed: no TUN device (load the tun module, or give a container --device %s): %w", tunPath, err))
	}
	if len(missing) > 0 {
		return tools{}, errors.Join(missing...)
	}
	tl, err := probeNamespaces()
	if err != nil {
		return tl, err
	}
	f, err := os.OpenFile(tunPath, os.O_RDWR, 0)
	if err != nil {
		return tl, fmt.Errorf("netbed: cannot open the TUN device: %w", err)
	}
	f.Close()
	return tl, nil
}

// tunDevice is the name of the TUN device AddTUN gives a host, the same as a public host's veth.
const tunDevice = "eth0"

// AddTUN adds a host namespace with the next public address (11.0.0.10, 11.0.0.11, ..., counted with
// AddPublic's), whose eth0 is a TUN device instead of a veth on the bridge. The host's traffic does not
// cross the bed's internet: every packet it sends to 11.0.0.0/16 (or anywhere, by its default route)
// is read from the returned file, and every packet written to the file is received by the host. Each
// read returns one IPv4 packet, each write must be one (no packet-information header, no offloads, so
// packets are at most the device's MTU of 1500 bytes and carry their checksums).
//
// Whoever reads and writes the files of several such hosts is their network: a test program that
// forwards packets by destination address with a delay and a rate per link models a WAN, which this
// way needs no sch_netem in the kernel. Pass the file to that program with exec.Cmd.ExtraFiles (the
// device lives as long as any copy of the file is open), or forward in-process (internal/netbed/wire).
// The bed closes its own copy at cleanup, after stopping tracked processes and before deleting the
// namespace. AddTUN is for beds made by New; see OpenTUN.
func (b *Bed) AddTUN(name string) (*Host, *os.File) {
	b.t.Helper()
	h, f, err := b.addTUN(name)
	if err != nil {
		b.t.Fatalf("netbed.AddTUN(%q): %v", name, err)
	}
	b.t.Logf("netbed: TUN host %s: %s in namespace %s", name, h.IP(), h.Name())
	return h, f
}

// OpenTUN is AddTUN for a bed made by Open: it returns an error instead of failing a test, and logs
// nothing. On an error the bed may hold part of the host; Close removes it.
func (b *Bed) OpenTUN(name string) (*Host, *os.File, error) {
	h, f, err := b.addTUN(name)
	if err != nil {
		return nil, nil, fmt.Errorf("netbed: TUN host %s: %w", name, err)
	}
	return h, f, nil
}

func (b *Bed) addTUN(name string) (*Host, *os.File, error) {
	if err := b.reserve(name); err != nil {
		return nil, nil, err
	}
	b.mu.Lock()
	idx := b.publics
	if idx >= maxPublicHosts {
		b.mu.Unlock()
		return nil, nil, fmt.Errorf("more than %d public hosts", maxPublicHosts)
	}
	b.publics++
	b.mu.Unlock()

	ip := net.IPv4(11, 0, 0, byte(firstPublicHost+idx)).To4()
	h := newHost(b, b.tag+"-tun-"+name, ip)
	if err := b.addNamespaces(h.ns); err != nil {
		return nil, nil, err
	}
	if err := b.isolate(h.ns); err != nil {
		return nil, nil, err
	}
	f, err := openTUN(nsPath(h.ns), tunDevice)
	if err != nil {
		return nil, nil, fmt.Errorf("namespace %s: %w", h.ns, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		f.Close()
		return nil, nil, fmt.Errorf("bed already cleaned up")
	}
	b.files = append(b.files, f)
	b.mu.Unlock()
	if err := b.ipIn(h.ns,
		"link set lo up",
		"link set "+tunDevice+" txqueuelen 1000",
		"link set "+tunDevice+" up",
		"addr add "+ip.String()+"/"+strconv.Itoa(internetPrefix)+" dev "+tunDevice,
		"route add default dev "+tunDevice,
	); err != nil {
		return nil, nil, err
	}
	return h, f, nil
}
