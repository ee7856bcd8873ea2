package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzConfig feeds an arbitrary TOML config file and extra command-line
// words to loadConfig. It must return a config or an error (a usage error,
// or errHelp), never panic, and write nothing: the data directory and the
// home directory stay empty either way. A config it returns is valid and
// round-trips: written back as TOML and loaded alone, it gives the same
// settings.
//
// The fuzzed words are one per line of words. Words naming --configfile,
// --datadir or --reuseport are dropped: the target fixes those (the file
// under test, an empty temporary data directory, and no listen-port probe,
// which would bind ports other tests are using).
func FuzzConfig(f *testing.F) {
	home := f.TempDir()
	f.Setenv("HOME", home)
	for _, s := range []struct{ file, words string }{
		{"network = \"regtest\"\n", ""},
		{"network = \"simnet\"\ngenerate = true\ngenproclimit = 2\nloglevel = \"debug\"\n" +
			"listen = [\"/ip4/127.0.0.1/tcp/0\"]\nrpclisten = [\"127.0.0.1:0\"]\nrpcuser = \"u\"\nrpcpass = \"p\"\n" +
			"maxpeers = 8\nmetrics = \"127.0.0.1:0\"\ndhtmode = \"client\"\nreachability = \"private\"\n", ""},
		{"bootstrap = [\"/ip4/10.0.0.1/tcp/9700/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8\"]\n" +
			"externaladdr = [\"/ip4/203.0.113.7/tcp/9700\"]\nnomdns = true\n", "--network\nregtest"},
		{"network = \"testnet\"\nmininaddr = \"x\"\n", ""},
		{"network = \"regtest\"\nmaxpeers = 3\n", "--maxpeers\n8"},
		{"[section]\nkey = 1\n", ""},
		{"network = ", ""},
		{"", "--help"},
		{"", "--network\nnosuch"},
		{"network = \"regtest\"", "--listen\n/ip4/1.2.3.4/tcp/5\n--listen\n/ip6/::1/udp/5/quic-v1"},
	} {
		f.Add([]byte(s.file), s.words)
	}
	f.Fuzz(func(t *testing.T, file []byte, words string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "dagnode.toml")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		dataDir := filepath.Join(dir, "data")
		if err := os.Mkdir(dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		args := []string{"--configfile", path, "--datadir", dataDir, "--reuseport"}
		if words != "" {
			for _, w := range strings.Split(words, "\n") {
				if strings.Contains(w, "configfile") || strings.Contains(w, "datadir") || strings.Contains(w, "reuseport") {
					continue
				}
				args = append(args, w)
			}
		}
		cfg, err := loadConfig(args, io.Discard)
		checkEmpty(t, dataDir)
		checkEmpty(t, home)
		if err != nil {
			var uerr *usageError
			if !errors.As(err, &uerr) && !errors.Is(err, errHelp) {
				t.Fatalf("loadConfig: %T %v: want a usage error", err, err)
			}
			return
		}
		if cfg.params == nil || cfg.DataDir != dataDir || !cfg.ReusePort {
			t.Fatalf("config without its network, data dir or --reuseport: %+v", cfg)
		}
		// Round trip: the settings written as TOML and loaded alone.
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(cfg); err != nil {
			t.Fatalf("encoding a loaded config: %v", err)
		}
		again := filepath.Join(dir, "again.toml")
		if err := os.WriteFile(again, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg2, err := loadConfig([]string{"--configfile", again}, io.Discard)
		if err != nil {
			t.Fatalf("a loaded config written back does not load: %v\n%s", err, buf.Bytes())
		}
		cfg.ConfigFile, cfg2.ConfigFile = "", ""
		if a, b := exported(cfg), exported(cfg2); !reflect.DeepEqual(a, b) {
			t.Fatalf("config round trip differs:\n%+v\n%+v\n%s", a, b, buf.Bytes())
		}
		checkEmpty(t, dataDir)
	})
}

// exported copies the settings of c (its exported fields), with nil and
// empty slices made alike.
func exported(c *config) map[string]any {
	out := map[string]any{}
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		fld := v.Type().Field(i)
		if !fld.IsExported() {
			continue
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Slice && fv.Len() == 0 {
			out[fld.Name] = nil
			continue
		}
		out[fld.Name] = fv.Interface()
	}
	return out
}

// checkEmpty fails if dir holds anything.
func checkEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > 0 {
		t.Fatalf("loadConfig wrote %s into %s", ents[0].Name(), dir)
	}
}
