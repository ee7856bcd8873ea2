package dag_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/dagnode/dagnode/dag"
)

// TestSharedConstants pins the limits every peer must agree on: changing one
// splits the network, so it must be a deliberate change of this test too.
func TestSharedConstants(t *testing.T) {
	for name, c := range map[string][2]int{
		"MaxParents":     {dag.MaxParents, 8},
		"AddrLen":        {dag.AddrLen, 21},
		"MaxPayloadSize": {dag.MaxPayloadSize, 1024},
		"MaxHeaderSize":  {dag.MaxHeaderSize, 317},
		"MaxBlockSize":   {dag.MaxBlockSize, 1364},
		"BlockVersion":   {int(dag.BlockVersion), 1},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %d, pinned at %d", name, c[0], c[1])
		}
	}
}

func vectorBlock() *dag.Block {
	var p1, p2, body dag.Hash
	for i := range p1 {
		p1[i] = byte(i)
		p2[i] = byte(0x80 + i)
		body[i] = 0xee
	}
	b := &dag.Block{
		Header: dag.Header{
			Version:   1,
			Net:       0x01020304,
			Parents:   []dag.Hash{p1, p2},
			Timestamp: 0x0a0b0c0d0e0f,
			Bits:      0x207fffff,
			BodyHash:  body,
			Nonce:     0x1122334455667788,
		},
		Body: dag.Body{Payload: []byte("hi")},
	}
	b.Body.MinerAddr[0] = 0x6f
	b.Body.MinerAddr[20] = 0x01
	return b
}

// TestBlockVector pins the canonical encoding and hash byte for byte.
func TestBlockVector(t *testing.T) {
	const wantHex = "01000000" + "04030201" + "02" +
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" +
		"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f" +
		"0f0e0d0c0b0a0000" + "ffff7f20" +
		"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee" +
		"8877665544332211" +
		"6f0000000000000000000000000000000000000001" + "0200" + "6869"
	b := vectorBlock()
	got := b.Encode()
	if hex.EncodeToString(got) != wantHex {
		t.Fatalf("encoding\n got %x\nwant %s", got, wantHex)
	}
	if b.EncodedSize() != len(got) {
		t.Fatalf("EncodedSize %d, encoding has %d bytes", b.EncodedSize(), len(got))
	}
	hdr := got[:b.Header.EncodedSize()]
	if want := dag.DoubleSHA256(hdr); b.Hash() != want {
		t.Fatalf("hash %s, want double SHA-256 of header %s", b.Hash(), want)
	}
	const wantHash = "1a3ea836f520e8a74a2b868be8ba300f7db8d9327d88af84d56d0d7fce2d1aa8"
	if b.Hash().String() != wantHash {
		t.Fatalf("hash %s, pinned %s", b.Hash(), wantHash)
	}
	back, err := dag.DecodeBlock(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Encode(), got) || back.Hash() != b.Hash() {
		t.Fatal("decode(encode(b)) differs from b")
	}
}

// TestGenesisVectors pins every network's genesis hash.
func TestGenesisVectors(t *testing.T) {
	want := map[string]string{
		"mainnet": "6349452f61d5f1c618fb662cf34e7ee0488dbfa6576aa17f9ba454622e3704b1",
		"testnet": "74a6e33e589230b20a676741fc79f7496b408b229aad74767a2e1fade8eebe15",
		"simnet":  "86314ed203dc6e8f01fa2dd0091ee57d2a97fcf67c1148f3c999b95a776a6081",
		"regtest": "8f3a863d1a78a4598f1cf91b9d7059aa9d536aed999c1cbe6bf55aab35403ccf",
	}
	seen := map[dag.Hash]bool{}
	for _, p := range dag.Networks() {
		if got := p.GenesisHash.String(); got != want[p.Name] {
			t.Errorf("%s genesis %s, pinned %s", p.Name, got, want[p.Name])
		}
		if seen[p.GenesisHash] {
			t.Errorf("%s shares its genesis with another network", p.Name)
		}
		seen[p.GenesisHash] = true
		if p.GenesisBlock.Hash() != p.GenesisHash {
			t.Errorf("%s GenesisHash does not match GenesisBlock", p.Name)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := vectorBlock().Encode()
	hdrLen := vectorBlock().Header.EncodedSize()
	cases := map[string][]byte{
		"empty":            nil,
		"truncated header": good[:hdrLen-1],
		"no body":          good[:hdrLen],
		"trailing byte":    append(append([]byte(nil), good...), 0),
		"short payload":    good[:len(good)-1],
		"too many parents": func() []byte { b := append([]byte(nil), good...); b[8] = dag.MaxParents + 1; return b }(),
		"oversize":         make([]byte, dag.MaxBlockSize+1),
		"payload len > max": func() []byte {
			b := append([]byte(nil), good[:len(good)-4]...)
			return append(b, 0x01, 0x04) // 1025
		}(),
	}
	for name, raw := range cases {
		_, err := dag.DecodeBlock(raw)
		if !dag.IsRuleError(err, dag.ErrMalformedBlock) && !dag.IsRuleError(err, dag.ErrBlockTooBig) {
			t.Errorf("%s: got %v, want a malformed/too-big rule error", name, err)
		}
	}
}

func TestCompactRoundTrip(t *testing.T) {
	for _, bits := range []uint32{0x1d00ffff, 0x207fffff, 0x1b0404cb, 0x03123456, 0x1f00ffff} {
		if got := dag.BigToCompact(dag.CompactToBig(bits)); got != bits {
			t.Errorf("compact %#08x round trips to %#08x", bits, got)
		}
	}
	for _, p := range dag.Networks() {
		if dag.CompactToBig(p.PowLimitBits).Cmp(p.PowLimit) > 0 {
			t.Errorf("%s: PowLimitBits above PowLimit", p.Name)
		}
	}
}

func FuzzDecodeBlock(f *testing.F) {
	f.Add(vectorBlock().Encode())
	for _, p := range dag.Networks() {
		f.Add(p.GenesisBlock.Encode())
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := dag.DecodeBlock(raw)
		if err != nil {
			return
		}
		again := b.Encode()
		if !bytes.Equal(again, raw) {
			t.Fatalf("encode(decode(x)) != x\n x %x\n y %x", raw, again)
		}
		b2, err := dag.DecodeBlock(again)
		if err != nil || b2.Hash() != b.Hash() {
			t.Fatalf("decode(encode(b)) != b: %v", err)
		}
	})
}
