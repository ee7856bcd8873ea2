package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jessevdk/go-flags"

	"github.com/dagnode/dagnode/rpc"
)

type rpcConfig struct {
	Network   string `long:"network" description:"network: mainnet, testnet, simnet or regtest (picks the default port and data directory)"`
	DataDir   string `long:"datadir" description:"data directory holding the server's cookie (default ~/.dagnode/<network>)"`
	RPCServer string `long:"rpcserver" description:"server host:port (default 127.0.0.1 and the network's RPC port)"`
	RPCUser   string `long:"rpcuser" description:"user name (default: read <datadir>/.cookie)"`
	RPCPass   string `long:"rpcpass" description:"password"`
	RPCCert   string `long:"rpccert" description:"the server's TLS certificate, trusted alone (default: <datadir>/rpc.cert when the node made one; a server given with https:// needs it)"`
	Timeout   string `long:"timeout" description:"give up after this long, e.g. 30s or 10m (default 10m)"`
}

// runRPC runs `dagnode rpc [flags] METHOD [PARAMS...]`: one call, the
// result as indented JSON on stdout; an RPC error is printed and exits 1.
func runRPC(ctx context.Context, args []string, stdout io.Writer) error {
	rc := rpcConfig{Network: "mainnet", Timeout: "10m"}
	rest, err := parseRPCFlags(&rc, args, stdout)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return usagef("usage: dagnode rpc [FLAGS] METHOD [PARAMS...]   (flags before METHOD; dagnode rpc help lists the methods)")
	}
	timeout, err := time.ParseDuration(rc.Timeout)
	if err != nil || timeout <= 0 {
		return usagef("--timeout %q: want a positive duration such as 30s", rc.Timeout)
	}
	cfg := config{Network: rc.Network, DataDir: rc.DataDir, LogLevel: "info"}
	if err := cfg.validate(); err != nil {
		return err
	}
	method := rest[0]
	params, err := rpc.ParseCLIParams(method, rest[1:])
	if err != nil {
		return usagef("%v", err)
	}
	server := rc.RPCServer
	if server == "" {
		server = fmt.Sprintf("127.0.0.1:%d", rpc.DefaultPort(cfg.params.Name))
	}
	user, pass := rc.RPCUser, rc.RPCPass
	if user == "" && pass == "" {
		if user, pass, err = rpc.ReadCookie(filepath.Join(cfg.DataDir, cookieFile)); err != nil {
			return fmt.Errorf("%w (is the node running with this --datadir, or give --rpcuser/--rpcpass)", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client, err := newRPCClient(server, user, pass, rc.RPCCert, filepath.Join(cfg.DataDir, rpcCertFile))
	if err != nil {
		return err
	}
	res, err := client.Call(ctx, method, params...)
	if client.TLS && isPlainHTTPReply(err) && rc.RPCCert == "" && !strings.HasPrefix(server, "https://") {
		// The node's certificate is there, but it serves plain HTTP now
		// (loopback only): ask again without TLS.
		res, err = rpc.NewClient(server, user, pass).Call(ctx, method, params...)
	}
	if err != nil {
		var rerr *rpc.Error
		if errors.As(err, &rerr) {
			return fmt.Errorf("%s: error %d: %s", method, rerr.Code, rerr.Message)
		}
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, res, "", "  "); err != nil {
		out.Reset()
		out.Write(res)
	}
	// help's result is one string: print it as text.
	var text string
	if json.Unmarshal(res, &text) == nil {
		fmt.Fprintln(stdout, text)
		return nil
	}
	fmt.Fprintln(stdout, out.String())
	return nil
}

// newRPCClient is the client of server: over TLS trusting certFile alone when
// it is given (or the server is given as https://...), else over TLS
// trusting the node's own certificate (nodeCert) when that file exists,
// else plain HTTP.
func newRPCClient(server, user, pass, certFile, nodeCert string) (*rpc.Client, error) {
	if certFile == "" {
		if _, err := os.Stat(nodeCert); err == nil {
			certFile = nodeCert
		} else if strings.HasPrefix(server, "https://") {
			return nil, usagef("--rpcserver %s: give the server's certificate with --rpccert", server)
		}
	}
	if certFile == "" {
		return rpc.NewClient(server, user, pass), nil
	}
	tc, err := rpc.TLSClientConfig(certFile)
	if err != nil {
		return nil, err
	}
	return rpc.NewTLSClient(server, user, pass, tc), nil
}

// isPlainHTTPReply reports whether err is a TLS client's failure to read a
// plain HTTP server's answer.
func isPlainHTTPReply(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh)
}

// parseRPCFlags parses `dagnode rpc`'s flags, which come before METHOD:
// every word from METHOD on is a param, so `setgenerate true -1` passes -1.
func parseRPCFlags(rc *rpcConfig, args []string, out io.Writer) ([]string, error) {
	return parseFlags(rc, "dagnode rpc", args, out, flags.PassAfterNonOption)
}
