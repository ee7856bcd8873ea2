package syncproto

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multistream"

	"github.com/dagnode/dagnode/dag"
)

// ourStatus is our DAG's status in wire form, with at most MaxStatusTips
// tips.
func (m *Manager) ourStatus() *Status {
	st := m.cfg.DAG.Status()
	tips := st.Tips[:min(len(st.Tips), MaxStatusTips)]
	heights := make([]uint64, len(tips))
	for i, t := range tips {
		if info, ok := m.cfg.DAG.BlockInfo(t); ok {
			heights[i] = uint64(info.Height)
		}
	}
	return &Status{Genesis: st.Genesis, MaxHeight: uint64(st.MaxHeight), Count: uint64(st.Count), TotalWork: st.TotalWork, Tips: tips, TipHeights: heights}
}

// dagStatus converts a peer's wire status for the peer tracker.
func (s *Status) dagStatus() dag.Status {
	return dag.Status{Genesis: s.Genesis, Tips: s.Tips, MaxHeight: int64(s.MaxHeight), Count: int(s.Count), TotalWork: s.TotalWork}
}

// handleStream serves one request. Every protocol handler has this shape:
// recover, deadline before the first read, bounded frames, Close on
// success, Reset on error.
func (m *Manager) handleStream(s network.Stream) {
	p := s.Conn().RemotePeer()
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("sync handler panic", "peer", p, "panic", r)
			s.Reset()
		}
	}()
	if err := m.serve(s); err != nil {
		s.Reset()
		var pe *ProtocolError
		if errors.As(err, &pe) {
			m.cfg.Peers.Penalize(p, err)
		}
		m.log.Debug("sync request failed", "peer", p, "err", err)
		return
	}
	s.Close()
}

func (m *Manager) serve(s network.Stream) error {
	p := s.Conn().RemotePeer()
	if s.Conn().Stat().Limited {
		m.relayedRefused.Add(1)
		return ErrRelayed
	}
	if err := s.SetReadDeadline(time.Now().Add(requestReadTimeout)); err != nil {
		return err
	}
	r := bufio.NewReader(s)
	t, payload, err := readFrame(r, MsgStatus, MsgGetBlocks, MsgGetData, MsgGetHeight)
	if err != nil {
		return err
	}
	// One request per stream: nothing may follow it.
	if err := expectEOF(r); err != nil {
		return err
	}
	if err := s.SetWriteDeadline(time.Now().Add(replyWriteTimeout)); err != nil {
		return err
	}
	w := bufio.NewWriter(s)
	switch t {
	case MsgStatus:
		theirs, err := decodeStatus(payload)
		if err != nil {
			return err
		}
		if err := m.checkStatus(p, theirs); err != nil {
			return err
		}
		err = writeFrame(w, MsgStatus, m.ourStatus().encode())
	case MsgGetBlocks:
		g, err2 := decodeGetBlocks(payload)
		if err2 != nil {
			return err2
		}
		err = writeFrame(w, MsgInv, encodeInv(m.inventory(g)))
	case MsgGetData:
		hashes, err2 := decodeHashes(payload, MaxGetDataHashes)
		if err2 != nil {
			return err2
		}
		err = m.serveBlocks(s, w, p, hashes)
	case MsgGetHeight:
		if len(payload) != 8 {
			return violation("getheight of %d bytes", len(payload))
		}
		h := int64(leUint64(payload))
		hashes := m.cfg.DAG.HashesAtHeight(h)
		if len(hashes) > MaxHeightHashes {
			hashes = hashes[:MaxHeightHashes]
		}
		err = writeFrame(w, MsgHashes, encodeHashes(hashes))
	}
	if err != nil {
		return err
	}
	return w.Flush()
}

// inventory lists the blocks from g.StartHeight up to g.EndHash's height (or
// our greatest height), whole heights at a time, parents before children,
// at most MaxInvEntries.
func (m *Manager) inventory(g *GetBlocks) []InvEntry {
	end := m.cfg.DAG.Status().MaxHeight
	if !g.EndHash.IsZero() {
		if info, ok := m.cfg.DAG.BlockInfo(g.EndHash); ok {
			end = info.Height
		}
	}
	var inv []InvEntry
	for h := int64(g.StartHeight); h <= end && h >= 0; h++ {
		hashes := m.cfg.DAG.HashesAtHeight(h)
		if len(inv)+len(hashes) > MaxInvEntries {
			if len(inv) == 0 { // one height wider than a page: send what fits
				hashes = hashes[:MaxInvEntries]
			} else {
				break
			}
		}
		for _, hash := range hashes {
			inv = append(inv, InvEntry{Type: InvTypeBlock, Hash: hash, Height: uint64(h)})
		}
	}
	return inv
}

// serveBlocks writes the requested blocks, then a notfound frame (possibly
// empty) that ends the reply. Each block is charged to the peer's rate
// limit; an exhausted limit delays the reply instead of failing it.
func (m *Manager) serveBlocks(s network.Stream, w *bufio.Writer, p peer.ID, hashes []dag.Hash) error {
	ctx, cancel := context.WithTimeout(m.ctx, replyWriteTimeout)
	defer cancel()
	lim := m.limiter(p)
	var missing []dag.Hash
	for _, h := range hashes {
		raw, err := m.cfg.DAG.BlockBytes(ctx, h)
		if err != nil {
			missing = append(missing, h)
			continue
		}
		if err := lim.Wait(ctx); err != nil {
			return err
		}
		if err := writeFrame(w, MsgBlock, raw); err != nil {
			return err
		}
		m.served.Add(1)
	}
	return writeFrame(w, MsgNotFound, encodeHashes(missing))
}

// checkStatus refuses a peer of another network and records a good status.
func (m *Manager) checkStatus(p peer.ID, st *Status) error {
	if st.Genesis != m.cfg.DAG.Params().GenesisHash {
		return &ProtocolError{Reason: "genesis " + st.Genesis.String() + " is another network's", Points: PenaltyWrongNetwork, Err: ErrWrongNetwork}
	}
	m.cfg.Peers.SetStatus(p, st.dagStatus())
	m.setPeerStatus(p, st)
	return nil
}

// claimsDagnode reports whether p's identify protocol version names a
// dagnode network ("/dagnode/<network>").
func (m *Manager) claimsDagnode(p peer.ID) bool {
	v, err := m.cfg.Host.Peerstore().Get(p, "ProtocolVersion")
	s, _ := v.(string)
	return err == nil && strings.HasPrefix(s, "/dagnode/")
}

// request opens a stream, writes one request frame and closes the write
// side. The stream's deadline is the context's.
func (m *Manager) request(ctx context.Context, p peer.ID, t byte, payload []byte) (network.Stream, *bufio.Reader, error) {
	s, err := m.cfg.Host.NewStream(ctx, p, m.proto)
	if err != nil {
		if errors.Is(err, multistream.ErrNotSupported[protocol.ID]{}) {
			if !m.claimsDagnode(p) {
				// Not a dagnode at all: an AutoNAT dial-back, a DHT or
				// relay client. Nothing to sync with, nothing to punish.
				return nil, nil, fmt.Errorf("%w: %v", ErrNotDagnode, err)
			}
			return nil, nil, &ProtocolError{Reason: "does not speak " + string(m.proto), Points: PenaltyWrongNetwork, Err: ErrWrongNetwork}
		}
		return nil, nil, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(SyncRequestTimeout)
	}
	s.SetDeadline(deadline)
	if err := writeFrame(s, t, payload); err != nil {
		s.Reset()
		return nil, nil, err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return nil, nil, err
	}
	return s, bufio.NewReader(s), nil
}

// finish closes a client stream after a complete reply, or resets it.
func finish(s network.Stream, r *bufio.Reader, err error) error {
	if err == nil {
		err = expectEOF(r)
	}
	if err != nil {
		s.Reset()
		return err
	}
	s.Close()
	return nil
}

// RequestStatus sends our status to p and returns p's, which is also given
// to the peer tracker. A peer of another network gives an error wrapping
// ErrWrongNetwork.
func (m *Manager) RequestStatus(ctx context.Context, p peer.ID) (*Status, error) {
	s, r, err := m.request(ctx, p, MsgStatus, m.ourStatus().encode())
	if err != nil {
		return nil, err
	}
	var st *Status
	_, payload, err := readFrame(r, MsgStatus)
	if err == nil {
		st, err = decodeStatus(payload)
	}
	if err := finish(s, r, err); err != nil {
		return nil, err
	}
	if err := m.checkStatus(p, st); err != nil {
		return nil, err
	}
	return st, nil
}

// RequestInv asks p for the inventory from start up to end (zero: p's tips).
func (m *Manager) RequestInv(ctx context.Context, p peer.ID, start uint64, end dag.Hash) ([]InvEntry, error) {
	g := GetBlocks{StartHeight: start, EndHash: end}
	s, r, err := m.request(ctx, p, MsgGetBlocks, g.encode())
	if err != nil {
		return nil, err
	}
	var inv []InvEntry
	_, payload, err := readFrame(r, MsgInv)
	if err == nil {
		inv, err = decodeInv(payload)
	}
	if err == nil {
		for i := 1; i < len(inv); i++ {
			if inv[i].Height < inv[i-1].Height {
				err = violation("inv not ordered by height")
				break
			}
		}
	}
	return inv, finish(s, r, err)
}

// RequestHeight asks p for the hashes of its blocks at a height.
func (m *Manager) RequestHeight(ctx context.Context, p peer.ID, height uint64) ([]dag.Hash, error) {
	s, r, err := m.request(ctx, p, MsgGetHeight, leAppendUint64(nil, height))
	if err != nil {
		return nil, err
	}
	var hashes []dag.Hash
	_, payload, err := readFrame(r, MsgHashes)
	if err == nil {
		hashes, err = decodeHashes(payload, MaxHeightHashes)
	}
	return hashes, finish(s, r, err)
}

// RequestBlocks asks p for blocks by hash (at most MaxGetDataHashes) and
// returns them in the order received, with the hashes p said it lacks. A
// block that was not asked for, or sent twice, is a protocol violation.
func (m *Manager) RequestBlocks(ctx context.Context, p peer.ID, hashes []dag.Hash) ([]*dag.Block, []dag.Hash, error) {
	if len(hashes) == 0 || len(hashes) > MaxGetDataHashes {
		return nil, nil, fmt.Errorf("syncproto: getdata of %d hashes", len(hashes))
	}
	s, r, err := m.request(ctx, p, MsgGetData, encodeHashes(hashes))
	if err != nil {
		return nil, nil, err
	}
	wanted := make(map[dag.Hash]bool, len(hashes))
	for _, h := range hashes {
		wanted[h] = true
	}
	var (
		blocks   []*dag.Block
		notFound []dag.Hash
	)
	err = func() error {
		for {
			t, payload, err := readFrame(r, MsgBlock, MsgNotFound)
			if err != nil {
				if errors.Is(err, io.EOF) {
					return violation("getdata reply ended without notfound")
				}
				return err
			}
			if t == MsgNotFound {
				notFound, err = decodeHashes(payload, MaxGetDataHashes)
				return err
			}
			b, err := dag.DecodeBlock(payload)
			if err != nil {
				return err // a *dag.RuleError: the tracker bans for it
			}
			h := b.Hash()
			if !wanted[h] {
				return offense(PenaltyUnrequested, "block %s was not requested", h)
			}
			delete(wanted, h)
			blocks = append(blocks, b)
		}
	}()
	if err := finish(s, r, err); err != nil {
		return nil, nil, err
	}
	return blocks, notFound, nil
}

// expectEOF checks that nothing follows the last expected frame.
func expectEOF(r *bufio.Reader) error {
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		return violation("bytes after the last frame")
	}
	return nil
}
