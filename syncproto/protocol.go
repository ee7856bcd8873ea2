package syncproto

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multistream"

	"github.com/dagnode/dagnode/dag"
)

// wireStatus converts the DAG's status to the wire form, keeping at most
// MaxStatusTips tips.
func wireStatus(st dag.Status) *Status {
	tips := st.Tips
	if len(tips) > MaxStatusTips {
		tips = tips[:MaxStatusTips]
	}
	return &Status{Genesis: st.Genesis, MaxHeight: uint64(st.MaxHeight), Count: uint64(st.Count), TotalWork: st.TotalWork, Tips: tips}
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
		if errors.As(err, &pe) || errors.Is(err, ErrWrongNetwork) {
			m.cfg.Peers.Penalize(p, err)
		}
		m.log.Debug("sync request failed", "peer", p, "err", err)
		return
	}
	s.Close()
}

func (m *Manager) serve(s network.Stream) error {
	p := s.Conn().RemotePeer()
	if err := s.SetReadDeadline(time.Now().Add(requestReadTimeout)); err != nil {
		return err
	}
	r := bufio.NewReader(s)
	t, payload, err := readFrame(r, MsgStatus)
	if err != nil {
		return err
	}
	// One request per stream: nothing may follow it.
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		return violation("bytes after the request")
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
		if err := writeFrame(w, MsgStatus, wireStatus(m.cfg.DAG.Status()).encode()); err != nil {
			return err
		}
	}
	return w.Flush()
}

// checkStatus refuses a peer of another network and records a good status.
func (m *Manager) checkStatus(p peer.ID, st *Status) error {
	if st.Genesis != m.cfg.DAG.Params().GenesisHash {
		return fmt.Errorf("%w: genesis %s", ErrWrongNetwork, st.Genesis)
	}
	m.cfg.Peers.SetStatus(p, st.dagStatus())
	return nil
}

// request opens a stream, writes one request frame and closes the write side.
func (m *Manager) request(ctx context.Context, p peer.ID, t byte, payload []byte) (network.Stream, *bufio.Reader, error) {
	s, err := m.cfg.Host.NewStream(ctx, p, m.proto)
	if err != nil {
		if errors.Is(err, multistream.ErrNotSupported[protocol.ID]{}) {
			return nil, nil, fmt.Errorf("%w: %v", ErrWrongNetwork, err)
		}
		return nil, nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		s.SetDeadline(deadline)
	}
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

// RequestStatus sends our status to p and returns p's, which is also given
// to the peer tracker. A peer of another network gives ErrWrongNetwork.
func (m *Manager) RequestStatus(ctx context.Context, p peer.ID) (*Status, error) {
	s, r, err := m.request(ctx, p, MsgStatus, wireStatus(m.cfg.DAG.Status()).encode())
	if err != nil {
		return nil, err
	}
	_, payload, err := readFrame(r, MsgStatus)
	if err == nil {
		err = expectEOF(r)
	}
	if err != nil {
		s.Reset()
		return nil, err
	}
	s.Close()
	st, err := decodeStatus(payload)
	if err != nil {
		return nil, err
	}
	if err := m.checkStatus(p, st); err != nil {
		return nil, err
	}
	return st, nil
}

// expectEOF checks that a reply has nothing after its last frame.
func expectEOF(r *bufio.Reader) error {
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		return violation("bytes after the reply")
	}
	return nil
}
