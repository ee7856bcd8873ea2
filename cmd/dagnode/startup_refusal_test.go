package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/keys"
)

// refusalNet keeps a node that gets as far as its host off the network.
var refusalNet = []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--nonat", "--nomdns", "--nodht", "--rpclisten", "127.0.0.1:0"}

// checkRefused fails unless a node run with args exits with code 1 and an
// error that holds every one of want, leaving the file at keep as it was.
func checkRefused(t *testing.T, keep string, args []string, want ...string) {
	t.Helper()
	before, err := os.ReadFile(keep)
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runArgs(t, args...)
	if code != exitError {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitError, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Fatalf("stderr does not contain %q:\n%s", w, stderr)
		}
	}
	after, err := os.ReadFile(keep)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatalf("the refused start changed %s", keep)
	}
}

// flipLastByte flips a bit in the last byte of the file at path, which for
// a marshalled Ed25519 key is in its public half.
func flipLastByte(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0x01
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestStartRefusesBadKeyFiles(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	args := func(datadir string, extra ...string) []string {
		return append(append([]string{"--network", "regtest", "--datadir", datadir}, refusalNet...), extra...)
	}

	t.Run("identity mismatch", func(t *testing.T) {
		datadir := t.TempDir()
		path := filepath.Join(datadir, identityFile)
		if _, _, err := keys.LoadOrCreateIdentity(path); err != nil {
			t.Fatal(err)
		}
		flipLastByte(t, path)
		checkRefused(t, path, args(datadir), path, "does not match")
	})
	t.Run("identity mode 0644", func(t *testing.T) {
		datadir := t.TempDir()
		path := filepath.Join(datadir, identityFile)
		if _, _, err := keys.LoadOrCreateIdentity(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		checkRefused(t, path, args(datadir), "chmod 600 "+path)
	})
	t.Run("mining key mismatch", func(t *testing.T) {
		datadir := t.TempDir()
		if _, _, err := keys.LoadOrCreateDefaultMiningAddress(filepath.Join(datadir, keysDir), dag.RegTestParams.AddrPrefix); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(datadir, keysDir, keys.DefaultMiningKeyFile)
		flipLastByte(t, path)
		checkRefused(t, path, args(datadir, "--generate", "--genproclimit", "1"), path, "does not match")
	})
	t.Run("mining key mode 0644", func(t *testing.T) {
		datadir := t.TempDir()
		if _, _, err := keys.LoadOrCreateDefaultMiningAddress(filepath.Join(datadir, keysDir), dag.RegTestParams.AddrPrefix); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(datadir, keysDir, keys.DefaultMiningKeyFile)
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		checkRefused(t, path, args(datadir, "--generate", "--genproclimit", "1"), "chmod 600 "+path)
	})
}

func TestStartRefusesLockedStore(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	datadir := t.TempDir()
	dir := filepath.Join(datadir, storeDir)
	store, err := dag.OpenPebbleStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	code, _, stderr := runArgs(t, append([]string{"--network", "regtest", "--datadir", datadir}, refusalNet...)...)
	if code != exitError {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitError, stderr)
	}
	for _, w := range []string{dir, "locked", "is another dagnode using it?"} {
		if !strings.Contains(stderr, w) {
			t.Fatalf("stderr does not contain %q:\n%s", w, stderr)
		}
	}
}
