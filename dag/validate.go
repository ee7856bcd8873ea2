package dag

import (
	"time"
)

// CheckSanity checks everything about a block that needs no other block:
// version, network, parent list, body commitment, payload size, miner address
// prefix, target range, proof of work and timestamp against now. It is cheap
// (one header hash) and safe to call concurrently; gossip validators run it
// inline. It returns the block hash so callers hash once.
func CheckSanity(b *Block, p *Params, now time.Time) (Hash, error) {
	h := &b.Header
	if h.Version != BlockVersion {
		return ZeroHash, ruleError(ErrBadVersion, "version %d, want %d", h.Version, BlockVersion)
	}
	if h.Net != p.Net {
		return ZeroHash, ruleError(ErrWrongNetwork, "network magic %#08x, want %#08x (%s)", h.Net, p.Net, p.Name)
	}
	if len(h.Parents) == 0 {
		return ZeroHash, ruleError(ErrNoParents, "only the genesis block has no parents")
	}
	if len(h.Parents) > MaxParents {
		return ZeroHash, ruleError(ErrTooManyParents, "%d parents, at most %d", len(h.Parents), MaxParents)
	}
	for i := 1; i < len(h.Parents); i++ {
		switch {
		case h.Parents[i] == h.Parents[i-1]:
			return ZeroHash, ruleError(ErrDuplicateParent, "parent %s named twice", h.Parents[i])
		case h.Parents[i].Less(h.Parents[i-1]):
			return ZeroHash, ruleError(ErrParentsNotSorted, "parents must be sorted ascending")
		}
	}
	if len(b.Body.Payload) > MaxPayloadSize {
		return ZeroHash, ruleError(ErrPayloadTooBig, "payload of %d bytes, at most %d", len(b.Body.Payload), MaxPayloadSize)
	}
	if b.Body.MinerAddr[0] != p.AddrPrefix {
		return ZeroHash, ruleError(ErrBadMinerAddress, "miner address prefix %#02x, want %#02x (%s)", b.Body.MinerAddr[0], p.AddrPrefix, p.Name)
	}
	if bh := b.Body.Hash(); bh != h.BodyHash {
		return ZeroHash, ruleError(ErrBadBodyHash, "header commits to body %s, body hashes to %s", h.BodyHash, bh)
	}
	target := sharedTarget(h.Bits)
	if target.Sign() <= 0 || target.Cmp(p.PowLimit) > 0 {
		return ZeroHash, ruleError(ErrBadTarget, "target of bits %#08x is outside (0, pow limit]", h.Bits)
	}
	hash := h.Hash()
	th := targetHash(target)
	if !MeetsTarget(&hash, &th) {
		return ZeroHash, ruleError(ErrBadPoW, "hash %s above target %s", hash, th)
	}
	if limit := now.Add(MaxFutureBlockTime).UnixMilli(); h.Timestamp > limit {
		return ZeroHash, ruleError(ErrTimeTooNew, "timestamp %d ms is more than %s ahead of local time", h.Timestamp, MaxFutureBlockTime)
	}
	return hash, nil
}

// checkContext checks the rules that need the parents (checkParents), the
// difficulty the DAG requires and a timestamp not before the selected
// parent's. It returns the selected parent and the rest of the merge set.
// Called with the lock held.
func (d *DAG) checkContext(h *Header, parents []*blockNode) (sp *blockNode, rest []*blockNode, err error) {
	if sp, rest, err = d.checkParents(parents); err != nil {
		return nil, nil, err
	}
	if want := d.requiredBits(sp, rest); h.Bits != want {
		return nil, nil, ruleError(ErrWrongTarget, "bits %#08x, the DAG requires %#08x", h.Bits, want)
	}
	if h.Timestamp < sp.timestamp {
		return nil, nil, ruleError(ErrTimeTooOld, "timestamp %d ms before selected parent's %d ms", h.Timestamp, sp.timestamp)
	}
	return sp, rest, nil
}

// checkParents checks that no parent is in the past of another (a parent
// that is would add nothing) and that the merge set stays within the
// network's limit. It returns the selected parent and the rest of the merge
// set. Called with the lock held.
func (d *DAG) checkParents(parents []*blockNode) (sp *blockNode, rest []*blockNode, err error) {
	for _, a := range parents {
		for _, b := range parents {
			// Only a lower block can be in the past of another.
			if a.height < b.height && isAncestorOrSelf(a, b) {
				return nil, nil, ruleError(ErrParentInPast, "parent %s is in the past of parent %s", a.hash, b.hash)
			}
		}
	}
	sp = selectParent(parents)
	rest, err = mergeSet(sp, parents, d.params.MergeSetSizeLimit)
	if err != nil {
		return nil, nil, ruleError(ErrMergeSetTooBig, "the merge set exceeds %d blocks", d.params.MergeSetSizeLimit)
	}
	return sp, rest, nil
}
