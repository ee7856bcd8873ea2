// Command bareps is the baseline of the network bench (test/netbench): a
// bare libp2p host with the transports, security and muxer a dagnode host
// uses (TCP and QUIC, Noise and TLS, yamux), one GossipSub topic with the
// library's default parameters, and a Kademlia DHT server, and nothing else.
// It publishes messages of a given size when told to on stdin and logs when
// each message arrives, so that the bench can time the same traffic on the
// same links as the dagnode run.
//
// Messages are unsigned and carry no author, and their id is the SHA-256 of
// their data (dagnode's are block hashes): on the wire a message is its data
// and its topic, as a dagnode block message is.
//
// Standard input takes one command per line:
//
//	pub ID     publish a message of --size bytes starting with ID (hex, at most --size bytes)
//	peers      print "peers CONNECTED TOPICPEERS QUICCONNS"
//
// Standard output gets one line per event, times in Unix nanoseconds:
//
//	listening PEERID
//	pub ID TIME        after Publish returned
//	recv ID TIME       a message from another node delivered to our subscription
//	peers N M Q
//
// bareps exits when standard input closes or on SIGTERM/SIGINT.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bareps:", err)
		os.Exit(1)
	}
}

// out serialises event lines on stdout.
type out struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *out) printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format+"\n", args...)
}

func run() error {
	var (
		keyFile = flag.String("key", "", "file holding the libp2p private key (crypto.MarshalPrivateKey); required")
		topic   = flag.String("topic", "/netbench/blocks/1", "GossipSub topic")
		size    = flag.Int("size", 300, "message size in bytes")
		useDHT  = flag.Bool("dht", true, "run a Kademlia DHT server (protocol prefix /netbench)")
		listen  listFlag
		peers   listFlag
	)
	flag.Var(&listen, "listen", "multiaddr to listen on (repeatable; default TCP and QUIC on port 4001)")
	flag.Var(&peers, "peer", "peer multiaddr with /p2p/ID to connect to and keep connected (repeatable; a peer's addresses are dialled together, as libp2p prefers)")
	flag.Parse()
	if *keyFile == "" || *size < 16 {
		return errors.New("--key is required and --size must be at least 16")
	}
	if len(listen) == 0 {
		listen = listFlag{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}
	}
	raw, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	priv, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	h, err := libp2p.New(
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(tls.ID, tls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableMetrics(), // dagnode too, unless --metrics is given
	)
	if err != nil {
		return err
	}
	defer h.Close()
	if *useDHT {
		kad, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/netbench"))
		if err != nil {
			return err
		}
		defer kad.Close()
	}
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(func(m *pb.Message) string {
			sum := sha256.Sum256(m.Data)
			return string(sum[:])
		}),
	)
	if err != nil {
		return err
	}
	t, err := ps.Join(*topic)
	if err != nil {
		return err
	}
	sub, err := t.Subscribe()
	if err != nil {
		return err
	}
	o := &out{w: os.Stdout}
	o.printf("listening %s", h.ID())

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var addrs []ma.Multiaddr
	for _, a := range peers {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return fmt.Errorf("--peer %s: %w", a, err)
		}
		addrs = append(addrs, m)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(addrs...) // a peer's addresses together
	if err != nil {
		return fmt.Errorf("--peer: %w", err)
	}
	for _, ai := range infos {
		wg.Go(func() { keepConnected(ctx, h, ai) })
	}
	wg.Go(func() {
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			if m.ReceivedFrom == h.ID() {
				continue // our own publish
			}
			o.printf("recv %s %d", hex.EncodeToString(m.Data[:16]), now)
		}
	})

	lines := make(chan string)
	go func() { // ends with stdin; never waited for, as a read cannot be interrupted
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if err := command(ctx, o, h, t, *size, line); err != nil {
				return err
			}
		}
	}
}

// command runs one stdin command.
func command(ctx context.Context, o *out, h host.Host, t *pubsub.Topic, size int, line string) error {
	f := strings.Fields(line)
	switch {
	case len(f) == 2 && f[0] == "pub":
		id, err := hex.DecodeString(f[1])
		if err != nil || len(id) != 16 {
			return fmt.Errorf("pub: id must be 16 bytes in hex, got %q", f[1])
		}
		msg := make([]byte, size)
		copy(msg, id)
		if err := t.Publish(ctx, msg); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		o.printf("pub %s %d", f[1], time.Now().UnixNano())
	case len(f) == 1 && f[0] == "peers":
		var quic int
		for _, c := range h.Network().Conns() {
			if _, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_QUIC_V1); err == nil {
				quic++
			}
		}
		o.printf("peers %d %d %d", len(h.Network().Peers()), len(t.ListPeers()), quic)
	default:
		return fmt.Errorf("unknown command %q", line)
	}
	return nil
}

// keepConnected dials ai until connected, then redials whenever the
// connection is lost, until ctx ends.
func keepConnected(ctx context.Context, h host.Host, ai peer.AddrInfo) {
	h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
	for {
		if h.Network().Connectedness(ai.ID) != network.Connected {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_ = h.Connect(dctx, ai)
			cancel()
		}
		wait := time.Second
		if h.Network().Connectedness(ai.ID) != network.Connected {
			wait = 250 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
