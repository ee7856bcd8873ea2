package dag

import (
	"crypto/sha256"
	"encoding/binary"
)

// Encoding limits. Every peer must share them: they are pinned by a test.
const (
	// BlockVersion is the only header version this code accepts.
	BlockVersion uint32 = 1

	// MaxParents bounds the parents a header may name. Eight lets a block merge
	// the tips left by several concurrent miners while keeping headers small
	// (at most 317 bytes).
	MaxParents = 8

	// AddrLen is the size of a miner address in a block body: one network
	// prefix byte and a 20-byte key hash (the keys package prints it).
	AddrLen = 21

	// MaxPayloadSize bounds the free payload a miner may put in a body.
	MaxPayloadSize = 1024

	// headerFixedSize is a header without its parent hashes: version, network,
	// parent count, timestamp, bits, body hash, nonce.
	headerFixedSize = 4 + 4 + 1 + 8 + 4 + HashSize + 8

	// MaxHeaderSize is the largest encoded header.
	MaxHeaderSize = headerFixedSize + MaxParents*HashSize

	// bodyFixedSize is a body without its payload: address and payload length.
	bodyFixedSize = AddrLen + 2

	// MaxBlockSize is the largest encoded block (1,364 bytes). Gossip and the
	// sync protocol size their frames from it.
	MaxBlockSize = MaxHeaderSize + bodyFixedSize + MaxPayloadSize

	// NonceOffsetFromEnd is where the nonce sits, counted back from the end of
	// an encoded header: the nonce is the header's last field, so a miner
	// rewrites only the last 8 bytes.
	NonceOffsetFromEnd = 8
)

// Header is a block header. Its encoding is hashed for the block hash.
type Header struct {
	// Version is the header version (BlockVersion).
	Version uint32
	// Net is the network magic of the network the block belongs to.
	Net uint32
	// Parents are the hashes of the parent blocks: at least one, at most
	// MaxParents, sorted ascending, unique.
	Parents []Hash
	// Timestamp is the block time in Unix milliseconds.
	Timestamp int64
	// Bits is the difficulty target in compact form.
	Bits uint32
	// BodyHash commits to the body: SHA-256 of the encoded body.
	BodyHash Hash
	// Nonce is varied by miners to meet the target.
	Nonce uint64
}

// Body is a block body: the miner's address and an optional payload.
type Body struct {
	// MinerAddr is the address credited with the block.
	MinerAddr [AddrLen]byte
	// Payload is free data of at most MaxPayloadSize bytes.
	Payload []byte
}

// Block is a header and a body.
type Block struct {
	Header Header
	Body   Body
}

// malformed reports bytes that are not a canonical encoding.
func malformed(format string, args ...any) error {
	return ruleError(ErrMalformedBlock, format, args...)
}

// EncodedSize returns the length of the header's encoding.
func (h *Header) EncodedSize() int { return headerFixedSize + len(h.Parents)*HashSize }

// AppendEncode appends the header's canonical encoding to dst. All integers are
// little-endian and fixed width; the nonce is last.
func (h *Header) AppendEncode(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, h.Version)
	dst = binary.LittleEndian.AppendUint32(dst, h.Net)
	dst = append(dst, byte(len(h.Parents)))
	for i := range h.Parents {
		dst = append(dst, h.Parents[i][:]...)
	}
	dst = binary.LittleEndian.AppendUint64(dst, uint64(h.Timestamp))
	dst = binary.LittleEndian.AppendUint32(dst, h.Bits)
	dst = append(dst, h.BodyHash[:]...)
	dst = binary.LittleEndian.AppendUint64(dst, h.Nonce)
	return dst
}

// Hash returns the block hash: DoubleSHA256 of the encoded header.
func (h *Header) Hash() Hash {
	var buf [MaxHeaderSize]byte
	return DoubleSHA256(h.AppendEncode(buf[:0]))
}

// decodeHeader reads a header from the front of b and returns the rest.
func decodeHeader(b []byte) (Header, []byte, error) {
	var h Header
	if len(b) < 9 {
		return h, nil, malformed("header truncated (%d bytes)", len(b))
	}
	h.Version = binary.LittleEndian.Uint32(b)
	h.Net = binary.LittleEndian.Uint32(b[4:])
	n := int(b[8])
	if n > MaxParents {
		return h, nil, malformed("%d parents, at most %d", n, MaxParents)
	}
	size := headerFixedSize + n*HashSize
	if len(b) < size {
		return h, nil, malformed("header truncated (%d of %d bytes)", len(b), size)
	}
	p := b[9:]
	if n > 0 {
		h.Parents = make([]Hash, n)
		for i := range h.Parents {
			copy(h.Parents[i][:], p)
			p = p[HashSize:]
		}
	}
	h.Timestamp = int64(binary.LittleEndian.Uint64(p))
	h.Bits = binary.LittleEndian.Uint32(p[8:])
	copy(h.BodyHash[:], p[12:])
	h.Nonce = binary.LittleEndian.Uint64(p[12+HashSize:])
	return h, b[size:], nil
}

// DecodeHeader decodes exactly one header; trailing bytes are an error.
func DecodeHeader(b []byte) (Header, error) {
	h, rest, err := decodeHeader(b)
	if err != nil {
		return Header{}, err
	}
	if len(rest) != 0 {
		return Header{}, malformed("%d trailing bytes after header", len(rest))
	}
	return h, nil
}

// EncodedSize returns the length of the body's encoding.
func (b *Body) EncodedSize() int { return bodyFixedSize + len(b.Payload) }

// AppendEncode appends the body's canonical encoding to dst: the address, the
// payload length as a little-endian uint16, the payload.
func (b *Body) AppendEncode(dst []byte) []byte {
	dst = append(dst, b.MinerAddr[:]...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(b.Payload)))
	return append(dst, b.Payload...)
}

// Hash returns the body commitment that goes in the header.
func (b *Body) Hash() Hash {
	var buf [bodyFixedSize + MaxPayloadSize]byte
	return Hash(sha256.Sum256(b.AppendEncode(buf[:0])))
}

func decodeBody(b []byte) (Body, error) {
	var body Body
	if len(b) < bodyFixedSize {
		return body, malformed("body truncated (%d bytes)", len(b))
	}
	copy(body.MinerAddr[:], b)
	n := int(binary.LittleEndian.Uint16(b[AddrLen:]))
	if n > MaxPayloadSize {
		return body, malformed("payload of %d bytes, at most %d", n, MaxPayloadSize)
	}
	rest := b[bodyFixedSize:]
	if len(rest) != n {
		return body, malformed("payload length %d but %d bytes follow", n, len(rest))
	}
	if n > 0 {
		body.Payload = append([]byte(nil), rest...)
	}
	return body, nil
}

// EncodedSize returns the length of the block's encoding.
func (b *Block) EncodedSize() int { return b.Header.EncodedSize() + b.Body.EncodedSize() }

// Encode returns the block's canonical encoding: header then body.
func (b *Block) Encode() []byte {
	return b.AppendEncode(make([]byte, 0, b.EncodedSize()))
}

// AppendEncode appends the block's canonical encoding to dst.
func (b *Block) AppendEncode(dst []byte) []byte {
	return b.Body.AppendEncode(b.Header.AppendEncode(dst))
}

// Hash returns the block hash (the header hash).
func (b *Block) Hash() Hash { return b.Header.Hash() }

// DecodeBlock decodes one block of at most MaxBlockSize bytes. It checks only
// the encoding; Validate checks the rules. Decoding and re-encoding a block
// gives back the same bytes.
func DecodeBlock(b []byte) (*Block, error) {
	if len(b) > MaxBlockSize {
		return nil, ruleError(ErrBlockTooBig, "block of %d bytes, at most %d", len(b), MaxBlockSize)
	}
	h, rest, err := decodeHeader(b)
	if err != nil {
		return nil, err
	}
	body, err := decodeBody(rest)
	if err != nil {
		return nil, err
	}
	return &Block{Header: h, Body: body}, nil
}
