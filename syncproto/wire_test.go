package syncproto

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"testing"

	"github.com/dagnode/dagnode/dag"
)

// TestSharedConstants pins what both peers must agree on.
func TestSharedConstants(t *testing.T) {
	for name, c := range map[string][2]int{
		"MsgStatus": {int(MsgStatus), 1}, "MsgGetBlocks": {int(MsgGetBlocks), 2}, "MsgInv": {int(MsgInv), 3},
		"MsgGetData": {int(MsgGetData), 4}, "MsgBlock": {int(MsgBlock), 5}, "MsgNotFound": {int(MsgNotFound), 6},
		"InvLast": {int(InvLast), 1}, "InvMore": {int(InvMore), 2},
		"MaxStatusTips": {MaxStatusTips, 64}, "MaxInvEntries": {MaxInvEntries, 2000},
		"MaxInvPerReply": {MaxInvPerReply, 100_000}, "MaxLocatorHashes": {MaxLocatorHashes, 128},
		"MaxGetDataHashes": {MaxGetDataHashes, 500},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %d, pinned at %d", name, c[0], c[1])
		}
	}
	if got := ProtocolID("simnet"); got != "/dagnode/simnet/sync/3" {
		t.Errorf("protocol id %s", got)
	}
}

func TestStatusVector(t *testing.T) {
	var g, tip dag.Hash
	for i := range g {
		g[i] = 0xaa
		tip[i] = byte(i)
	}
	st := &Status{Genesis: g, MaxHeight: 258, Count: 1000, BlueWork: big.NewInt(0x0102), Tips: []dag.Hash{tip}, TipHeights: []uint64{257}}
	var buf bytes.Buffer
	if err := writeFrame(&buf, MsgStatus, st.encode()); err != nil {
		t.Fatal(err)
	}
	const want = "5e" + "01" + // length 94 = 1 type byte + 93 payload bytes
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" +
		"0201000000000000" + "e803000000000000" + "02" + "0102" + "0100" +
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" + "0101000000000000"
	if got := hex.EncodeToString(buf.Bytes()); got != want {
		t.Fatalf("status frame\n got %s\nwant %s", got, want)
	}
	typ, payload, err := readFrame(bufio.NewReader(&buf), MsgStatus)
	if err != nil || typ != MsgStatus {
		t.Fatal(err)
	}
	back, err := decodeStatus(payload)
	if err != nil {
		t.Fatal(err)
	}
	if back.Genesis != g || back.MaxHeight != 258 || back.Count != 1000 || back.BlueWork.Cmp(st.BlueWork) != 0 || len(back.Tips) != 1 || back.Tips[0] != tip || back.TipHeights[0] != 257 {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestReadFrameRejects(t *testing.T) {
	frame := func(t byte, n int) []byte {
		var b bytes.Buffer
		writeFrame(&b, t, make([]byte, n))
		return b.Bytes()
	}
	limit, _ := maxPayload(MsgBlock)
	cases := map[string][]byte{
		"unknown type":    frame(200, 1),
		"unexpected type": frame(MsgInv, 2),
		"oversize":        frame(MsgBlock, limit+1),
		"empty frame":     {0},
	}
	for name, raw := range cases {
		_, _, err := readFrame(bufio.NewReader(bytes.NewReader(raw)), MsgBlock, MsgStatus)
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("%s: got %v, want a ProtocolError", name, err)
		}
	}
	// A huge announced length is refused before anything is allocated.
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0x0f, MsgBlock}
	if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(huge)), MsgBlock); err == nil {
		t.Error("accepted a 4 GiB frame header")
	}
	// Truncated payload.
	tr := frame(MsgBlock, 10)[:5]
	if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(tr)), MsgBlock); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated: %v", err)
	}
}

func TestDecodeListsRejectOverLimit(t *testing.T) {
	over := make([]dag.Hash, MaxGetDataHashes+1)
	if _, err := decodeHashes(encodeHashes(over), MaxGetDataHashes); err == nil {
		t.Error("getdata over the limit accepted")
	}
	if _, err := decodeInv((&Inv{Flags: InvMore}).encode()); err == nil {
		t.Error("inv with InvMore but not InvLast accepted")
	}
	if _, err := decodeInv((&Inv{Flags: 4}).encode()); err == nil {
		t.Error("inv with an unknown flag accepted")
	}
	if _, err := decodeInv(append((&Inv{Flags: InvLast}).encode(), 0)); err == nil {
		t.Error("inv with trailing byte accepted")
	}
	if _, err := decodeInv((&Inv{Hashes: make([]dag.Hash, MaxInvEntries+1)}).encode()); err == nil {
		t.Error("inv over the limit accepted")
	}
	for _, retired := range []byte{7, 8} {
		var b bytes.Buffer
		writeFrame(&b, retired, make([]byte, 8))
		var pe *ProtocolError
		if _, _, err := readFrame(bufio.NewReader(&b), MsgStatus, MsgGetBlocks, MsgGetData); !errors.As(err, &pe) {
			t.Errorf("retired sync/1 type %d: %v, want a ProtocolError", retired, err)
		}
	}
}

func TestInvVector(t *testing.T) {
	var h dag.Hash
	for i := range h {
		h[i] = byte(i)
	}
	var buf bytes.Buffer
	if err := writeFrame(&buf, MsgInv, (&Inv{Flags: InvLast | InvMore, Hashes: []dag.Hash{h}}).encode()); err != nil {
		t.Fatal(err)
	}
	const want = "24" + "03" + "03" + "0100" + // length 36, type inv, flags last|more, one hash
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	if got := hex.EncodeToString(buf.Bytes()); got != want {
		t.Fatalf("inv frame\n got %s\nwant %s", got, want)
	}
}

func FuzzReadFrame(f *testing.F) {
	var b bytes.Buffer
	st := &Status{BlueWork: big.NewInt(5), Tips: make([]dag.Hash, 2), TipHeights: []uint64{1, 2}}
	writeFrame(&b, MsgStatus, st.encode())
	f.Add(b.Bytes())
	f.Add([]byte{0x04, MsgInv, InvLast, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		typ, payload, err := readFrame(bufio.NewReader(bytes.NewReader(raw)), MsgStatus, MsgInv, MsgGetData, MsgGetBlocks, MsgBlock)
		if err != nil {
			return
		}
		switch typ {
		case MsgStatus:
			if s, err := decodeStatus(payload); err == nil && !bytes.Equal(s.encode(), payload) {
				t.Fatal("status does not re-encode to the same bytes")
			}
		case MsgInv:
			if inv, err := decodeInv(payload); err == nil && !bytes.Equal(inv.encode(), payload) {
				t.Fatal("inv does not re-encode to the same bytes")
			}
		case MsgGetData, MsgGetBlocks:
			if hs, err := decodeHashes(payload, MaxLocatorHashes); err == nil && !bytes.Equal(encodeHashes(hs), payload) {
				t.Fatal("hash list does not re-encode to the same bytes")
			}
		case MsgBlock:
			_, _ = dag.DecodeBlock(payload)
		}
	})
}
