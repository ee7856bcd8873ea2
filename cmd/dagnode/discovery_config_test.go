package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dagnode/dagnode/discovery"
)

// TestDiscoveryFlagsExitTwoAndWriteNothing: bad --dhtmode and
// --externaladdr values, and a listen port another process holds, are
// usage errors found before the data directory exists.
func TestDiscoveryFlagsExitTwoAndWriteNothing(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	held, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := strconv.Itoa(held.Addr().(*net.TCPAddr).Port)
	cases := []struct {
		name string
		args []string
		toml string
		want string
	}{
		{"bad dht mode", []string{"--dhtmode", "sometimes"}, "", "--dhtmode"},
		{"config bad dht mode", nil, `dhtmode = "always"`, "--dhtmode"},
		{"external addr not a multiaddr", []string{"--externaladdr", "203.0.113.7:9703"}, "", "--externaladdr"},
		{"external addr without port", []string{"--externaladdr", "/ip4/203.0.113.7"}, "", "--externaladdr"},
		{"external addr with peer id", []string{"--externaladdr", "/ip4/203.0.113.7/tcp/9703/p2p/12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"}, "", "--externaladdr"},
		{"config bad external addr", nil, `externaladdr = ["/tcp/9703"]`, "--externaladdr"},
		{"listen port in use", []string{"--listen", "/ip4/127.0.0.1/tcp/" + port}, "", "port " + port + " is already in use"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			datadir := filepath.Join(dir, "data")
			args := append([]string{"--network", "regtest", "--datadir", datadir, "--nonat", "--nomdns",
				"--rpclisten", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0"}, c.args...)
			if c.toml != "" {
				path := filepath.Join(dir, "dagnode.toml")
				if err := os.WriteFile(path, []byte(c.toml), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--configfile", path)
			}
			code, _, stderr := runArgs(t, args...)
			if code != exitUsage {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Fatalf("stderr %q does not mention %q", stderr, c.want)
			}
			if _, err := os.Stat(datadir); !os.IsNotExist(err) {
				t.Fatalf("data directory was created (%v)", err)
			}
		})
	}
}

// TestDiscoveryFlagsParsed: the flags reach the configuration; --reuseport
// lets a held port through.
func TestDiscoveryFlagsParsed(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	held, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := strconv.Itoa(held.Addr().(*net.TCPAddr).Port)
	cfg, err := loadConfig([]string{"--network", "regtest", "--datadir", t.TempDir(), "--dhtmode", "client",
		"--externaladdr", "/ip4/203.0.113.7/tcp/9703", "--externaladdr", "/dns4/node.example.org/udp/9703/quic-v1",
		"--listen", "/ip4/127.0.0.1/tcp/" + port, "--reuseport"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.dhtMode != discovery.DHTModeClient || len(cfg.ExternalAddr) != 2 || !cfg.ReusePort {
		t.Fatalf("parsed %+v", cfg)
	}
	cfg, err = loadConfig([]string{"--network", "regtest", "--datadir", t.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.dhtMode != discovery.DHTModeAuto || cfg.DHTMode != "auto" {
		t.Fatalf("default DHT mode %v (%q), want auto", cfg.dhtMode, cfg.DHTMode)
	}
}
