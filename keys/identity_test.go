package keys

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// checkPerm fails unless path has exactly the permission bits want. File
// modes are not meaningful on Windows, where the check is skipped.
func checkPerm(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Fatalf("%s has mode %v, want %v", path, got, want)
	}
}

// checkOnlyEntries fails unless dir holds exactly the named entries, in order,
// so a leftover temporary file is caught.
func checkOnlyEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}

func TestLoadOrCreateIdentity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "node")
	path := filepath.Join(dir, "identity.key")

	priv, created, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("created = false for a new identity")
	}
	if priv.Type() != crypto.Ed25519 {
		t.Fatalf("key type %v, want Ed25519", priv.Type())
	}
	checkPerm(t, path, 0o600)
	checkPerm(t, dir, 0o700)
	checkOnlyEntries(t, dir, "identity.key")

	id1, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	priv2, created, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Fatal("created = true when the identity already existed")
	}
	id2, err := peer.IDFromPrivateKey(priv2)
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 {
		t.Fatalf("peer ID changed on reload: %s then %s", id1, id2)
	}
	if !priv.Equals(priv2) {
		t.Fatal("reloaded key differs")
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("loading an identity rewrote its file")
	}
}

func TestLoadOrCreateIdentityBadFile(t *testing.T) {
	good, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	goodBytes, err := crypto.MarshalPrivateKey(good)
	if err != nil {
		t.Fatal(err)
	}
	secp, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secpBytes, err := crypto.MarshalPrivateKey(secp)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		content []byte
		want    error
	}{
		{"empty", nil, ErrMalformedKey},
		{"garbage", []byte("this is not a key\n"), ErrMalformedKey},
		{"truncated", goodBytes[:len(goodBytes)-7], ErrMalformedKey},
		{"too large", bytes.Repeat([]byte{0}, maxKeyFileSize+1), ErrMalformedKey},
		{"secp256k1", secpBytes, ErrKeyType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "identity.key")
			if err := os.WriteFile(path, c.content, 0o600); err != nil {
				t.Fatal(err)
			}
			priv, created, err := LoadOrCreateIdentity(path)
			if !errors.Is(err, c.want) {
				t.Fatalf("error = %v, want %v", err, c.want)
			}
			if priv != nil || created {
				t.Fatalf("got key %v, created %v alongside an error", priv, created)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the path %s", err, path)
			}
			got, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if !bytes.Equal(got, c.content) {
				t.Fatal("the bad key file was modified")
			}
			checkOnlyEntries(t, dir, "identity.key")
		})
	}
}

func TestLoadOrCreateIdentityUnreadable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.key")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	priv, created, err := LoadOrCreateIdentity(path)
	if err == nil {
		t.Fatal("loading a directory as an identity succeeded")
	}
	if priv != nil || created {
		t.Fatalf("got key %v, created %v alongside an error", priv, created)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name the path %s", err, path)
	}
	fi, err := os.Stat(path)
	if err != nil || !fi.IsDir() {
		t.Fatalf("the directory at the identity path was replaced (stat: %v)", err)
	}
}

func TestLoadOrCreateIdentityParentIsFile(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateIdentity(filepath.Join(parent, "identity.key")); err == nil {
		t.Fatal("creating an identity under a regular file succeeded")
	}
}

// flipPublicByte flips one byte of the public half of the Ed25519 key file
// at path, which must be the stored public key of want, and returns the new
// file content. A marshalled Ed25519 key ends with the seed and then the
// public key, 32 bytes each.
func flipPublicByte(t *testing.T, path string, want crypto.PubKey) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := want.Raw()
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < len(pub) || !bytes.Equal(data[len(data)-len(pub):], pub) {
		t.Fatalf("%s does not end with its public key", path)
	}
	data[len(data)-len(pub)/2] ^= 0x01
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := crypto.UnmarshalPrivateKey(data); err != nil {
		t.Fatalf("the flipped key no longer parses (%v): the test would not reach the check", err)
	}
	return data
}

func TestLoadOrCreateIdentityMismatchedPublicKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.key")
	priv, _, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := flipPublicByte(t, path, priv.GetPublic())

	got, created, err := LoadOrCreateIdentity(path)
	if !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("error = %v, want ErrKeyMismatch", err)
	}
	if got != nil || created {
		t.Fatalf("got key %v, created %v alongside an error", got, created)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name the path %s", err, path)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, damaged) {
		t.Fatal("the damaged key file was modified")
	}
	checkOnlyEntries(t, dir, "identity.key")
}

func TestLoadOrCreateIdentityMismatchedSeed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	if _, _, err := LoadOrCreateIdentity(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-32-1] ^= 0x80 // the seed's last byte
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateIdentity(path); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("error = %v, want ErrKeyMismatch", err)
	}
}

func TestLoadOrCreateIdentityPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are not checked on Windows")
	}
	cases := []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o644, false},
		{0o640, false},
		{0o604, false},
		{0o620, false},
		{0o666, false},
	}
	for _, c := range cases {
		t.Run(c.mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "identity.key")
			want, _, err := LoadOrCreateIdentity(path)
			if err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, c.mode); err != nil {
				t.Fatal(err)
			}
			got, created, err := LoadOrCreateIdentity(path)
			if c.ok {
				if err != nil {
					t.Fatalf("mode %v refused: %v", c.mode, err)
				}
				if created || !got.Equals(want) {
					t.Fatalf("mode %v: got another key (created %v)", c.mode, created)
				}
				return
			}
			if !errors.Is(err, ErrKeyPermissions) {
				t.Fatalf("mode %v: error = %v, want ErrKeyPermissions", c.mode, err)
			}
			if got != nil || created {
				t.Fatalf("got key %v, created %v alongside an error", got, created)
			}
			if msg := err.Error(); !strings.Contains(msg, "chmod 600 "+path) {
				t.Fatalf("error %q does not give the fix for %s", msg, path)
			}
			checkPerm(t, path, c.mode)
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, before) {
				t.Fatal("a refused key file was modified")
			}
			checkOnlyEntries(t, dir, "identity.key")

			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
			if got, _, err := LoadOrCreateIdentity(path); err != nil || !got.Equals(want) {
				t.Fatalf("after chmod 600: %v", err)
			}
		})
	}
}
