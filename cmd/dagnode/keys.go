package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/dagnode/dagnode/keys"
)

type keysConfig struct {
	Network string `long:"network" description:"network: mainnet, testnet, simnet or regtest"`
	DataDir string `long:"datadir" description:"data directory (default ~/.dagnode/<network>)"`
}

// runKeys runs `dagnode keys SUBCOMMAND`.
func runKeys(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "newaddress" {
		return usagef("usage: dagnode keys newaddress [--network NAME] [--datadir DIR]")
	}
	kc := keysConfig{Network: "mainnet"}
	rest, err := parseFlags(&kc, "dagnode keys newaddress", args[1:], stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	cfg := config{Network: kc.Network, DataDir: kc.DataDir, LogLevel: "info"}
	if err := cfg.validate(); err != nil {
		return err
	}
	dir := filepath.Join(cfg.DataDir, keysDir)
	a, err := keys.NewMiningKey(dir, cfg.params.AddrPrefix)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, a.String())
	return nil
}
