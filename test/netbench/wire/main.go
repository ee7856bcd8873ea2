// Command wire is the network of the bench (test/netbench): it runs
// internal/netbed/wire, which forwards IPv4 packets between TUN devices
// (internal/netbed's AddTUN) by destination address through a model of each
// host's access link, in a process of its own (built without -race, as the
// bench's other programs). It exists because the kernels the bench runs on
// may have no sch_netem.
//
// Each host i has one access link with a one-way delay d_i (the --link
// values, in the order of the files it is given: file descriptors 3, 4, ...),
// a rate cap in each direction (--rate) and uniform jitter (--jitter, plus or
// minus, drawn per packet and per link); a packet waiting more than --queue
// behind others on a link is dropped. Node-to-node one-way delay is d_i + d_j
// plus queueing; the package's doc has the whole model.
//
// It prints "ready" once forwarding; on SIGTERM or SIGINT it prints its
// counters to stderr and exits.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dagnode/dagnode/internal/netbed/wire"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wire:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		links  = flag.String("link", "", "comma-separated IP=DELAY per host, in file order (fd 3, 4, ...)")
		rate   = flag.Float64("rate", 20e6, "rate cap of each link, each direction, in bit/s")
		jitter = flag.Duration("jitter", 2*time.Millisecond, "uniform jitter, plus or minus, per packet and link")
		queue  = flag.Duration("queue", wire.DefaultQueue, "longest wait behind other packets on a link before a drop")
		seed   = flag.Uint64("seed", 1, "seed of the jitter")
	)
	flag.Parse()
	if *links == "" || *rate <= 0 || *jitter < 0 {
		return errors.New("--link is required; --rate must be positive and --jitter not negative")
	}
	cfg := wire.Config{Rate: *rate, Jitter: *jitter, Queue: *queue, Seed: *seed}
	for i, spec := range strings.Split(*links, ",") {
		ipStr, delayStr, ok := strings.Cut(spec, "=")
		ip, err := netip.ParseAddr(ipStr)
		if !ok || err != nil || !ip.Is4() {
			return fmt.Errorf("--link %q: want IPv4=DELAY", spec)
		}
		d, err := time.ParseDuration(delayStr)
		if err != nil {
			return fmt.Errorf("--link %q: bad delay: %w", spec, err)
		}
		// Non-blocking, so that the file is pollable and the wire can stop
		// its reads (the parent's exec put the descriptor in blocking mode).
		if err := syscall.SetNonblock(3+i, true); err != nil {
			return fmt.Errorf("file descriptor %d for %s: %w", 3+i, ip, err)
		}
		f := os.NewFile(uintptr(3+i), ip.String())
		cfg.Links = append(cfg.Links, wire.Link{IP: ip, Delay: d, Dev: f})
	}
	w, err := wire.New(cfg)
	if err != nil {
		return err
	}
	w.Start()
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	w.Close()
	fmt.Fprintf(os.Stderr, "wire: %s\n", w.Stats())
	return nil
}
