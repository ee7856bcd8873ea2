package gossip

import (
	"context"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
	"github.com/dagnode/dagnode/dag/dagtest"
)

// BenchmarkValidate measures the validator's inline work on a valid regtest
// block: decode, CheckSanity and the HaveBlock lookup (the block is known,
// so Submit is not called).
func BenchmarkValidate(b *testing.B) {
	p := dag.RegTestParams
	d := newDAG(b, p)
	blk := dagtest.MakeBlock(p, []dag.Hash{p.GenesisHash}, p.PowLimitBits, time.Now().UnixMilli(), make([]byte, 512))
	ctx := context.Background()
	if err := d.ProcessBlock(ctx, blk); err != nil {
		b.Fatal(err)
	}
	s := newValidatorService(b, d, func(context.Context, peer.ID, dag.Checked) error {
		b.Fatal("Submit called")
		return nil
	}, nil)
	const sender = peer.ID("sender")
	msg := message(blk.Encode(), sender)
	b.ReportAllocs()
	for b.Loop() {
		if s.validate(ctx, sender, msg) != pubsub.ValidationIgnore {
			b.Fatal("not ignored as known")
		}
	}
}
