package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDaemonRPCOverTLS: a daemon whose RPC server listens off loopback
// (default flags apart from --rpclisten) serves TLS with a certificate it
// made in its data directory; `dagnode rpc` trusts that certificate on its
// own, and with --rpccert from anywhere. A plain HTTP client gets nothing.
func TestDaemonRPCOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dagnode process")
	}
	p := startProc(t, "A", "--rpclisten", "0.0.0.0:0")
	cert := filepath.Join(p.datadir, rpcCertFile)
	fi, err := os.Stat(cert)
	if err != nil {
		t.Fatalf("no certificate in the data directory: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", cert, fi.Mode().Perm())
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(p.client.URL(), "http://"))
	server := net.JoinHostPort("127.0.0.1", port)
	cli := func(extra ...string) (int, string, string) {
		var out, errb bytes.Buffer
		args := append([]string{"rpc", "--network", "regtest", "--datadir", p.datadir, "--rpcserver", server}, extra...)
		code := run(context.Background(), append(args, "getblockcount"), &out, &errb)
		return code, strings.TrimSpace(out.String()), errb.String()
	}
	if code, out, errs := cli(); code != exitOK || out != "1" {
		t.Fatalf("dagnode rpc with the node's own certificate: code %d, out %q, err %q", code, out, errs)
	}
	copied := filepath.Join(t.TempDir(), "node.cert")
	b, _ := os.ReadFile(cert)
	os.WriteFile(copied, b, 0o600)
	if code, out, errs := cli("--rpccert", copied); code != exitOK || out != "1" {
		t.Fatalf("dagnode rpc --rpccert: code %d, out %q, err %q", code, out, errs)
	}
	if err := p.call(nil, "getblockcount"); err == nil {
		t.Fatal("a plain HTTP client was answered")
	}
}
