package keys

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
)

// FuzzKeyFile writes arbitrary bytes as a key file (mode 0600) and loads it
// as the identity key and as the default mining key. Loading must never
// panic, the two loaders must agree, a refused file must be left as it was,
// and a loaded key must round-trip: saved again and reloaded, it is the same
// key, and it signs what its public key verifies.
func FuzzKeyFile(f *testing.F) {
	for range 2 {
		priv, err := newKey()
		if err != nil {
			f.Fatal(err)
		}
		b, err := crypto.MarshalPrivateKey(priv)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
		raw, _ := priv.Raw()
		// The legacy 96-byte form with the redundant public key.
		legacy := append(append([]byte{0x08, 0x01, 0x12, 0x60}, raw...), raw[32:]...)
		f.Add(legacy)
		// A public half that is not the seed's.
		mismatched := append([]byte(nil), b...)
		mismatched[len(mismatched)-1] ^= 1
		f.Add(mismatched)
	}
	secp, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	b, err := crypto.MarshalPrivateKey(secp)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x01, 0x12, 0x00})
	f.Add(make([]byte, maxKeyFileSize+1))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		idPath := filepath.Join(dir, "identity.key")
		if err := os.WriteFile(idPath, data, 0o600); err != nil {
			t.Fatal(err)
		}
		mineDir := filepath.Join(dir, "mining")
		if err := os.Mkdir(mineDir, 0o700); err != nil {
			t.Fatal(err)
		}
		minePath := filepath.Join(mineDir, DefaultMiningKeyFile)
		if err := os.WriteFile(minePath, data, 0o600); err != nil {
			t.Fatal(err)
		}

		priv, created, err := LoadOrCreateIdentity(idPath)
		const prefix = 0x6f
		addr, mcreated, merr := LoadOrCreateDefaultMiningAddress(mineDir, prefix)
		if created || mcreated {
			t.Fatalf("an existing file was replaced by a new key (identity %v, mining %v)", created, mcreated)
		}
		if (err == nil) != (merr == nil) {
			t.Fatalf("identity and mining loaders disagree: %v / %v", err, merr)
		}
		if err != nil {
			for _, p := range []string{idPath, minePath} {
				got, rerr := os.ReadFile(p)
				if rerr != nil || !bytes.Equal(got, data) {
					t.Fatalf("refused key file %s was changed (%v)", p, rerr)
				}
			}
			return
		}
		if priv.Type() != pb.KeyType_Ed25519 {
			t.Fatalf("loaded a %s key", priv.Type())
		}
		want, err := AddressFromPubKey(prefix, priv.GetPublic())
		if err != nil || want != addr {
			t.Fatalf("mining address %s, identity key gives %s (%v)", addr, want, err)
		}
		msg := []byte("dagnode key file fuzz")
		sig, err := priv.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := priv.GetPublic().Verify(msg, sig); !ok || err != nil {
			t.Fatalf("loaded key's signature does not verify under its public key (%v): file %x", err, data)
		}

		// Round trip: save the loaded key and load it again.
		again := filepath.Join(dir, "again", "identity.key")
		if err := saveKey(again, priv); err != nil {
			t.Fatal(err)
		}
		priv2, created, err := LoadOrCreateIdentity(again)
		if err != nil || created {
			t.Fatalf("reloading a saved key: created %v, %v", created, err)
		}
		if !priv.Equals(priv2) {
			t.Fatal("a saved and reloaded key differs")
		}
	})
}
