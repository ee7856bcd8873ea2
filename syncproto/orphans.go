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

	// MaxOrphansPerPeer is one peer's share of the pool: past it, the peer's
	// own oldest orphan makes room, so a flooder cannot push out the orphans
	// of honest peers.
	MaxOrphansPerPeer = 100

	// OrphanExpiry drops orphans whose parents never come.
	OrphanExpiry = 2 * time.Minute

	// orphanGrace: a peer none of whose orphans joined the DAG for this long
	// (counted from its first orphan) pays for each of its orphans that is
	// evicted or expires (PenaltyOrphan). An honest peer serves the parents
	// of what it forwards within a round trip, so its orphans keep joining.
	orphanGrace = 5 * time.Second
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

// orphanPool holds blocks whose parents are unknown, bounded by count, bytes
// and per sender. Only used from the manager loop.
type orphanPool struct {
	byHash   map[dag.Hash]*orphan
	byParent map[dag.Hash][]dag.Hash // missing parent -> orphans waiting on it
	order    *list.List              // oldest first
	perPeer  map[peer.ID]int
	bytes    int
	evicted  uint64
	expired  uint64
	// lastJoin is, per sender, when one of its orphans last joined the DAG
	// (or when its first orphan came).
	lastJoin map[peer.ID]time.Time
	// charged counts, per sender, orphans that left the pool unconnected
	// while the sender's orphans were not joining; the manager takes and
	// penalises them.
	charged map[peer.ID]int
}

func newOrphanPool() *orphanPool {
	return &orphanPool{
		byHash:   make(map[dag.Hash]*orphan),
		byParent: make(map[dag.Hash][]dag.Hash),
		order:    list.New(),
		perPeer:  make(map[peer.ID]int),
		lastJoin: make(map[peer.ID]time.Time),
		charged:  make(map[peer.ID]int),
	}
}

func (op *orphanPool) has(h dag.Hash) bool { return op.byHash[h] != nil }

func (op *orphanPool) len() int { return len(op.byHash) }

// add stores an orphan, evicting the sender's oldest past its share, then
// the oldest of all to stay within the limits.
func (op *orphanPool) add(b *dag.Block, hash dag.Hash, from peer.ID, missing []dag.Hash, now time.Time) {
	if op.has(hash) {
		return
	}
	o := &orphan{block: b, hash: hash, from: from, size: b.EncodedSize(), added: now, missing: missing}
	if _, ok := op.lastJoin[from]; !ok && from != "" {
		op.lastJoin[from] = now
	}
	if from != "" && op.perPeer[from] >= MaxOrphansPerPeer {
		for e := op.order.Front(); e != nil; e = e.Next() {
			if old := e.Value.(*orphan); old.from == from {
				op.evict(old, now)
				break
			}
		}
	}
	for op.len() > 0 && (op.len() >= MaxOrphans || op.bytes+o.size > MaxOrphanBytes) {
		op.evict(op.order.Front().Value.(*orphan), now)
	}
	o.elem = op.order.PushBack(o)
	op.byHash[hash] = o
	op.bytes += o.size
	if from != "" {
		op.perPeer[from]++
	}
	for _, m := range missing {
		op.byParent[m] = append(op.byParent[m], hash)
	}
}

// evict drops an orphan that never connected, charging its sender if its
// orphans have stopped joining.
func (op *orphanPool) evict(o *orphan, now time.Time) {
	op.remove(o)
	op.evicted++
	op.charge(o, now)
}

func (op *orphanPool) charge(o *orphan, now time.Time) {
	if o.from != "" && now.Sub(op.lastJoin[o.from]) >= orphanGrace {
		op.charged[o.from]++
	}
}

func (op *orphanPool) remove(o *orphan) {
	delete(op.byHash, o.hash)
	op.order.Remove(o.elem)
	op.bytes -= o.size
	if o.from != "" {
		if op.perPeer[o.from]--; op.perPeer[o.from] <= 0 {
			delete(op.perPeer, o.from)
		}
	}
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

// takeChildren removes and returns the orphans that were waiting on parent:
// they join the DAG.
func (op *orphanPool) takeChildren(parent dag.Hash, now time.Time) []*orphan {
	hashes := op.byParent[parent]
	out := make([]*orphan, 0, len(hashes))
	for _, h := range hashes {
		if o := op.byHash[h]; o != nil {
			out = append(out, o)
		}
	}
	for _, o := range out {
		op.remove(o)
		if o.from != "" {
			op.lastJoin[o.from] = now
		}
	}
	return out
}

// expire drops orphans older than OrphanExpiry, charging their senders,
// and forgets senders with no orphan left whose last join is as old.
func (op *orphanPool) expire(now time.Time) {
	for op.order.Len() > 0 {
		o := op.order.Front().Value.(*orphan)
		if now.Sub(o.added) < OrphanExpiry {
			break
		}
		op.remove(o)
		op.expired++
		op.charge(o, now)
	}
	for p, t := range op.lastJoin {
		if op.perPeer[p] == 0 && now.Sub(t) >= OrphanExpiry {
			delete(op.lastJoin, p)
		}
	}
}

// takeCharged returns and forgets the charges since the last call.
func (op *orphanPool) takeCharged() map[peer.ID]int {
	if len(op.charged) == 0 {
		return nil
	}
	c := op.charged
	op.charged = make(map[peer.ID]int)
	return c
}

// missingFrom returns the missing parents of from's orphans (at most
// MaxGetDataHashes), oldest orphans first.
func (op *orphanPool) missingFrom(from peer.ID) []dag.Hash {
	var out []dag.Hash
	seen := map[dag.Hash]bool{}
	for e := op.order.Front(); e != nil && len(out) < MaxGetDataHashes; e = e.Next() {
		o := e.Value.(*orphan)
		if o.from != from {
			continue
		}
		for _, h := range o.missing {
			if !seen[h] && !op.has(h) {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	return out[:min(len(out), MaxGetDataHashes)]
}
