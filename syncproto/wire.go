package syncproto

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/dagnode/dagnode/dag"
)

// Message types. A frame is: uvarint length of the rest, one type byte, the
// payload. Both peers must agree on these values: a test pins them.
const (
	MsgStatus    byte = 1 // status: genesis, tips, max height, block count, blue work
	MsgGetBlocks byte = 2 // getblocks: the client's locator
	MsgInv       byte = 3 // inv: flags, then block hashes, parents first
	MsgGetData   byte = 4 // getdata: hashes
	MsgBlock     byte = 5 // block: one encoded block
	MsgNotFound  byte = 6 // notfound: hashes the server does not have; ends a getdata reply
	// Types 7 and 8 (getheight, hashes) were sync/1's and are retired: a
	// frame of either type is an unknown type.
)

// Inv flags.
const (
	// InvLast marks the last inv frame of a getblocks reply.
	InvLast byte = 1 << 0
	// InvMore, on the last frame, says the reply stopped at MaxInvPerReply
	// blocks: the client fetches them and asks again.
	InvMore byte = 1 << 1
)

// Limits. Every one is checked before reading the bytes it bounds.
const (
	// MaxStatusTips bounds the tips a status carries: a healthy DAG has a few
	// tips; more than this is abuse or a DAG too wide to merge (MaxParents
	// per block), and the election only needs to compare a prefix.
	MaxStatusTips = 64

	// MaxInvEntries bounds one inv frame: 2,000 hashes (64 KB), so the
	// client can start fetching while the rest of a long reply is on its way.
	MaxInvEntries = 2000

	// MaxInvPerReply bounds the blocks one getblocks reply lists: enough for
	// an initial sync to run a long while on one request, small enough for
	// the client to hold (3.2 MB of hashes). A longer answer ends with
	// InvMore.
	MaxInvPerReply = 100_000

	// MaxLocatorHashes bounds a getblocks locator: dag.MaxLocatorTips tips
	// plus a doubling walk down the selected chain (64 steps cover 2^64
	// blocks).
	MaxLocatorHashes = dag.MaxLocatorTips + 64

	// MaxGetDataHashes bounds one getdata: 500 blocks (at most ~680 KB) per
	// request keeps a single reply under a second on slow links.
	MaxGetDataHashes = 500

	// maxWorkBytes bounds the total-work integer (256-bit work per block
	// summed over at most 2^64 blocks fits in 40 bytes).
	maxWorkBytes = 40
)

// maxPayload is the largest payload each message type may carry.
func maxPayload(t byte) (int, bool) {
	switch t {
	case MsgStatus:
		return dag.HashSize + 8 + 8 + 1 + maxWorkBytes + 2 + MaxStatusTips*tipEntrySize, true
	case MsgGetBlocks:
		return 2 + MaxLocatorHashes*dag.HashSize, true
	case MsgInv:
		return 1 + 2 + MaxInvEntries*dag.HashSize, true
	case MsgGetData, MsgNotFound:
		return 2 + MaxGetDataHashes*dag.HashSize, true
	case MsgBlock:
		return dag.MaxBlockSize, true
	}
	return 0, false
}

const tipEntrySize = dag.HashSize + 8

// Penalties the peer tracker adds for each kind of offense (it bans at 100).
const (
	// PenaltyMalformed: an honest peer never sends a malformed frame.
	PenaltyMalformed = 100
	// PenaltyUnrequested: a block nobody asked for.
	PenaltyUnrequested = 50
	// PenaltyEmptyPromise: the peer claimed blocks it then did not serve
	// (notfound for tips or listed blocks, an inventory without its tips,
	// parents of blocks it forwarded).
	PenaltyEmptyPromise = 50
	// PenaltyStall: as sync peer, it let StallTimeout pass without a frame.
	// Slow links happen: a stall alone does not ban, and scores decay.
	PenaltyStall = 20
	// PenaltyOrphan: one orphan it sent whose parents never came within
	// orphanGrace (a flooder's orphans, past its share of the pool).
	PenaltyOrphan = 2
	// PenaltyWrongNetwork: another network's peer is never useful.
	PenaltyWrongNetwork = 100
)

// ProtocolError is a peer's violation of the wire format or the protocol:
// the stream is reset and the peer is penalised by Penalty points.
type ProtocolError struct {
	Reason string
	Points int
	Err    error // an underlying sentinel such as ErrWrongNetwork, or nil
}

// Error implements error.
func (e *ProtocolError) Error() string { return "syncproto: protocol violation: " + e.Reason }

// Unwrap returns the underlying error.
func (e *ProtocolError) Unwrap() error { return e.Err }

// Penalty is what the offense costs the peer in the peer tracker.
func (e *ProtocolError) Penalty() int { return e.Points }

func violation(format string, args ...any) error {
	return &ProtocolError{Reason: fmt.Sprintf(format, args...), Points: PenaltyMalformed}
}

func offense(points int, format string, args ...any) error {
	return &ProtocolError{Reason: fmt.Sprintf(format, args...), Points: points}
}

// writeFrame writes one frame.
func writeFrame(w io.Writer, t byte, payload []byte) error {
	var hdr [binary.MaxVarintLen64 + 1]byte
	n := binary.PutUvarint(hdr[:], uint64(len(payload)+1))
	hdr[n] = t
	if _, err := w.Write(hdr[:n+1]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// frameOverhead is the bytes a frame adds to its payload: the length
// uvarint and the type.
func frameOverhead(payload int) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], uint64(payload+1)) + 1
}

// readFrame reads one frame, checking the announced length against the
// type's limit before reading the payload. want lists the acceptable types.
func readFrame(r *bufio.Reader, want ...byte) (byte, []byte, error) {
	size, err := readFrameSize(r)
	if err != nil {
		return 0, nil, err
	}
	if size == 0 {
		return 0, nil, violation("empty frame")
	}
	t, err := r.ReadByte()
	if err != nil {
		return 0, nil, io.ErrUnexpectedEOF
	}
	limit, known := maxPayload(t)
	if !known {
		return 0, nil, violation("unknown message type %d", t)
	}
	ok := false
	for _, w := range want {
		ok = ok || w == t
	}
	if !ok {
		return 0, nil, violation("unexpected message type %d", t)
	}
	if size-1 > uint64(limit) {
		return 0, nil, violation("oversize frame: type %d of %d bytes, limit %d", t, size-1, limit)
	}
	payload := make([]byte, size-1)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, io.ErrUnexpectedEOF
	}
	return t, payload, nil
}

// readFrameSize reads a frame's uvarint length. It is binary.ReadUvarint
// except that a length overflowing 64 bits, which only the peer's bytes can
// cause, is a violation; read errors are returned as they are (io.EOF before
// the first byte, io.ErrUnexpectedEOF after it).
func readFrameSize(r *bufio.Reader) (uint64, error) {
	var x uint64
	var s uint
	for i := range binary.MaxVarintLen64 {
		b, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if i > 0 {
					return 0, io.ErrUnexpectedEOF
				}
				return 0, io.EOF
			}
			return 0, err
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<s, nil
		}
		x |= uint64(b&0x7f) << s
		s += 7
	}
	return 0, violation("frame length overflows 64 bits")
}

// Status is what peers exchange on connect.
type Status struct {
	Genesis   dag.Hash
	MaxHeight uint64
	Count     uint64
	BlueWork  *big.Int
	Tips      []dag.Hash // at most MaxStatusTips, sorted
	// TipHeights[i] is the height of Tips[i]: it tells a peer that lacks a
	// tip how far down to start asking.
	TipHeights []uint64
}

func (s *Status) encode() []byte {
	work := s.BlueWork.Bytes()
	b := make([]byte, 0, dag.HashSize+8+8+1+len(work)+2+len(s.Tips)*tipEntrySize)
	b = append(b, s.Genesis[:]...)
	b = binary.LittleEndian.AppendUint64(b, s.MaxHeight)
	b = binary.LittleEndian.AppendUint64(b, s.Count)
	b = append(b, byte(len(work)))
	b = append(b, work...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s.Tips)))
	for i, t := range s.Tips {
		b = append(b, t[:]...)
		b = binary.LittleEndian.AppendUint64(b, s.TipHeights[i])
	}
	return b
}

func decodeStatus(p []byte) (*Status, error) {
	s := &Status{}
	if len(p) < dag.HashSize+8+8+1 {
		return nil, violation("status truncated")
	}
	copy(s.Genesis[:], p)
	p = p[dag.HashSize:]
	s.MaxHeight = binary.LittleEndian.Uint64(p)
	s.Count = binary.LittleEndian.Uint64(p[8:])
	wl := int(p[16])
	p = p[17:]
	if wl > maxWorkBytes || len(p) < wl+2 {
		return nil, violation("status work field malformed")
	}
	s.BlueWork = new(big.Int).SetBytes(p[:wl])
	if wl > 0 && p[0] == 0 {
		return nil, violation("status work not minimally encoded")
	}
	p = p[wl:]
	n := int(binary.LittleEndian.Uint16(p))
	p = p[2:]
	if n > MaxStatusTips {
		return nil, violation("status with %d tips, at most %d", n, MaxStatusTips)
	}
	if len(p) != n*tipEntrySize {
		return nil, violation("status with %d tips has %d bytes", n, len(p))
	}
	s.Tips = make([]dag.Hash, n)
	s.TipHeights = make([]uint64, n)
	for i := range n {
		e := p[i*tipEntrySize:]
		copy(s.Tips[i][:], e)
		s.TipHeights[i] = binary.LittleEndian.Uint64(e[dag.HashSize:])
	}
	return s, nil
}

// encodeHashes encodes a count (uint16) and hashes.
func encodeHashes(hs []dag.Hash) []byte {
	b := make([]byte, 0, 2+len(hs)*dag.HashSize)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(hs)))
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

// decodeHashes decodes a hash list of at most limit entries with nothing
// after it.
func decodeHashes(p []byte, limit int) ([]dag.Hash, error) {
	if len(p) < 2 {
		return nil, violation("hash list truncated")
	}
	n := int(binary.LittleEndian.Uint16(p))
	if n > limit {
		return nil, violation("%d hashes, at most %d", n, limit)
	}
	p = p[2:]
	if len(p) != n*dag.HashSize {
		return nil, violation("hash list of %d entries has %d bytes", n, len(p))
	}
	hs := make([]dag.Hash, n)
	for i := range hs {
		copy(hs[i][:], p[i*dag.HashSize:])
	}
	return hs, nil
}

// Inv is one inv frame: flags (InvLast, InvMore) and the hashes of blocks
// the server has, parents before children.
type Inv struct {
	Flags  byte
	Hashes []dag.Hash
}

func (inv *Inv) encode() []byte {
	return append([]byte{inv.Flags}, encodeHashes(inv.Hashes)...)
}

func decodeInv(p []byte) (*Inv, error) {
	if len(p) < 1 {
		return nil, violation("inv truncated")
	}
	inv := &Inv{Flags: p[0]}
	if inv.Flags&^(InvLast|InvMore) != 0 || inv.Flags == InvMore {
		return nil, violation("inv flags %#x", inv.Flags)
	}
	var err error
	inv.Hashes, err = decodeHashes(p[1:], MaxInvEntries)
	return inv, err
}
