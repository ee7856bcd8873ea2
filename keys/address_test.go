package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/mr-tron/base58"
)

// vectorAddress is prefix 0x1e followed by the hash bytes 0x00..0x13.
func vectorAddress() Address {
	var a Address
	a[0] = 0x1e
	for i := 0; i < HashLen; i++ {
		a[1+i] = byte(i)
	}
	return a
}

// vectorString is the pinned printable form of vectorAddress; it was checked
// against an independent implementation (Python hashlib + base58 by hand).
const vectorString = "D597kHXGdkwkryF9oGhz9Bp1ypTpD1u99Z"

func TestAddressVector(t *testing.T) {
	a := vectorAddress()
	if got := a.String(); got != vectorString {
		t.Fatalf("String() = %q, want %q", got, vectorString)
	}
	if a.Prefix() != 0x1e {
		t.Fatalf("Prefix() = %#x, want 0x1e", a.Prefix())
	}
	got, err := DecodeAddress(vectorString, 0x1e)
	if err != nil {
		t.Fatalf("DecodeAddress: %v", err)
	}
	if got != a {
		t.Fatalf("DecodeAddress = %x, want %x", got, a)
	}
}

func TestAddressRoundTrip(t *testing.T) {
	var zero, ones Address
	for i := range ones {
		ones[i] = 0xff
	}
	cases := []Address{zero, ones, vectorAddress()}
	for range 20 {
		var a Address
		if _, err := rand.Read(a[:]); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, a)
	}
	for _, a := range cases {
		s := a.String()
		if len(s) > maxEncodedLen {
			t.Fatalf("%x encodes to %d characters, more than maxEncodedLen %d", a, len(s), maxEncodedLen)
		}
		got, err := DecodeAddress(s, a.Prefix())
		if err != nil {
			t.Fatalf("DecodeAddress(%q): %v", s, err)
		}
		if got != a {
			t.Fatalf("round trip of %x gave %x", a, got)
		}
	}
	if s := ones.String(); len(s) != maxEncodedLen {
		t.Fatalf("all-0xff address has %d characters, maxEncodedLen is %d", len(s), maxEncodedLen)
	}
}

// encodeWithChecksum base58-encodes payload followed by its checksum.
func encodeWithChecksum(payload []byte) string {
	sum := checksum(payload)
	return base58.Encode(append(append([]byte{}, payload...), sum[:]...))
}

func TestDecodeAddressErrors(t *testing.T) {
	good := vectorString
	// Flip the last character to another valid one: the checksum breaks.
	last := good[len(good)-1]
	repl := byte('2')
	if last == repl {
		repl = '3'
	}
	badSum := good[:len(good)-1] + string(repl)

	// A payload byte changed while the old checksum is kept.
	raw, err := base58.Decode(good)
	if err != nil {
		t.Fatal(err)
	}
	raw[5] ^= 0x01
	badPayload := base58.Encode(raw)

	cases := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrEmptyAddress},
		{"zero digit", "0" + good[1:], ErrInvalidBase58},
		{"capital O", good[:3] + "O" + good[4:], ErrInvalidBase58},
		{"capital I", good[:3] + "I" + good[4:], ErrInvalidBase58},
		{"lower l", good[:3] + "l" + good[4:], ErrInvalidBase58},
		{"space", " " + good, ErrInvalidBase58},
		{"non-ASCII", good[:5] + "é" + good[6:], ErrInvalidBase58},
		{"invalid UTF-8", good[:5] + "\xff" + good[6:], ErrInvalidBase58},
		{"too short", encodeWithChecksum(make([]byte, AddressLen-1)), ErrAddressLength},
		{"too long", encodeWithChecksum(make([]byte, AddressLen+1)), ErrAddressLength},
		{"truncated", good[:len(good)-1], ErrAddressLength},
		{"very long", strings.Repeat("z", 1000), ErrAddressLength},
		{"one digit", "2", ErrAddressLength},
		{"bad checksum", badSum, ErrBadChecksum},
		{"bad payload", badPayload, ErrBadChecksum},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := DecodeAddress(c.in, 0x1e)
			if !errors.Is(err, c.want) {
				t.Fatalf("DecodeAddress(%q) error = %v, want %v", c.in, err, c.want)
			}
			if a != (Address{}) {
				t.Fatalf("DecodeAddress(%q) returned non-zero address %x with an error", c.in, a)
			}
		})
	}
}

func TestDecodeAddressWrongNetwork(t *testing.T) {
	_, err := DecodeAddress(vectorString, 0x6f)
	if !errors.Is(err, ErrWrongNetwork) {
		t.Fatalf("error = %v, want ErrWrongNetwork", err)
	}
	var wn *WrongNetworkError
	if !errors.As(err, &wn) {
		t.Fatalf("error %v is not a *WrongNetworkError", err)
	}
	if wn.Got != 0x1e || wn.Want != 0x6f {
		t.Fatalf("WrongNetworkError = %+v, want Got 0x1e Want 0x6f", *wn)
	}
	if !strings.Contains(err.Error(), "another network") {
		t.Fatalf("message %q does not say the address belongs to another network", err)
	}
	if errors.Is(err, ErrBadChecksum) {
		t.Fatal("wrong-network error also matches ErrBadChecksum")
	}
}

func TestAddressFromPubKey(t *testing.T) {
	// A fixed public key, so the test does not depend on key generation.
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(0xa0 + i)
	}
	pub, err := crypto.UnmarshalEd25519PublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	a, err := AddressFromPubKey(0x1e, pub)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(raw)
	var want Address
	want[0] = 0x1e
	copy(want[1:], h[:20])
	if a != want {
		t.Fatalf("AddressFromPubKey = %x, want %x", a, want)
	}

	b, err := AddressFromPubKey(0x6f, pub)
	if err != nil {
		t.Fatal(err)
	}
	if b.Prefix() != 0x6f || [HashLen]byte(b[1:]) != [HashLen]byte(a[1:]) {
		t.Fatalf("prefix 0x6f address %x does not share the hash of %x", b, a)
	}

	if _, err := AddressFromPubKey(0x1e, nil); err == nil {
		t.Fatal("AddressFromPubKey(nil) succeeded")
	}
}

func FuzzDecodeAddress(f *testing.F) {
	f.Add(vectorString, byte(0x1e))
	f.Add(vectorString, byte(0x6f))
	f.Add("", byte(0))
	f.Add("1111111111111111111114oLvT2", byte(0))
	f.Add("2n1XR4oJkmBdJMxhBGQGb96gQ88xUyGML1i", byte(0xff))
	f.Add("0OIl", byte(0x1e))
	f.Add(strings.Repeat("z", 40), byte(0x1e))
	f.Fuzz(func(t *testing.T, s string, prefix byte) {
		a, err := DecodeAddress(s, prefix)
		if err != nil {
			if a != (Address{}) {
				t.Fatalf("non-zero address %x returned with error %v", a, err)
			}
			known := []error{ErrEmptyAddress, ErrInvalidBase58, ErrAddressLength, ErrBadChecksum, ErrWrongNetwork}
			for _, k := range known {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("DecodeAddress(%q) returned unclassified error %v", s, err)
		}
		if got := a.String(); got != s {
			t.Fatalf("DecodeAddress(%q) = %x, which encodes to %q", s, a, got)
		}
		if a.Prefix() != prefix {
			t.Fatalf("DecodeAddress(%q, %#x) returned prefix %#x", s, prefix, a.Prefix())
		}
	})
}
