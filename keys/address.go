package keys

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/mr-tron/base58"
)

// HashLen is the length of the public key hash inside an Address.
const HashLen = 20

// AddressLen is the length of an Address: one network prefix byte followed by
// a HashLen-byte public key hash.
const AddressLen = 1 + HashLen

// checksumLen is the length of the checksum appended to an address before
// base58 encoding.
const checksumLen = 4

// maxEncodedLen is the longest base58 string that can encode
// AddressLen+checksumLen bytes (25 bytes of 0xff need 35 digits). Longer input
// is rejected before decoding.
const maxEncodedLen = 35

// base58Alphabet is the Bitcoin base58 alphabet used by github.com/mr-tron/base58.
const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// Errors returned (wrapped) by DecodeAddress. Test for them with errors.Is.
var (
	// ErrEmptyAddress is returned for an empty address string.
	ErrEmptyAddress = errors.New("empty address")
	// ErrInvalidBase58 is returned when an address contains a character
	// outside the base58 alphabet.
	ErrInvalidBase58 = errors.New("invalid base58 character in address")
	// ErrAddressLength is returned when an address does not decode to
	// AddressLen bytes plus a 4-byte checksum.
	ErrAddressLength = errors.New("wrong address length")
	// ErrBadChecksum is returned when an address's checksum does not match its
	// contents, usually because of a typo.
	ErrBadChecksum = errors.New("bad address checksum")
	// ErrWrongNetwork is matched by a *WrongNetworkError, returned when an
	// address is valid but belongs to another network.
	ErrWrongNetwork = errors.New("address belongs to another network")
)

// WrongNetworkError is the error DecodeAddress returns for a well-formed
// address whose prefix is not the wanted one. It matches ErrWrongNetwork.
type WrongNetworkError struct {
	// Got is the prefix found in the address.
	Got byte
	// Want is the prefix of the network the caller asked for.
	Want byte
}

// Error reports both prefixes.
func (e *WrongNetworkError) Error() string {
	return fmt.Sprintf("keys: address belongs to another network (prefix 0x%02x, want 0x%02x)", e.Got, e.Want)
}

// Is reports whether target is ErrWrongNetwork.
func (e *WrongNetworkError) Is(target error) bool { return target == ErrWrongNetwork }

// Address is a mining address: a network prefix byte followed by the first
// HashLen bytes of the SHA-256 of a raw public key.
type Address [AddressLen]byte

// Prefix returns the network prefix byte of a.
func (a Address) Prefix() byte { return a[0] }

// String returns the printable form of a: base58 of the AddressLen bytes
// followed by the first 4 bytes of SHA-256(SHA-256(those bytes)).
func (a Address) String() string {
	var buf [AddressLen + checksumLen]byte
	copy(buf[:], a[:])
	sum := checksum(a[:])
	copy(buf[AddressLen:], sum[:])
	return base58.Encode(buf[:])
}

// checksum returns the first checksumLen bytes of SHA-256(SHA-256(b)).
func checksum(b []byte) [checksumLen]byte {
	first := sha256.Sum256(b)
	second := sha256.Sum256(first[:])
	var c [checksumLen]byte
	copy(c[:], second[:])
	return c
}

// DecodeAddress parses the printable form of an address and checks that its
// prefix is wantPrefix. The error wraps ErrEmptyAddress, ErrInvalidBase58,
// ErrAddressLength or ErrBadChecksum, or is a *WrongNetworkError.
func DecodeAddress(s string, wantPrefix byte) (Address, error) {
	if s == "" {
		return Address{}, fmt.Errorf("keys: %w", ErrEmptyAddress)
	}
	for i, r := range s {
		if r >= 0x80 || strings.IndexByte(base58Alphabet, byte(r)) < 0 {
			return Address{}, fmt.Errorf("keys: %w: %q at offset %d", ErrInvalidBase58, r, i)
		}
	}
	if len(s) > maxEncodedLen {
		return Address{}, fmt.Errorf("keys: %w: %d characters, at most %d", ErrAddressLength, len(s), maxEncodedLen)
	}
	raw, err := base58.Decode(s)
	if err != nil {
		return Address{}, fmt.Errorf("keys: %w: %w", ErrInvalidBase58, err)
	}
	if len(raw) != AddressLen+checksumLen {
		return Address{}, fmt.Errorf("keys: %w: %d bytes, want %d", ErrAddressLength, len(raw), AddressLen+checksumLen)
	}
	var a Address
	copy(a[:], raw)
	if sum := checksum(a[:]); !bytes.Equal(sum[:], raw[AddressLen:]) {
		return Address{}, fmt.Errorf("keys: %w", ErrBadChecksum)
	}
	if a.Prefix() != wantPrefix {
		return Address{}, &WrongNetworkError{Got: a.Prefix(), Want: wantPrefix}
	}
	return a, nil
}

// AddressFromPubKey returns the address of pub on the network with the given
// prefix: the prefix followed by the first HashLen bytes of the SHA-256 of
// pub's raw bytes.
func AddressFromPubKey(prefix byte, pub crypto.PubKey) (Address, error) {
	if pub == nil {
		return Address{}, errors.New("keys: address from nil public key")
	}
	raw, err := pub.Raw()
	if err != nil {
		return Address{}, fmt.Errorf("keys: address from public key: %w", err)
	}
	h := sha256.Sum256(raw)
	var a Address
	a[0] = prefix
	copy(a[1:], h[:HashLen])
	return a, nil
}
