package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"

	"github.com/dagnode/dagnode/internal/securefile"
)

// ErrMalformedKey is wrapped by the error returned when a key file exists but
// does not hold a marshalled private key.
var ErrMalformedKey = errors.New("malformed key file")

// ErrKeyType is wrapped by the error returned when a key file holds a valid
// private key of a type other than Ed25519.
var ErrKeyType = errors.New("unsupported key type")

// ErrKeyMismatch is wrapped by the error returned when a key file's stored
// public key is not the one its private seed derives: the file is damaged,
// and using either half would silently change the peer ID or the mining
// address.
var ErrKeyMismatch = errors.New("key file's public key does not match its private key")

// ErrKeyPermissions is wrapped by the error returned when a key file may be
// read or written by its group or by others. The error names the file and
// the fix (chmod 600).
var ErrKeyPermissions = errors.New("key file permissions too open")

// LoadOrCreateIdentity returns the node's libp2p identity key stored at path.
//
// If the file exists it must hold an Ed25519 key marshalled with
// crypto.MarshalPrivateKey, whose stored public key matches its seed, in a
// file no one but its owner may access (mode 0600 or 0400); anything else
// (unreadable, malformed, non-Ed25519, mismatched, too open) is an error
// naming the path, and the file is left untouched. If the file does not
// exist, a new Ed25519 key is generated and saved there with mode 0600
// (creating the parent directory with mode 0700), and created is true.
func LoadOrCreateIdentity(path string) (priv crypto.PrivKey, created bool, err error) {
	return loadOrCreateKey(path, "identity key")
}

// loadOrCreateKey implements the shared load rules for key files; what names
// the key in error messages.
func loadOrCreateKey(path, what string) (crypto.PrivKey, bool, error) {
	priv, err := loadKey(path, what)
	if err == nil {
		return priv, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	priv, err = newKey()
	if err != nil {
		return nil, false, fmt.Errorf("keys: generate %s: %w", what, err)
	}
	if err := saveKey(path, priv); err != nil {
		return nil, false, fmt.Errorf("keys: save %s: %w", what, err)
	}
	return priv, true, nil
}

// loadKey reads and parses the Ed25519 key file at path. A missing file
// yields an error matching fs.ErrNotExist.
func loadKey(path, what string) (crypto.PrivKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: load %s: %w", what, err)
	}
	priv, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("keys: load %s: %w %s: %w", what, ErrMalformedKey, path, err)
	}
	if t := priv.Type(); t != pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("keys: load %s: %w: %s holds a %s key, want Ed25519", what, ErrKeyType, path, t)
	}
	if err := checkEd25519(priv); err != nil {
		return nil, fmt.Errorf("keys: load %s: %w: %s is damaged; restore it from a backup "+
			"(and keep the damaged file: its private half may still be good)", what, err, path)
	}
	return priv, nil
}

// checkEd25519 returns an error wrapping ErrKeyMismatch unless the public key
// stored beside priv's seed is the one the seed derives. libp2p keeps both
// and uses the stored one (for the peer ID and the address) without checking.
func checkEd25519(priv crypto.PrivKey) error {
	raw, err := priv.Raw()
	if err != nil {
		return err
	}
	if len(raw) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: %d key bytes, want %d", ErrMalformedKey, len(raw), ed25519.PrivateKeySize)
	}
	want := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize]).Public().(ed25519.PublicKey)
	if !bytes.Equal(raw[ed25519.SeedSize:], want) {
		return ErrKeyMismatch
	}
	return nil
}

// newKey generates an Ed25519 private key from the system's secure source.
func newKey() (crypto.PrivKey, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	return priv, err
}

// saveKey marshals priv and writes it atomically to path with mode 0600.
func saveKey(path string, priv crypto.PrivKey) error {
	data, err := crypto.MarshalPrivateKey(priv)
	if err != nil {
		return err
	}
	return securefile.Write(path, data)
}
