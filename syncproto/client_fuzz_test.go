package syncproto

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/dagnode/dagnode/dag"
)

// Client operations FuzzSyncClient runs against the fuzzed reply.
const (
	fuzzOpStatus    = iota // RequestStatus
	fuzzOpInventory        // RequestInventory
	fuzzOpBlocks           // RequestBlocks
	fuzzOpFrames           // the frame loop and every payload decoder
	fuzzOps
)

// fuzzServerPeer is the peer the fuzzed replies come from.
const fuzzServerPeer = peer.ID("fuzz-server")

// FuzzSyncClient feeds arbitrary bytes to the client side of the sync
// protocol as a server's reply: the full request paths (RequestStatus,
// RequestInventory, RequestBlocks) over an in-memory stream, and the frame
// loop with every payload decoder. The client must return a result or an
// error, never panic; it must end every stream (Close or Reset); what it
// accepts must satisfy the protocol's limits and round-trip through the
// encoders; and reading frames must not allocate in proportion to a length
// prefix that the input does not back.
func FuzzSyncClient(f *testing.F) {
	fx := newClientFuzzFixture(f)
	for _, s := range fx.seeds() {
		f.Add(s.op, s.reply)
	}
	f.Fuzz(func(t *testing.T, op uint8, reply []byte) {
		switch op % fuzzOps {
		case fuzzOpStatus:
			fx.status(t, reply)
		case fuzzOpInventory:
			fx.inventory(t, reply)
		case fuzzOpBlocks:
			fx.blocks(t, reply)
		default:
			fuzzFrames(t, reply)
		}
	})
}

// clientFuzzFixture is a manager that was never started, over a real DAG,
// whose host opens in-memory streams that reply with the fuzzed bytes.
type clientFuzzFixture struct {
	m       *Manager
	h       *replayHost
	params  *dag.Params
	want    []*dag.Block // blocks the DAG lacks: asked for by RequestBlocks
	peerSt  *Status      // a plausible status of a peer holding want too
	invSeen []dag.Hash   // hashes a server would list for our locator
}

func newClientFuzzFixture(f testing.TB) *clientFuzzFixture {
	blocks := genDAG(f, 7, 12)
	keep := len(blocks) - 4
	open := func(bs []*dag.Block) *dag.DAG {
		d, err := dag.Open(context.Background(), dssync.MutexWrap(ds.NewMapDatastore()), dag.RegTestParams, dag.WithLogger(quiet))
		if err != nil {
			f.Fatal(err)
		}
		for i, err := range d.ProcessBlocks(context.Background(), bs) {
			if err != nil {
				f.Fatalf("block %d: %v", i, err)
			}
		}
		return d
	}
	ours, theirs := open(blocks[:keep]), open(blocks)
	h := &replayHost{}
	m, err := New(Config{Host: h, DAG: ours, Peers: newRecPeers(), Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { m.Close() })
	ts := theirs.Status()
	heights := make([]uint64, len(ts.Tips))
	for i, tip := range ts.Tips {
		info, _ := theirs.BlockInfo(tip)
		heights[i] = uint64(info.Height)
	}
	list, _ := theirs.NotInPast(ours.Locator(), MaxInvPerReply)
	inv := make([]dag.Hash, len(list))
	for i, e := range list {
		inv[i] = e.Hash
	}
	fx := &clientFuzzFixture{
		m: m, h: h, params: dag.RegTestParams, want: blocks[keep:], invSeen: inv,
		peerSt: &Status{Genesis: ts.Genesis, MaxHeight: uint64(ts.MaxHeight), Count: uint64(ts.Count),
			BlueWork: ts.BlueWork, Tips: ts.Tips, TipHeights: heights},
	}
	if err := plausible(fx.peerSt, fx.params); err != nil {
		f.Fatalf("the seed status is implausible: %v", err)
	}
	return fx
}

type clientFuzzSeed struct {
	op    uint8
	reply []byte
}

func frames(fs ...[]byte) []byte { return bytes.Join(fs, nil) }

func frame(t byte, payload []byte) []byte {
	var b bytes.Buffer
	writeFrame(&b, t, payload)
	return b.Bytes()
}

// seeds are valid replies for each operation, and a few near misses.
func (fx *clientFuzzFixture) seeds() []clientFuzzSeed {
	st := frame(MsgStatus, fx.peerSt.encode())
	half := len(fx.invSeen) / 2
	inv := frames(frame(MsgInv, (&Inv{Hashes: fx.invSeen[:half]}).encode()),
		frame(MsgInv, (&Inv{Flags: InvLast, Hashes: fx.invSeen[half:]}).encode()))
	var blocks [][]byte
	for i := len(fx.want) - 1; i >= 1; i-- { // out of order, the first one missing
		blocks = append(blocks, frame(MsgBlock, fx.want[i].Encode()))
	}
	blocks = append(blocks, frame(MsgNotFound, encodeHashes([]dag.Hash{fx.want[0].Hash()})))
	getdata := frames(blocks...)
	oversize := []byte{0xff, 0xff, 0xff, 0xff, 0x0f, MsgBlock}
	return []clientFuzzSeed{
		{fuzzOpStatus, st},
		{fuzzOpStatus, append(append([]byte(nil), st...), 0)},
		{fuzzOpInventory, inv},
		{fuzzOpInventory, frame(MsgInv, (&Inv{Flags: InvLast | InvMore}).encode())},
		{fuzzOpBlocks, getdata},
		{fuzzOpBlocks, frame(MsgNotFound, encodeHashes(nil))},
		{fuzzOpBlocks, oversize},
		{fuzzOpFrames, frames(st, inv, getdata)},
		{fuzzOpFrames, oversize},
		{fuzzOpFrames, nil},
	}
}

func (fx *clientFuzzFixture) status(t *testing.T, reply []byte) {
	s := fx.h.next(reply)
	st, err := fx.m.RequestStatus(context.Background(), fuzzServerPeer)
	s.check(t, MsgStatus)
	if err != nil {
		checkReplyError(t, err)
		return
	}
	if st.Genesis != fx.params.GenesisHash {
		t.Fatalf("accepted the status of genesis %s", st.Genesis)
	}
	if err := plausible(st, fx.params); err != nil {
		t.Fatalf("accepted an implausible status: %v", err)
	}
	if len(st.Tips) != len(st.TipHeights) || len(st.Tips) > MaxStatusTips {
		t.Fatalf("status with %d tips and %d heights", len(st.Tips), len(st.TipHeights))
	}
	back, err := decodeStatus(st.encode())
	if err != nil || back.BlueWork.Cmp(st.BlueWork) != 0 || back.Count != st.Count {
		t.Fatalf("accepted status does not round-trip: %v", err)
	}
}

func (fx *clientFuzzFixture) inventory(t *testing.T, reply []byte) {
	s := fx.h.next(reply)
	total, lastCalls, calls := 0, 0, 0
	lastAt := -1
	_, err := fx.m.RequestInventory(context.Background(), fuzzServerPeer, fx.m.cfg.DAG.Locator(), func(hs []dag.Hash, last bool) error {
		calls++
		total += len(hs)
		if len(hs) > MaxInvEntries {
			t.Fatalf("an inv frame of %d entries reached the callback", len(hs))
		}
		if last {
			lastCalls++
			lastAt = calls
		}
		return nil
	})
	s.check(t, MsgGetBlocks)
	if err != nil {
		checkReplyError(t, err)
	}
	if total > MaxInvPerReply {
		t.Fatalf("%d inv entries reached the callback, limit %d", total, MaxInvPerReply)
	}
	if err == nil && (lastCalls != 1 || lastAt != calls) {
		t.Fatalf("a complete reply ended with %d last frames (at call %d of %d)", lastCalls, lastAt, calls)
	}
}

func (fx *clientFuzzFixture) blocks(t *testing.T, reply []byte) {
	s := fx.h.next(reply)
	ask := make([]dag.Hash, len(fx.want))
	asked := make(map[dag.Hash]int, len(fx.want))
	for i, b := range fx.want {
		ask[i] = b.Hash()
		asked[ask[i]] = i
	}
	got, notFound, err := fx.m.RequestBlocks(context.Background(), fuzzServerPeer, ask)
	s.check(t, MsgGetData)
	if err != nil {
		checkReplyError(t, err)
		return
	}
	if len(notFound) > MaxGetDataHashes {
		t.Fatalf("notfound of %d hashes accepted", len(notFound))
	}
	prev := -1
	for _, b := range got {
		i, ok := asked[b.Hash()]
		if !ok || i <= prev {
			t.Fatalf("block %s returned: asked %v, out of order or twice", b.Hash(), ok)
		}
		prev = i
		if !bytes.Equal(b.Block().Encode(), fx.want[i].Encode()) {
			t.Fatalf("block %s returned with other contents", b.Hash())
		}
	}
}

// checkReplyError fails unless err, from a client reading a reply that came
// whole from memory, is the server's fault (a *ProtocolError, or a
// *dag.RuleError for a malformed block, which the tracker scores alike) or
// a reply cut short or missing (io.ErrUnexpectedEOF, io.EOF: a restarting
// server may cause those too, and they are not scored).
func checkReplyError(t *testing.T, err error) {
	t.Helper()
	var pe *ProtocolError
	var re *dag.RuleError
	if !errors.As(err, &pe) && !errors.As(err, &re) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		t.Fatalf("the client failed with %T %v: neither the server's offense nor a cut reply", err, err)
	}
}

// maxAnyPayload is the largest payload of any message type.
func maxAnyPayload() int {
	n := 0
	for t := range 256 {
		if l, ok := maxPayload(byte(t)); ok {
			n = max(n, l)
		}
	}
	return n
}

var allMsgTypes = []byte{MsgStatus, MsgGetBlocks, MsgInv, MsgGetData, MsgBlock, MsgNotFound}

// fuzzFrames reads frames of any type until an error, decodes each payload
// by its type, and checks that the allocation stays bounded by the input,
// not by a length prefix.
func fuzzFrames(t *testing.T, reply []byte) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := bufio.NewReader(bytes.NewReader(reply))
	frames := 0
	for {
		typ, payload, err := readFrame(r, allMsgTypes...)
		if err != nil {
			var pe *ProtocolError
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &pe) {
				t.Fatalf("readFrame: an error that is neither EOF nor a violation: %v", err)
			}
			break
		}
		frames++
		limit, _ := maxPayload(typ)
		if len(payload) > limit {
			t.Fatalf("type %d payload of %d bytes, limit %d", typ, len(payload), limit)
		}
		decodePayload(t, typ, payload)
	}
	runtime.ReadMemStats(&after)
	// Each frame's payload is read into a slice at most the input's size,
	// decoded into copies of similar size; a truncated last frame may
	// allocate up to its type's limit. The slack covers the bufio buffer and
	// the fuzzing worker's own allocations.
	bound := uint64(8*len(reply) + 2*maxAnyPayload() + 1<<20)
	if got := after.TotalAlloc - before.TotalAlloc; got > bound {
		t.Fatalf("reading %d frames from %d bytes allocated %d bytes (bound %d)", frames, len(reply), got, bound)
	}
}

// decodePayload decodes one payload as its type says, and checks that what
// decodes re-encodes to the same bytes.
func decodePayload(t *testing.T, typ byte, payload []byte) {
	var again []byte
	switch typ {
	case MsgStatus:
		st, err := decodeStatus(payload)
		if err != nil {
			return
		}
		if len(st.Tips) > MaxStatusTips {
			t.Fatalf("status with %d tips", len(st.Tips))
		}
		again = st.encode()
	case MsgInv:
		inv, err := decodeInv(payload)
		if err != nil {
			return
		}
		if inv.Flags == InvMore {
			t.Fatal("inv with InvMore but not InvLast accepted")
		}
		again = inv.encode()
	case MsgGetBlocks, MsgGetData, MsgNotFound:
		limit := MaxGetDataHashes
		if typ == MsgGetBlocks {
			limit = MaxLocatorHashes
		}
		hs, err := decodeHashes(payload, limit)
		if err != nil {
			return
		}
		if len(hs) > limit {
			t.Fatalf("hash list of %d, limit %d", len(hs), limit)
		}
		again = encodeHashes(hs)
	case MsgBlock:
		b, err := dag.DecodeBlock(payload)
		if err != nil {
			return
		}
		again = b.Encode()
	}
	if !bytes.Equal(again, payload) {
		t.Fatalf("type %d: encode(decode(x)) != x\n x %x\n y %x", typ, payload, again)
	}
}

// replayHost is a host.Host whose NewStream returns the stream set by next:
// an in-memory stream that replies with fixed bytes. The other methods are
// not called by the client paths (the manager is never started).
type replayHost struct {
	host.Host
	mu  sync.Mutex
	cur *replayStream
}

func (h *replayHost) next(reply []byte) *replayStream {
	s := &replayStream{r: bytes.NewReader(reply)}
	h.mu.Lock()
	h.cur = s
	h.mu.Unlock()
	return s
}

func (h *replayHost) NewStream(context.Context, peer.ID, ...protocol.ID) (network.Stream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur, nil
}

// RemoveStreamHandler is what Close calls; the fixture never set one.
func (h *replayHost) RemoveStreamHandler(protocol.ID) {}

// replayStream records what the client writes and how it ends the stream.
type replayStream struct {
	network.Stream
	mu                         sync.Mutex
	r                          *bytes.Reader
	written                    bytes.Buffer
	closed, reset, closedWrite bool
}

func (s *replayStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reset {
		return 0, network.ErrReset
	}
	return s.r.Read(p)
}

func (s *replayStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closedWrite || s.reset {
		return 0, errors.New("write on a closed stream")
	}
	return s.written.Write(p)
}

func (s *replayStream) CloseWrite() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closedWrite = true
	return nil
}

func (s *replayStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *replayStream) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset = true
	return nil
}

func (s *replayStream) SetReadDeadline(time.Time) error  { return nil }
func (s *replayStream) SetWriteDeadline(time.Time) error { return nil }
func (s *replayStream) SetDeadline(time.Time) error      { return nil }
func (s *replayStream) Conn() network.Conn               { return replayConn{} }

type replayConn struct{ network.Conn }

func (replayConn) RemotePeer() peer.ID { return fuzzServerPeer }

// check verifies that the client sent one well-formed request of type want
// and ended the stream.
func (s *replayStream) check(t *testing.T, want byte) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && !s.reset {
		t.Fatal("the client neither closed nor reset the stream")
	}
	r := bufio.NewReader(bytes.NewReader(s.written.Bytes()))
	typ, _, err := readFrame(r, want)
	if err != nil || typ != want || r.Buffered() != 0 {
		t.Fatalf("the client's request is not one frame of type %d: %v", want, err)
	}
}

// TestSyncClientFuzzSeedsSucceed checks that the valid seeds of
// FuzzSyncClient take the client's success paths, so the fuzzer starts
// from replies the client accepts.
func TestSyncClientFuzzSeedsSucceed(t *testing.T) {
	fx := newClientFuzzFixture(t)
	ctx := context.Background()
	seeds := fx.seeds()
	fx.h.next(seeds[0].reply)
	if _, err := fx.m.RequestStatus(ctx, fuzzServerPeer); err != nil {
		t.Errorf("status seed: %v", err)
	}
	fx.h.next(seeds[2].reply)
	n := 0
	if _, err := fx.m.RequestInventory(ctx, fuzzServerPeer, fx.m.cfg.DAG.Locator(), func(hs []dag.Hash, _ bool) error {
		n += len(hs)
		return nil
	}); err != nil || n != len(fx.invSeen) || n == 0 {
		t.Errorf("inventory seed: %d of %d hashes, %v", n, len(fx.invSeen), err)
	}
	fx.h.next(seeds[4].reply)
	ask := make([]dag.Hash, len(fx.want))
	for i, b := range fx.want {
		ask[i] = b.Hash()
	}
	got, notFound, err := fx.m.RequestBlocks(ctx, fuzzServerPeer, ask)
	if err != nil || len(got) != len(fx.want)-1 || len(notFound) != 1 {
		t.Errorf("getdata seed: %d blocks, %d not found, %v", len(got), len(notFound), err)
	}
}
