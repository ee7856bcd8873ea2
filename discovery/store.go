package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// StorePrefix is the datastore key prefix of the persisted peers: one entry
// per peer at StorePrefix/<peer ID>.
const StorePrefix = "/discovery/peers"

// maxStoredValueSize bounds one stored entry; larger values are corrupt.
const maxStoredValueSize = 16 << 10

// storedPeer is a known peer's addresses and when it was last connected.
type storedPeer struct {
	addrs []ma.Multiaddr
	seen  time.Time
}

// storedPeerJSON is the stored value: {"seen":<unix ms>,"addrs":["/ip4/..."]}.
type storedPeerJSON struct {
	Seen  int64    `json:"seen"`
	Addrs []string `json:"addrs"`
}

// peerKey returns the datastore key of p.
func peerKey(p peer.ID) datastore.Key {
	return datastore.NewKey(StorePrefix + "/" + p.String())
}

// peerFromKey returns the peer ID a datastore key under StorePrefix names.
func peerFromKey(k string) (peer.ID, error) {
	name, ok := strings.CutPrefix(k, StorePrefix+"/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("key %q is not under %s", k, StorePrefix)
	}
	return peer.Decode(name)
}

// encodeStoredPeer returns the stored value of sp.
func encodeStoredPeer(sp storedPeer) ([]byte, error) {
	v := storedPeerJSON{Seen: sp.seen.UnixMilli(), Addrs: make([]string, 0, len(sp.addrs))}
	for _, a := range sp.addrs {
		v.Addrs = append(v.Addrs, a.String())
	}
	return json.Marshal(v)
}

// decodeStoredPeer parses a stored value. Unparsable addresses are dropped;
// a value without a positive time or any valid address is an error.
func decodeStoredPeer(b []byte) (storedPeer, error) {
	if len(b) > maxStoredValueSize {
		return storedPeer{}, fmt.Errorf("value of %d bytes exceeds %d", len(b), maxStoredValueSize)
	}
	var v storedPeerJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return storedPeer{}, err
	}
	if v.Seen <= 0 {
		return storedPeer{}, errors.New("no last-seen time")
	}
	sp := storedPeer{seen: time.UnixMilli(v.Seen)}
	for _, s := range v.Addrs {
		if len(sp.addrs) == MaxAddrsPerPeer {
			break
		}
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		sp.addrs = append(sp.addrs, a)
	}
	if len(sp.addrs) == 0 {
		return storedPeer{}, errors.New("no valid address")
	}
	return sp, nil
}

// loadKnown reads the persisted peers into s.known, skipping corrupt entries
// and evicting the oldest beyond the limit. Called once from Start, before
// any goroutine runs.
func (s *Service) loadKnown() error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	res, err := s.cfg.Store.Query(ctx, query.Query{Prefix: StorePrefix})
	if err != nil {
		return err
	}
	defer res.Close()
	known := make(map[peer.ID]storedPeer)
	var iterErr error
	for {
		r, ok := res.NextSync()
		if !ok {
			break
		}
		if r.Error != nil {
			iterErr = r.Error // keep what was read so far
			break
		}
		p, err := peerFromKey(r.Key)
		if err != nil {
			s.log.Debug("skipping stored peer with a bad key", "key", r.Key, "err", err)
			continue
		}
		if p == s.cfg.Host.ID() {
			continue
		}
		sp, err := decodeStoredPeer(r.Value)
		if err != nil {
			s.log.Debug("skipping corrupt stored peer", "peer", p, "err", err)
			continue
		}
		known[p] = sp
	}
	s.kmu.Lock()
	s.known = known
	s.kmu.Unlock()
	for s.knownCount() > s.opts.maxStored {
		s.evictOldest(ctx)
	}
	return iterErr
}

// remember records p as connected now with its current peerstore addresses,
// evicting the oldest peer when the store is full. Only called from the
// event loop (the single writer of the stored peers).
func (s *Service) remember(p peer.ID) {
	addrs := s.cfg.Host.Peerstore().Addrs(p)
	if len(addrs) == 0 {
		return
	}
	if len(addrs) > MaxAddrsPerPeer {
		addrs = addrs[:MaxAddrsPerPeer]
	}
	sp := storedPeer{addrs: addrs, seen: time.Now()}
	val, err := encodeStoredPeer(sp)
	if err != nil {
		s.log.Warn("cannot encode peer addresses", "peer", p, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()

	s.kmu.Lock()
	_, exists := s.known[p]
	full := !exists && len(s.known) >= s.opts.maxStored
	s.kmu.Unlock()
	if full {
		s.evictOldest(ctx)
	}
	if err := s.cfg.Store.Put(ctx, peerKey(p), val); err != nil {
		s.log.Warn("cannot store peer addresses", "peer", p, "err", err)
		return
	}
	s.kmu.Lock()
	s.known[p] = sp
	s.kmu.Unlock()
}

// evictOldest deletes the peer seen longest ago.
func (s *Service) evictOldest(ctx context.Context) {
	s.kmu.Lock()
	var oldest peer.ID
	var at time.Time
	for p, sp := range s.known {
		if oldest == "" || sp.seen.Before(at) {
			oldest, at = p, sp.seen
		}
	}
	delete(s.known, oldest)
	s.kmu.Unlock()
	if oldest == "" {
		return
	}
	if err := s.cfg.Store.Delete(ctx, peerKey(oldest)); err != nil {
		s.log.Warn("cannot delete evicted peer", "peer", oldest, "err", err)
	}
}

func (s *Service) knownCount() int {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	return len(s.known)
}

// KnownPeers returns the persisted peers, most recently seen first. It is
// empty before Start.
func (s *Service) KnownPeers() []peer.AddrInfo {
	s.kmu.Lock()
	type entry struct {
		ai   peer.AddrInfo
		seen time.Time
	}
	entries := make([]entry, 0, len(s.known))
	for p, sp := range s.known {
		entries = append(entries, entry{peer.AddrInfo{ID: p, Addrs: slices.Clone(sp.addrs)}, sp.seen})
	}
	s.kmu.Unlock()
	slices.SortFunc(entries, func(a, b entry) int {
		if c := b.seen.Compare(a.seen); c != 0 {
			return c
		}
		return strings.Compare(string(a.ai.ID), string(b.ai.ID))
	})
	out := make([]peer.AddrInfo, len(entries))
	for i, e := range entries {
		out[i] = e.ai
	}
	return out
}
