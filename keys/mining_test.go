package keys

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

func TestNewMiningKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mining")
	a1, err := NewMiningKey(dir, 0x1e)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := NewMiningKey(dir, 0x1e)
	if err != nil {
		t.Fatal(err)
	}
	if a1 == a2 {
		t.Fatal("two new mining keys have the same address")
	}
	checkPerm(t, dir, 0o700)
	for _, a := range []Address{a1, a2} {
		if a.Prefix() != 0x1e {
			t.Fatalf("address %s has prefix %#x", a, a.Prefix())
		}
		path := filepath.Join(dir, a.String()+".key")
		checkPerm(t, path, 0o600)
		priv, err := loadKey(path, "mining key")
		if err != nil {
			t.Fatal(err)
		}
		got, err := AddressFromPubKey(0x1e, priv.GetPublic())
		if err != nil {
			t.Fatal(err)
		}
		if got != a {
			t.Fatalf("key in %s has address %s", path, got)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		t.Fatalf("mining dir holds %d entries, want 2", len(ents))
	}
}

func TestLoadOrCreateDefaultMiningAddress(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mining")
	a, created, err := LoadOrCreateDefaultMiningAddress(dir, 0x1e)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("created = false for a new default key")
	}
	path := filepath.Join(dir, DefaultMiningKeyFile)
	checkPerm(t, path, 0o600)
	checkOnlyEntries(t, dir, DefaultMiningKeyFile)

	b, created, err := LoadOrCreateDefaultMiningAddress(dir, 0x1e)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Fatal("created = true for an existing default key")
	}
	if a != b {
		t.Fatalf("default address changed: %s then %s", a, b)
	}

	priv, err := loadKey(path, "default mining key")
	if err != nil {
		t.Fatal(err)
	}
	want, err := AddressFromPubKey(0x1e, priv.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	if a != want {
		t.Fatalf("default address %s, key file gives %s", a, want)
	}
}

func TestLoadOrCreateDefaultMiningAddressMalformed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DefaultMiningKeyFile)
	bad := []byte{0x08, 0x01, 0x12, 0x40, 0x01} // a protobuf cut short
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	_, created, err := LoadOrCreateDefaultMiningAddress(dir, 0x1e)
	if !errors.Is(err, ErrMalformedKey) {
		t.Fatalf("error = %v, want ErrMalformedKey", err)
	}
	if created {
		t.Fatal("created = true alongside an error")
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bad) {
		t.Fatal("the malformed default key file was modified")
	}
	if _, err := crypto.UnmarshalPrivateKey(bad); err == nil {
		t.Fatal("test fixture unexpectedly parses as a key")
	}
}

func TestLoadOrCreateDefaultMiningAddressMismatchedPublicKey(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadOrCreateDefaultMiningAddress(dir, 0x1e); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, DefaultMiningKeyFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	damaged := flipPublicByte(t, path, priv.GetPublic())

	a, created, err := LoadOrCreateDefaultMiningAddress(dir, 0x1e)
	if !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("error = %v (address %s), want ErrKeyMismatch", err, a)
	}
	if created || a != (Address{}) {
		t.Fatalf("got address %s, created %v alongside an error", a, created)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name the path %s", err, path)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, damaged) {
		t.Fatal("the damaged mining key file was modified")
	}
	checkOnlyEntries(t, dir, DefaultMiningKeyFile)
}

func TestLoadOrCreateDefaultMiningAddressPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are not checked on Windows")
	}
	dir := t.TempDir()
	want, _, err := LoadOrCreateDefaultMiningAddress(dir, 0x1e)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, DefaultMiningKeyFile)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, created, err := LoadOrCreateDefaultMiningAddress(dir, 0x1e)
	if !errors.Is(err, ErrKeyPermissions) {
		t.Fatalf("0644 mining key: error = %v, want ErrKeyPermissions", err)
	}
	if created {
		t.Fatal("created = true alongside an error")
	}
	if !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Fatalf("error %q does not give the fix for %s", err, path)
	}
	checkOnlyEntries(t, dir, DefaultMiningKeyFile)
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	got, created, err := LoadOrCreateDefaultMiningAddress(dir, 0x1e)
	if err != nil || created || got != want {
		t.Fatalf("after chmod 600: address %s (want %s), created %v, error %v", got, want, created, err)
	}
}
