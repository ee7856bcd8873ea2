package keys

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
)

// ErrMalformedKey is wrapped by the error returned when a key file exists but
// does not hold a marshalled private key.
var ErrMalformedKey = errors.New("malformed key file")

// ErrKeyType is wrapped by the error returned when a key file holds a valid
// private key of a type other than Ed25519.
var ErrKeyType = errors.New("unsupported key type")

// LoadOrCreateIdentity returns the node's libp2p identity key stored at path.
//
// If the file exists it must hold an Ed25519 key marshalled with
// crypto.MarshalPrivateKey; an unreadable, malformed or non-Ed25519 file is an
// error naming the path, and the file is left untouched. If the file does not
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
	return priv, nil
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
	return writeFileAtomic(path, data)
}
