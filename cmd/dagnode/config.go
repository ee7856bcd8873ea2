package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
	flags "github.com/jessevdk/go-flags"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/discovery"
	"github.com/dagnode/dagnode/host"
	"github.com/dagnode/dagnode/keys"
)

const (
	appDirName        = ".dagnode"
	defaultConfigName = "dagnode.toml"
)

// config is the daemon's configuration. Defaults are set in defaultConfig,
// not in `default` tags, so that values from the config file are not
// overwritten by flag defaults; flags given on the command line win.
type config struct {
	ConfigFile   string `long:"configfile" description:"TOML config file (default ~/.dagnode/dagnode.toml)" toml:"-"`
	Network      string `long:"network" description:"network: mainnet, testnet, simnet or regtest" toml:"network"`
	DataDir      string `long:"datadir" description:"data directory (default ~/.dagnode/<network>)" toml:"datadir"`
	Generate     bool   `long:"generate" description:"mine blocks from start-up" toml:"generate"`
	MiningAddr   string `long:"miningaddr" description:"address credited in mined blocks (default: a key made in <datadir>/keys)" toml:"miningaddr"`
	GenProcLimit int    `long:"genproclimit" description:"mining workers; 0 means one per core" toml:"genproclimit"`
	LogLevel     string `long:"loglevel" description:"debug, info, warn or error" toml:"loglevel"`

	Listen         []string `long:"listen" description:"multiaddr to listen on (repeatable; default TCP and QUIC on all interfaces, port per network)" toml:"listen"`
	Bootstrap      []string `long:"bootstrap" description:"peer multiaddr (with /p2p/ID) to dial at start and keep retrying (repeatable)" toml:"bootstrap"`
	Connect        []string `long:"connect" description:"connect only to this peer multiaddr (repeatable; disables DHT and mDNS discovery)" toml:"connect"`
	AddPeer        []string `long:"addpeer" description:"persistent peer multiaddr, reconnected when lost (repeatable)" toml:"addpeer"`
	MDNS           bool     `long:"mdns" description:"find peers on the LAN by mDNS (default on for simnet and regtest)" toml:"mdns"`
	NoMDNS         bool     `long:"nomdns" description:"disable mDNS" toml:"nomdns"`
	NoDHT          bool     `long:"nodht" description:"disable the Kademlia DHT and rendezvous discovery" toml:"nodht"`
	MaxPeers       int      `long:"maxpeers" description:"connection manager high watermark; trimming goes down to half of it (default 96)" toml:"maxpeers"`
	NoNATService   bool     `long:"nonatservice" description:"do not answer peers' AutoNAT reachability probes (served only while this node is publicly reachable)" toml:"nonatservice"`
	NoRelayService bool     `long:"norelayservice" description:"do not act as a circuit relay v2 for home nodes (served only while this node is publicly reachable)" toml:"norelayservice"`
	Reachability   string   `long:"reachability" description:"public or private: skip AutoNAT's verdict (public for a server known to be reachable); default: learn it" toml:"reachability"`
	Relay          []string `long:"relay" description:"static relay multiaddr with /p2p/ID, tried before other relays (repeatable)" toml:"relay"`
	NoNAT          bool     `long:"nonat" description:"do not ask the router for a port mapping (UPnP/NAT-PMP)" toml:"nonat"`
	DHTMode        string   `long:"dhtmode" description:"auto (answer DHT queries unless this node is known to be private), server or client" toml:"dhtmode"`
	ExternalAddr   []string `long:"externaladdr" description:"address this node is reachable at, e.g. /ip4/203.0.113.7/tcp/9700 behind a port forward; announced to peers and in the DHT (repeatable)" toml:"externaladdr"`
	ReusePort      bool     `long:"reuseport" description:"allow listening on a port another process already holds (SO_REUSEPORT sharing); default: refuse to start" toml:"reuseport"`

	RPCListen        []string `long:"rpclisten" description:"JSON-RPC host:port (repeatable; default 127.0.0.1 and the network's RPC port)" toml:"rpclisten"`
	RPCUser          string   `long:"rpcuser" description:"JSON-RPC user name (default: a random cookie in <datadir>/.cookie)" toml:"rpcuser"`
	RPCPass          string   `long:"rpcpass" description:"JSON-RPC password" toml:"rpcpass"`
	NoRPC            bool     `long:"norpc" description:"disable the JSON-RPC server" toml:"norpc"`
	RPCTLS           bool     `long:"rpctls" description:"serve JSON-RPC over TLS on loopback too (TLS is on by default whenever an --rpclisten address is not loopback)" toml:"rpctls"`
	RPCNoTLS         bool     `long:"rpcnotls" description:"serve plain HTTP even on a non-loopback --rpclisten address (the password then crosses the network in clear)" toml:"rpcnotls"`
	RPCCert          string   `long:"rpccert" description:"TLS certificate file, created self-signed on first use (default <datadir>/rpc.cert)" toml:"rpccert"`
	RPCKey           string   `long:"rpckey" description:"TLS key file, created with the certificate (default <datadir>/rpc.key)" toml:"rpckey"`
	RPCAllowedOrigin []string `long:"rpcallowedorigin" description:"browser origin allowed to call JSON-RPC, e.g. https://dash.example:8443 (repeatable; default none: requests with an Origin header are refused)" toml:"rpcallowedorigin"`
	RPCMaxClients    int      `long:"rpcmaxclients" description:"most JSON-RPC connections open at once (default 128; 32 per IP)" toml:"rpcmaxclients"`
	Metrics          string   `long:"metrics" description:"serve Prometheus metrics on host:port at /metrics (off by default)" toml:"metrics"`
	UI               string   `long:"ui" description:"serve the web dashboard on host:port, e.g. 127.0.0.1:9720 (off by default; the URL with its login token is logged; off loopback it is served over TLS with the RPC certificate)" toml:"ui"`

	// Derived by loadConfig.
	params     *dag.Params
	miningAddr *keys.Address
	logLevel   slog.Level
	bootstrap  []peer.AddrInfo
	connect    []peer.AddrInfo
	addPeer    []peer.AddrInfo
	relays     []peer.AddrInfo
	mdns       bool
	dhtMode    discovery.DHTMode
}

func defaultConfig() config {
	return config{Network: "mainnet", LogLevel: "info"}
}

// usageError is a bad flag or config value: exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// errHelp reports that --help was asked for and printed.
var errHelp = errors.New("help requested")

func appDir() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the home directory (set --datadir and --configfile): %w", err)
	}
	return filepath.Join(home, appDirName), nil
}

// parseFlags parses args into cfg. Help is printed to out.
func parseFlags(cfg any, name string, args []string, out io.Writer, opts ...flags.Options) ([]string, error) {
	o := flags.Options(flags.HelpFlag | flags.PassDoubleDash)
	for _, x := range opts {
		o |= x
	}
	p := flags.NewNamedParser(name, o)
	if _, err := p.AddGroup("Options", "", cfg); err != nil {
		return nil, err
	}
	rest, err := p.ParseArgs(args)
	if err != nil {
		var ferr *flags.Error
		if errors.As(err, &ferr) && ferr.Type == flags.ErrHelp {
			fmt.Fprintln(out, ferr.Message)
			return nil, errHelp
		}
		return nil, &usageError{err}
	}
	return rest, nil
}

// loadConfig builds the configuration: defaults, then the config file, then
// the flags. It writes nothing.
func loadConfig(args []string, out io.Writer) (*config, error) {
	// First pass: only to find the config file.
	pre := defaultConfig()
	if _, err := parseFlags(&pre, "dagnode", args, out); err != nil {
		return nil, err
	}
	cfg := defaultConfig()
	path, explicit := pre.ConfigFile, pre.ConfigFile != ""
	if !explicit {
		dir, err := appDir()
		if err == nil {
			path = filepath.Join(dir, defaultConfigName)
		}
	}
	if path != "" {
		md, err := toml.DecodeFile(path, &cfg)
		switch {
		case errors.Is(err, os.ErrNotExist) && !explicit:
		case err != nil:
			return nil, usagef("config file %s: %v", path, err)
		default:
			if undecoded := md.Undecoded(); len(undecoded) > 0 {
				return nil, usagef("config file %s: unknown key %q", path, undecoded[0].String())
			}
		}
	}
	rest, err := parseFlags(&cfg, "dagnode", args, out)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, usagef("unexpected argument %q (commands: keys, rpc, devnet)", rest[0])
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := cfg.checkPorts(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// checkPorts refuses listen ports that another process holds (unless
// --reuseport): libp2p listens with SO_REUSEPORT, so a second node on the
// same port would otherwise start silently and share it. It runs before
// anything is written to the data directory.
func (c *config) checkPorts() error {
	if c.ReusePort {
		return nil
	}
	addrs, err := host.ListenAddrs(c.params.Name, c.Listen)
	if err != nil {
		return usagef("--listen: %v", err)
	}
	if err := host.CheckListenPorts(addrs); err != nil {
		var pe *host.PortInUseError
		if errors.As(err, &pe) {
			return usagef("--listen %s: %s port %d is already in use by another process "+
				"(choose another port, or pass --reuseport to share it)", pe.Addr, pe.Network, pe.Port)
		}
		return usagef("--listen: %v", err)
	}
	return nil
}

// validate checks every value and fills the derived fields.
func (c *config) validate() error {
	p, err := dag.ParamsByName(c.Network)
	if err != nil {
		return usagef("--network: %v", err)
	}
	c.params = p
	if err := c.logLevel.UnmarshalText([]byte(c.LogLevel)); err != nil || !validLevel(c.LogLevel) {
		return usagef("--loglevel %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.GenProcLimit < 0 {
		return usagef("--genproclimit %d: want 0 (one per core) or a positive count", c.GenProcLimit)
	}
	if c.MiningAddr != "" {
		a, err := keys.DecodeAddress(c.MiningAddr, p.AddrPrefix)
		if err != nil {
			return usagef("--miningaddr %q: %v", c.MiningAddr, err)
		}
		c.miningAddr = &a
	}
	if c.MaxPeers < 0 || (c.MaxPeers > 0 && c.MaxPeers < 4) {
		return usagef("--maxpeers %d: want at least 4 (or 0 for the default)", c.MaxPeers)
	}
	for _, a := range c.Listen {
		if _, err := multiaddr.NewMultiaddr(a); err != nil {
			return usagef("--listen %q: %v", a, err)
		}
	}
	var err2 error
	if c.bootstrap, err2 = peerAddrs("--bootstrap", c.Bootstrap); err2 != nil {
		return err2
	}
	if c.connect, err2 = peerAddrs("--connect", c.Connect); err2 != nil {
		return err2
	}
	if c.addPeer, err2 = peerAddrs("--addpeer", c.AddPeer); err2 != nil {
		return err2
	}
	if c.relays, err2 = peerAddrs("--relay", c.Relay); err2 != nil {
		return err2
	}
	switch c.Reachability {
	case "", "public", "private":
	default:
		return usagef("--reachability %q: want public or private (or leave it out to learn it)", c.Reachability)
	}
	if c.DHTMode == "" {
		c.DHTMode = discovery.DHTModeAuto.String()
	}
	if c.dhtMode, err = discovery.ParseDHTMode(c.DHTMode); err != nil {
		return usagef("--dhtmode %q: want auto, server or client", c.DHTMode)
	}
	for _, a := range c.ExternalAddr {
		if _, err := host.ParseExternalAddr(a); err != nil {
			return usagef("--externaladdr %q: %v", a, err)
		}
	}
	if (c.RPCUser == "") != (c.RPCPass == "") {
		return usagef("--rpcuser and --rpcpass go together (or neither, for cookie auth)")
	}
	for _, a := range c.RPCListen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return usagef("--rpclisten %q: want host:port: %v", a, err)
		}
	}
	if c.RPCTLS && c.RPCNoTLS {
		return usagef("--rpctls and --rpcnotls contradict each other")
	}
	if c.RPCMaxClients < 0 {
		return usagef("--rpcmaxclients %d: want a positive count", c.RPCMaxClients)
	}
	for _, o := range c.RPCAllowedOrigin {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			return usagef("--rpcallowedorigin %q: want scheme://host[:port], as a browser sends it", o)
		}
	}
	if c.Metrics != "" {
		if _, _, err := net.SplitHostPort(c.Metrics); err != nil {
			return usagef("--metrics %q: want host:port: %v", c.Metrics, err)
		}
	}
	if c.UI != "" {
		if _, _, err := net.SplitHostPort(c.UI); err != nil {
			return usagef("--ui %q: want host:port: %v", c.UI, err)
		}
	}
	if c.MDNS && c.NoMDNS {
		return usagef("--mdns and --nomdns contradict each other")
	}
	c.mdns = c.MDNS || (!c.NoMDNS && (p == dag.SimNetParams || p == dag.RegTestParams))
	if c.DataDir == "" {
		dir, err := appDir()
		if err != nil {
			return usagef("%v", err)
		}
		c.DataDir = filepath.Join(dir, p.Name)
	}
	return nil
}

// peerAddrs parses full peer multiaddrs (with /p2p/ID), one AddrInfo per
// peer.
func peerAddrs(flag string, addrs []string) ([]peer.AddrInfo, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	mas := make([]multiaddr.Multiaddr, 0, len(addrs))
	for _, a := range addrs {
		ma, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			return nil, usagef("%s %q: %v", flag, a, err)
		}
		if _, err := peer.AddrInfoFromP2pAddr(ma); err != nil {
			return nil, usagef("%s %q: want a multiaddr ending in /p2p/<peer id>: %v", flag, a, err)
		}
		mas = append(mas, ma)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, usagef("%s: %v", flag, err)
	}
	return infos, nil
}

func validLevel(s string) bool {
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}
