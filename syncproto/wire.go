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
	MsgStatus    byte = 1 // status: genesis, tips, max height, block count, total work
	MsgGetBlocks byte = 2 // getblocks: start height, end hash
	MsgInv       byte = 3 // inv: (type, hash, height) entries, parents first
	MsgGetData   byte = 4 // getdata: hashes
	MsgBlock     byte = 5 // block: one encoded block
	MsgNotFound  byte = 6 // notfound: hashes the server does not have; ends a getdata reply
	MsgGetHeight byte = 7 // getheight: the hashes at one height (bitmarkd's listener query)
	MsgHashes    byte = 8 // hashes: reply to getheight
)

// Limits. Every one is checked before reading the bytes it bounds.
const (
	// MaxStatusTips bounds the tips a status carries: a healthy DAG has a few
	// tips; more than this is abuse or a DAG too wide to merge (MaxParents
	// per block), and the election only needs to compare a prefix.
	MaxStatusTips = 64

	// MaxInvEntries bounds one inv: 2,000 entries (82 KB) answer one getblocks
	// round trip, enough to keep a pipeline of getdata batches busy.
	MaxInvEntries = 2000

	// MaxGetDataHashes bounds one getdata: 500 blocks (at most ~680 KB) per
	// request keeps a single reply under a second on slow links.
	MaxGetDataHashes = 500

	// MaxHeightHashes bounds a hashes reply: more blocks at one height than
	// this is not a DAG honest miners make.
	MaxHeightHashes = 1024

	// maxWorkBytes bounds the total-work integer (256-bit work per block
	// summed over at most 2^64 blocks fits in 40 bytes).
	maxWorkBytes = 40

	// InvTypeBlock is the only inventory type.
	InvTypeBlock byte = 1
)

// maxPayload is the largest payload each message type may carry.
func maxPayload(t byte) (int, bool) {
	switch t {
	case MsgStatus:
		return dag.HashSize + 8 + 8 + 1 + maxWorkBytes + 2 + MaxStatusTips*tipEntrySize, true
	case MsgGetBlocks:
		return 8 + dag.HashSize, true
	case MsgInv:
		return 2 + MaxInvEntries*invEntrySize, true
	case MsgGetData, MsgNotFound:
		return 2 + MaxGetDataHashes*dag.HashSize, true
	case MsgBlock:
		return dag.MaxBlockSize, true
	case MsgGetHeight:
		return 8, true
	case MsgHashes:
		return 2 + MaxHeightHashes*dag.HashSize, true
	}
	return 0, false
}

const (
	invEntrySize = 1 + dag.HashSize + 8
	tipEntrySize = dag.HashSize + 8
)

// Penalties the peer tracker adds for each kind of offense (it bans at 100).
const (
	// PenaltyMalformed: an honest peer never sends a malformed frame.
	PenaltyMalformed = 100
	// PenaltyUnrequested: a block nobody asked for.
	PenaltyUnrequested = 50
	// PenaltyEmptyPromise: the peer claimed blocks it then did not serve.
	PenaltyEmptyPromise = 50
	// PenaltyStall: no progress within StallTimeout while we synced from it;
	// slow links happen, so a stall alone does not ban.
	PenaltyStall = 34
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

// readFrame reads one frame, checking the announced length against the
// type's limit before reading the payload. want lists the acceptable types.
func readFrame(r *bufio.Reader, want ...byte) (byte, []byte, error) {
	size, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, io.EOF
		}
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

// Status is what peers exchange on connect.
type Status struct {
	Genesis   dag.Hash
	MaxHeight uint64
	Count     uint64
	TotalWork *big.Int
	Tips      []dag.Hash // at most MaxStatusTips, sorted
	// TipHeights[i] is the height of Tips[i]: it tells a peer that lacks a
	// tip how far down to start asking.
	TipHeights []uint64
}

func (s *Status) encode() []byte {
	work := s.TotalWork.Bytes()
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
	s.TotalWork = new(big.Int).SetBytes(p[:wl])
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

// GetBlocks asks for the inventory from StartHeight up to EndHash (the zero
// hash: up to the server's tips).
type GetBlocks struct {
	StartHeight uint64
	EndHash     dag.Hash
}

func (g *GetBlocks) encode() []byte {
	b := binary.LittleEndian.AppendUint64(nil, g.StartHeight)
	return append(b, g.EndHash[:]...)
}

func decodeGetBlocks(p []byte) (*GetBlocks, error) {
	if len(p) != 8+dag.HashSize {
		return nil, violation("getblocks of %d bytes", len(p))
	}
	g := &GetBlocks{StartHeight: binary.LittleEndian.Uint64(p)}
	copy(g.EndHash[:], p[8:])
	return g, nil
}

// InvEntry names one block the server has.
type InvEntry struct {
	Type   byte
	Hash   dag.Hash
	Height uint64
}

func encodeInv(inv []InvEntry) []byte {
	b := make([]byte, 0, 2+len(inv)*invEntrySize)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(inv)))
	for _, e := range inv {
		b = append(b, e.Type)
		b = append(b, e.Hash[:]...)
		b = binary.LittleEndian.AppendUint64(b, e.Height)
	}
	return b
}

func decodeInv(p []byte) ([]InvEntry, error) {
	if len(p) < 2 {
		return nil, violation("inv truncated")
	}
	n := int(binary.LittleEndian.Uint16(p))
	if n > MaxInvEntries {
		return nil, violation("inv of %d entries, at most %d", n, MaxInvEntries)
	}
	p = p[2:]
	if len(p) != n*invEntrySize {
		return nil, violation("inv of %d entries has %d bytes", n, len(p))
	}
	inv := make([]InvEntry, n)
	for i := range inv {
		e := p[i*invEntrySize:]
		inv[i].Type = e[0]
		if inv[i].Type != InvTypeBlock {
			return nil, violation("unknown inventory type %d", e[0])
		}
		copy(inv[i].Hash[:], e[1:])
		inv[i].Height = binary.LittleEndian.Uint64(e[1+dag.HashSize:])
	}
	return inv, nil
}

func leUint64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

func leAppendUint64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }
