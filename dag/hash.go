package dag

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// HashSize is the size of a block hash in bytes.
const HashSize = 32

// Hash is a block hash: the double SHA-256 of the encoded header. As a
// proof-of-work number it is read big-endian, so comparing hashes byte by byte
// compares the numbers. Its text form is plain hex in byte order.
type Hash [HashSize]byte

// ZeroHash is the all-zero hash; it never names a block.
var ZeroHash Hash

// String returns the hash as 64 lowercase hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// HashStrings returns the hashes' text forms, in order; never nil, so JSON
// shows [] rather than null.
func HashStrings(hs []Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

// IsZero reports whether h is the zero hash.
func (h Hash) IsZero() bool { return h == ZeroHash }

// Less reports whether h sorts before o (byte order, which is numeric order).
func (h Hash) Less(o Hash) bool {
	for i := range h {
		if h[i] != o[i] {
			return h[i] < o[i]
		}
	}
	return false
}

// MarshalText encodes the hash as hex, so hashes read well in JSON.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText parses 64 hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ParseHash parses a hash written as 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*HashSize {
		return h, fmt.Errorf("dag: hash must be %d hex digits, got %d characters", 2*HashSize, len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("dag: bad hash %q: %w", s, err)
	}
	return h, nil
}

// DoubleSHA256 returns SHA-256(SHA-256(b)), the proof-of-work hash function.
func DoubleSHA256(b []byte) Hash {
	first := sha256.Sum256(b)
	return Hash(sha256.Sum256(first[:]))
}
