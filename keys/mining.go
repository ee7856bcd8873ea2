package keys

import (
	"fmt"
	"path/filepath"
)

// DefaultMiningKeyFile is the name, inside the mining key directory, of the
// key behind the default mining address.
const DefaultMiningKeyFile = "default-mining.key"

// miningKeyExt is the file name extension of mining key files.
const miningKeyExt = ".key"

// NewMiningKey generates an Ed25519 mining key, saves it as
// dir/<address>.key with mode 0600 (creating dir with mode 0700 if it is
// missing) and returns its address on the network with the given prefix.
func NewMiningKey(dir string, prefix byte) (Address, error) {
	priv, err := newKey()
	if err != nil {
		return Address{}, fmt.Errorf("keys: generate mining key: %w", err)
	}
	addr, err := AddressFromPubKey(prefix, priv.GetPublic())
	if err != nil {
		return Address{}, err
	}
	if err := saveKey(filepath.Join(dir, addr.String()+miningKeyExt), priv); err != nil {
		return Address{}, fmt.Errorf("keys: save mining key: %w", err)
	}
	return addr, nil
}

// LoadOrCreateDefaultMiningAddress returns the address, on the network with
// the given prefix, of the key in dir/DefaultMiningKeyFile. The file follows
// the same rules as LoadOrCreateIdentity: an existing file must hold an
// Ed25519 key (anything else is an error naming the file, which is left
// untouched), and a missing one is generated and saved, with created true.
func LoadOrCreateDefaultMiningAddress(dir string, prefix byte) (addr Address, created bool, err error) {
	priv, created, err := loadOrCreateKey(filepath.Join(dir, DefaultMiningKeyFile), "default mining key")
	if err != nil {
		return Address{}, false, err
	}
	addr, err = AddressFromPubKey(prefix, priv.GetPublic())
	if err != nil {
		return Address{}, false, err
	}
	return addr, created, nil
}
