package syncproto

import (
	"container/list"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dagnode/dagnode/dag"
)

// Orphan pool limits.
const (
	// MaxOrphans bounds the orphan pool by count; the oldest is evicted first.
	MaxOrphans = 1000

	// MaxOrphanBytes bounds the pool by encoded size (about 1,500 full blocks).
	MaxOrphanBytes = 2 << 20

	// OrphanExpiry drops orphans whose parents never come.
	OrphanExpiry = 5 * time.Minute
)

type orphan struct {
	block   *dag.Block
	hash    dag.Hash
	from    peer.ID
	size    int
	added   time.Time
	missing []dag.Hash
	elem    *list.Element
}

// orphanPool holds blocks whose parents are unknown, bounded by count and
// bytes. Only used from the manager loop.
type orphanPool struct {
	byHash   map[dag.Hash]*orphan
	byParent map[dag.Hash][]dag.Hash // missing parent -> orphans waiting on it
	order    *list.List              // oldest first
	bytes    int
	evicted  uint64
	expired  uint64
}

func newOrphanPool() *orphanPool {
	return &orphanPool{byHash: make(map[dag.Hash]*orphan), byParent: make(map[dag.Hash][]dag.Hash), order: list.New()}
}

func (op *orphanPool) has(h dag.Hash) bool { return op.byHash[h] != nil }

func (op *orphanPool) len() int { return len(op.byHash) }

// add stores an orphan, evicting the oldest to stay within the limits.
func (op *orphanPool) add(b *dag.Block, hash dag.Hash, from peer.ID, missing []dag.Hash, now time.Time) {
	if op.has(hash) {
		return
	}
	o := &orphan{block: b, hash: hash, from: from, size: b.EncodedSize(), added: now, missing: missing}
	for op.len() > 0 && (op.len() >= MaxOrphans || op.bytes+o.size > MaxOrphanBytes) {
		op.remove(op.order.Front().Value.(*orphan))
		op.evicted++
	}
	o.elem = op.order.PushBack(o)
	op.byHash[hash] = o
	op.bytes += o.size
	for _, m := range missing {
		op.byParent[m] = append(op.byParent[m], hash)
	}
}

func (op *orphanPool) remove(o *orphan) {
	delete(op.byHash, o.hash)
	op.order.Remove(o.elem)
	op.bytes -= o.size
	for _, m := range o.missing {
		waiting := op.byParent[m]
		for i, h := range waiting {
			if h == o.hash {
				waiting = append(waiting[:i], waiting[i+1:]...)
				break
			}
		}
		if len(waiting) == 0 {
			delete(op.byParent, m)
		} else {
			op.byParent[m] = waiting
		}
	}
}

// takeChildren removes and returns the orphans that were waiting on parent.
func (op *orphanPool) takeChildren(parent dag.Hash) []*orphan {
	hashes := op.byParent[parent]
	out := make([]*orphan, 0, len(hashes))
	for _, h := range hashes {
		if o := op.byHash[h]; o != nil {
			out = append(out, o)
		}
	}
	for _, o := range out {
		op.remove(o)
	}
	return out
}

// expire drops orphans older than OrphanExpiry.
func (op *orphanPool) expire(now time.Time) {
	for op.order.Len() > 0 {
		o := op.order.Front().Value.(*orphan)
		if now.Sub(o.added) < OrphanExpiry {
			return
		}
		op.remove(o)
		op.expired++
	}
}

// missingParents returns the distinct parents the pool waits for.
func (op *orphanPool) missingParents() []dag.Hash {
	out := make([]dag.Hash, 0, len(op.byParent))
	for h := range op.byParent {
		if !op.has(h) {
			out = append(out, h)
		}
	}
	return out
}
