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
	return &Status{Genesis: st.Genesis, MaxHeight: uint64(st.MaxHeight), Count: uint64(st.Count), BlueWork: st.BlueWork, Tips: tips, TipHeights: heights}
}

// dagStatus converts a peer's wire status for the peer tracker.
func (s *Status) dagStatus() dag.Status {
	return dag.Status{Genesis: s.Genesis, Tips: s.Tips, MaxHeight: int64(s.MaxHeight), Count: int(s.Count), BlueWork: s.BlueWork}
}

// handleStream serves one request. Every protocol handler has this shape:
// recover, deadline before the first read, bounded frames, Close on
// success, Reset on error.
func (m *Manager) handleStream(s network.Stream) {
	p := s.Conn().RemotePeer()
	m.handlersActive.Add(1)
	defer m.handlersActive.Add(-1)
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
	t, payload, err := readFrame(r, MsgStatus, MsgGetBlocks, MsgGetData)
	if err != nil {
		return err
	}
	// One request per stream: bytes already behind it are an offense. The
	// client's close is not waited for before replying (a late close is no
	// fault); trailing bytes that come later are caught after the reply.
	if r.Buffered() > 0 {
		return violation("bytes after the request")
	}
	if err := s.SetWriteDeadline(time.Now().Add(replyWriteTimeout)); err != nil {
		return err
	}
	w := bufio.NewWriter(s)
	switch t {
	case MsgStatus:
		theirs, err2 := decodeStatus(payload)
		if err2 != nil {
			return err2
		}
		if err2 := m.checkStatus(p, theirs); err2 != nil {
			return err2
		}
		err = writeFrame(w, MsgStatus, m.ourStatus().encode())
	case MsgGetBlocks:
		locator, err2 := decodeHashes(payload, MaxLocatorHashes)
		if err2 != nil {
			return err2
		}
		err = m.serveInventory(w, p, locator)
	case MsgGetData:
		hashes, err2 := decodeHashes(payload, MaxGetDataHashes)
		if err2 != nil {
			return err2
		}
		err = m.serveBlocks(w, p, hashes)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return err
	}
	// The reply is out. Trailing bytes are still an offense; a reset, a
	// deadline or a late close is not, and the stream is closed as usual.
	if err := expectEOF(r); isOffense(err) {
		return err
	}
	return nil
}

// serveInventory answers a getblocks: the blocks of our DAG outside the
// past of the client's locator, parents first, in inv frames of at most
// MaxInvEntries, at most MaxInvPerReply in all. The walk runs under
// invSlots (it reads the whole DAG for a client at the genesis), and the
// entries are charged to the peer's serving budget.
func (m *Manager) serveInventory(w *bufio.Writer, p peer.ID, locator []dag.Hash) error {
	ctx, cancel := context.WithTimeout(m.ctx, replyWriteTimeout)
	defer cancel()
	select {
	case m.invSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	list, more := m.cfg.DAG.NotInPast(locator, MaxInvPerReply)
	<-m.invSlots
	lim := m.limiter(p)
	for {
		n := min(len(list), MaxInvEntries)
		inv := Inv{Hashes: make([]dag.Hash, n)}
		for i, e := range list[:n] {
			inv.Hashes[i] = e.Hash
		}
		list = list[n:]
		if len(list) == 0 {
			inv.Flags = InvLast
			if more {
				inv.Flags |= InvMore
			}
		}
		if err := lim.WaitN(ctx, 1+n/invEntriesPerToken); err != nil {
			return err
		}
		if err := writeFrame(w, MsgInv, inv.encode()); err != nil {
			return err
		}
		if inv.Flags&InvLast != 0 {
			return nil
		}
	}
}

// serveBlocks writes the requested blocks, then a notfound frame (possibly
// empty) that ends the reply. Each block is charged to the peer's rate
// limit; an exhausted limit delays the reply instead of failing it.
func (m *Manager) serveBlocks(w *bufio.Writer, p peer.ID, hashes []dag.Hash) error {
	ctx, cancel := context.WithTimeout(m.ctx, replyWriteTimeout)
	defer cancel()
	lim := m.limiter(p)
	missing, err := m.cfg.DAG.BlocksBytes(ctx, hashes, func(_ dag.Hash, raw []byte) error {
		if err := lim.Wait(ctx); err != nil {
			return err
		}
		if err := writeFrame(w, MsgBlock, raw); err != nil {
			return err
		}
		m.served.Add(1)
		return nil
	})
	if err != nil {
		return err
	}
	return writeFrame(w, MsgNotFound, encodeHashes(missing))
}

// checkStatus refuses a peer of another network and implausible claims,
// and records a good status.
func (m *Manager) checkStatus(p peer.ID, st *Status) error {
	params := m.cfg.DAG.Params()
	if st.Genesis != params.GenesisHash {
		return &ProtocolError{Reason: "genesis " + st.Genesis.String() + " is another network's", Points: PenaltyWrongNetwork, Err: ErrWrongNetwork}
	}
	if err := plausible(st, params); err != nil {
		return err
	}
	m.cfg.Peers.SetStatus(p, st.dagStatus())
	m.setPeerStatus(p, st)
	return nil
}

// plausible refuses a status that no DAG can have: more heights than
// blocks, no tips, a tip above the greatest height, or less blue work than
// the genesis carries (it is blue in every view).
func plausible(st *Status, params *dag.Params) error {
	if st.Count == 0 || st.MaxHeight >= st.Count || len(st.Tips) == 0 || uint64(len(st.Tips)) > st.Count {
		return violation("status of %d blocks, height %d and %d tips", st.Count, st.MaxHeight, len(st.Tips))
	}
	for _, h := range st.TipHeights {
		if h > st.MaxHeight {
			return violation("status tip at height %d above its height %d", h, st.MaxHeight)
		}
	}
	if st.BlueWork.Cmp(dag.Work(params.PowLimitBits)) < 0 {
		return violation("status with less blue work than the genesis carries")
	}
	return nil
}

// claimsDagnode reports whether p's identify protocol version names a
// dagnode network ("/dagnode/<network>").
func (m *Manager) claimsDagnode(p peer.ID) bool {
	v, err := m.cfg.Host.Peerstore().Get(p, "ProtocolVersion")
	s, _ := v.(string)
	return err == nil && strings.HasPrefix(s, "/dagnode/")
}

// clientStream is one request's stream on the client side.
type clientStream struct {
	network.Stream
	r *bufio.Reader
	// unwatch stops resetting the stream when the request's context ends.
	unwatch func() bool
}

// request opens a stream, writes one request frame and closes the write
// side. The request must be written within StallTimeout (or by ctx's
// deadline, if sooner); each frame of the reply gets its own deadline
// (readReply). Cancelling ctx resets the stream.
func (m *Manager) request(ctx context.Context, p peer.ID, t byte, payload []byte) (*clientStream, error) {
	s, err := m.cfg.Host.NewStream(ctx, p, m.proto)
	if err != nil {
		if errors.Is(err, multistream.ErrNotSupported[protocol.ID]{}) {
			if !m.claimsDagnode(p) {
				// Not a dagnode at all: an AutoNAT dial-back, a DHT or
				// relay client. Nothing to sync with, nothing to punish.
				return nil, fmt.Errorf("%w: %v", ErrNotDagnode, err)
			}
			return nil, &ProtocolError{Reason: "does not speak " + string(m.proto), Points: PenaltyWrongNetwork, Err: ErrWrongNetwork}
		}
		return nil, err
	}
	s.SetWriteDeadline(m.deadline(ctx))
	if err := writeFrame(s, t, payload); err != nil {
		s.Reset()
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return nil, err
	}
	return &clientStream{Stream: s, r: bufio.NewReader(s), unwatch: context.AfterFunc(ctx, func() { s.Reset() })}, nil
}

// deadline is StallTimeout from now, or ctx's deadline if sooner.
func (m *Manager) deadline(ctx context.Context) time.Time {
	d := time.Now().Add(m.opts.StallTimeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// readReply reads the next frame of a reply, which must come by deadline:
// a peer that lets StallTimeout pass without a frame is stalling. It counts
// the bytes in Stats.BytesIn.
func (m *Manager) readReply(ctx context.Context, s *clientStream, want ...byte) (byte, []byte, error) {
	s.SetReadDeadline(m.deadline(ctx))
	t, payload, err := readFrame(s.r, want...)
	if err == nil {
		m.bytesIn.Add(uint64(len(payload) + frameOverhead(len(payload))))
		if s.Conn().RemotePeer() == m.currentSyncPeer() {
			m.syncFrames.Add(1)
		}
	}
	return t, payload, err
}

// eofWait bounds the wait for the server's close after a complete reply: a
// server that closes late or never only loses us this much.
const eofWait = 2 * time.Second

// finish closes a client stream after a complete reply, or resets it. A
// read error after the last frame (the server reset, or did not close
// within eofWait) leaves the reply standing: it is no offense, and the reply
// was whole. Bytes after the last frame are one.
func (s *clientStream) finish(err error) error {
	s.unwatch()
	if err == nil {
		s.SetReadDeadline(time.Now().Add(eofWait))
		err = expectEOF(s.r)
		if err != nil && !isOffense(err) {
			s.Reset()
			return nil
		}
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
	s, err := m.request(ctx, p, MsgStatus, m.ourStatus().encode())
	if err != nil {
		return nil, err
	}
	var st *Status
	_, payload, err := m.readReply(ctx, s, MsgStatus)
	if err == nil {
		st, err = decodeStatus(payload)
	}
	if err := s.finish(err); err != nil {
		return nil, err
	}
	if err := m.checkStatus(p, st); err != nil {
		return nil, err
	}
	return st, nil
}

// RequestInventory asks p for the blocks of its DAG outside the past of
// locator and hands each inv frame's entries to fn as they arrive, last set
// for the last frame (fn may block: the reply is read no faster). more
// reports that p's reply stopped at MaxInvPerReply. Each frame must come
// within StallTimeout of the previous one (or of the request), and the
// reply may list at most MaxInvPerReply blocks.
func (m *Manager) RequestInventory(ctx context.Context, p peer.ID, locator []dag.Hash, fn func(hashes []dag.Hash, last bool) error) (more bool, err error) {
	s, err := m.request(ctx, p, MsgGetBlocks, encodeHashes(locator))
	if err != nil {
		return false, err
	}
	err = func() error {
		total := 0
		for {
			_, payload, err := m.readReply(ctx, s, MsgInv)
			if err != nil {
				if errors.Is(err, io.EOF) {
					return violation("inv reply ended without its last frame")
				}
				return err
			}
			inv, err := decodeInv(payload)
			if err != nil {
				return err
			}
			if total += len(inv.Hashes); total > MaxInvPerReply {
				return violation("inv reply of more than %d blocks", MaxInvPerReply)
			}
			if err := fn(inv.Hashes, inv.Flags&InvLast != 0); err != nil {
				return err
			}
			if inv.Flags&InvLast != 0 {
				more = inv.Flags&InvMore != 0
				return nil
			}
		}
	}()
	if err := s.finish(err); err != nil {
		return false, fmt.Errorf("getblocks: %w", err)
	}
	return more, nil
}

// RequestBlocks asks p for blocks by hash (at most MaxGetDataHashes) and
// returns the ones it sent in the order asked (whatever order they came
// in), with the hashes p said it lacks. Each block is decoded and checked
// (DAG.Check) as it arrives, beside the manager loop; one that fails is
// returned as its *dag.RuleError. A block that was not asked for, or sent
// twice, is a protocol violation.
func (m *Manager) RequestBlocks(ctx context.Context, p peer.ID, hashes []dag.Hash) ([]dag.Checked, []dag.Hash, error) {
	if len(hashes) == 0 || len(hashes) > MaxGetDataHashes {
		return nil, nil, fmt.Errorf("syncproto: getdata of %d hashes", len(hashes))
	}
	s, err := m.request(ctx, p, MsgGetData, encodeHashes(hashes))
	if err != nil {
		return nil, nil, err
	}
	wanted := make(map[dag.Hash]bool, len(hashes))
	for _, h := range hashes {
		wanted[h] = true
	}
	var (
		got      = make(map[dag.Hash]dag.Checked, len(hashes))
		notFound []dag.Hash
	)
	err = func() error {
		for {
			t, payload, err := m.readReply(ctx, s, MsgBlock, MsgNotFound)
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
			b, err := m.cfg.DAG.Check(payload)
			if err != nil {
				return err // a *dag.RuleError: the tracker bans for it
			}
			h := b.Hash()
			if !wanted[h] {
				return offense(PenaltyUnrequested, "block %s was not requested", h)
			}
			delete(wanted, h)
			got[h] = b
		}
	}()
	if err := s.finish(err); err != nil {
		return nil, nil, fmt.Errorf("getdata: %w", err)
	}
	blocks := make([]dag.Checked, 0, len(got))
	for _, h := range hashes {
		if b, ok := got[h]; ok {
			blocks = append(blocks, b)
		}
	}
	return blocks, notFound, nil
}

// expectEOF checks that nothing follows the last frame. Bytes are an
// offense (*ProtocolError); any other read error (a reset, a deadline, a
// late close) is the network's or a restarting peer's, and is returned as a
// plain error that costs the peer nothing.
func expectEOF(r *bufio.Reader) error {
	_, err := r.ReadByte()
	switch {
	case err == nil:
		return violation("bytes after the last frame")
	case errors.Is(err, io.EOF):
		return nil
	default:
		return fmt.Errorf("syncproto: waiting for the end of the stream: %w", err)
	}
}
