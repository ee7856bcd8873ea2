package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
	flags "github.com/jessevdk/go-flags"

	"github.com/dagnode/dagnode/dag"
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

	// Derived by loadConfig.
	params     *dag.Params
	miningAddr *keys.Address
	logLevel   slog.Level
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
func parseFlags(cfg any, name string, args []string, out io.Writer) ([]string, error) {
	p := flags.NewNamedParser(name, flags.HelpFlag|flags.PassDoubleDash)
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
		return nil, usagef("unexpected argument %q (commands: keys)", rest[0])
	}
	return &cfg, cfg.validate()
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
	if c.DataDir == "" {
		dir, err := appDir()
		if err != nil {
			return usagef("%v", err)
		}
		c.DataDir = filepath.Join(dir, p.Name)
	}
	return nil
}

func validLevel(s string) bool {
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}
